"""A changing upstream for incremental fetching: items with change times, served many ways.

    catalog = upstream.catalog("shop", page_size=3)
    catalog.put(1, name="a", detail={"price": 3})     # add or change: updated_at moves on
    catalog.delete(1)                                 # a tombstone {"deleted": true} is listed
    catalog.delete(2, tombstone=False)                # gone without a trace (a hard delete)

Every route lists the items changed since ``updated_since`` (inclusive, like most APIs;
none: every live item), oldest change first, a page at a time; tombstones are listed only
to a caller that asks for changes:

    GET  /catalogs/<c>/items?updated_since=&page=       {"data": [...], "next": url|null}
                                                        (or header X-Updated-Since)
    GET  /catalogs/<c>/items/<id>                       the item's detail (404 if gone)
    GET  /catalogs/<c>/items.jsonl?updated_since=&page= JSON Lines, Link rel="next"
    GET  /catalogs/<c>/items.csv?updated_since=&page=   CSV, Link rel="next"
    POST /catalogs/<c>/search    {"filter": {"since"}, "page": n}   {"data": [...]}
    POST /catalogs/<c>/graphql   {"query", "variables": {"since", "after"}}  GraphQL shape

`requests` logs what each caller asked (method, path, query, body); `delay` slows every
answer down (seconds); `expected()` is what a faithful copy holds: every live item,
listed fields and detail merged.
"""

from __future__ import annotations

import base64
import csv
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(tick: int) -> str:
    """Return the updated_at of change number `tick`."""
    return (EPOCH + timedelta(seconds=tick)).isoformat().replace("+00:00", "Z")


@dataclass
class Seen:
    """One request the catalog answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Catalog:
    """Items, their change times and tombstones; every change moves the clock on."""

    name: str
    page_size: int = 3
    items: dict[Any, dict[str, Any]] = field(default_factory=dict)
    details: dict[Any, dict[str, Any]] = field(default_factory=dict)
    changed: dict[Any, int] = field(default_factory=dict)
    tombstones: dict[Any, int] = field(default_factory=dict)
    broken: set[Any] = field(default_factory=set)
    delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)
    clock: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, key: Any, detail: dict[str, Any] | None = None, **fields: Any) -> None:
        """Add or change an item (its listed fields, and its detail if given)."""
        with self.lock:
            self.clock += 1
            self.items[key] = {"id": key, **fields}
            if detail is not None or key not in self.details:
                self.details[key] = dict(detail or {})
            self.changed[key] = self.clock
            self.tombstones.pop(key, None)

    def delete(self, key: Any, tombstone: bool = True) -> None:
        """Delete an item; with a tombstone, incremental callers are told."""
        with self.lock:
            self.clock += 1
            self.items.pop(key)
            self.changed.pop(key)
            if tombstone:
                self.tombstones[key] = self.clock

    def expected(self) -> list[dict[str, Any]]:
        """Return every live item as a faithful copy holds it, by id."""
        with self.lock:
            return [{**self.items[key], "updated_at": stamp(self.changed[key]),
                     **self.details[key]} for key in sorted(self.items)]

    def listing(self, since: str | None) -> list[dict[str, Any]]:
        """Return the items (and tombstones, to a caller with `since`) changed since then."""
        with self.lock:
            rows = [(tick, key, {**self.items[key], "updated_at": stamp(tick)})
                    for key, tick in self.changed.items()]
            if since:
                rows += [(tick, key, {"id": key, "updated_at": stamp(tick), "deleted": True})
                         for key, tick in self.tombstones.items()]
                rows = [row for row in rows if stamp(row[0]) >= since]
        return [row for _, _, row in sorted(rows, key=lambda row: (row[0], str(row[1])))]

    def page(self, since: str | None, number: int) -> tuple[list[dict[str, Any]], bool]:
        rows = self.listing(since)
        size = self.page_size
        return rows[(number - 1) * size: number * size], number * size < len(rows)

    def saw(self, path_end: str = "") -> list[Seen]:
        """Return the requests whose path ends with `path_end`."""
        return [seen for seen in self.requests if seen.path.endswith(path_end)]

    def detail_ids(self) -> list[str]:
        """Return the ids whose detail was asked for, in order."""
        return [seen.path.rsplit("/", 1)[1] for seen in self.requests
                if "/items/" in seen.path]


class Routes:
    """The catalogs' HTTP routes; every answer is logged by the catalog that gives it."""

    def __init__(self, catalogs: dict[str, Catalog]) -> None:
        self.catalogs = catalogs

    def logged(self, name: str) -> Catalog:
        catalog = self.catalogs[name]
        with catalog.lock:
            catalog.requests.append(Seen(request.method, request.path, request.args.to_dict(),
                                         request.get_json(silent=True), dict(request.headers)))
        if catalog.delay:
            time.sleep(catalog.delay)
        return catalog

    def page(self, name: str, since: str | None = None) -> tuple[list[Any], dict[str, str]]:
        """Return the rows of the page asked for, and the Link header to the next one."""
        catalog = self.logged(name)
        number = int(request.args.get("page", "1"))
        rows, more = catalog.page(since or request.args.get("updated_since"), number)
        return rows, ({"Link": f'<{self.next_link(number)}>; rel="next"'} if more else {})

    @staticmethod
    def next_link(number: int) -> str:
        args = {**request.args.to_dict(), "page": str(number + 1)}
        return f"{request.base_url}?" + "&".join(f"{k}={v}" for k, v in args.items())

    def items(self, name: str) -> Any:
        rows, link = self.page(name, request.headers.get("X-Updated-Since"))
        number = int(request.args.get("page", "1"))
        return jsonify({"data": rows, "next": self.next_link(number) if link else None})

    def detail(self, name: str, key: str) -> Any:
        catalog = self.logged(name)
        found = int(key) if key.isdigit() and int(key) in catalog.details else key
        if found not in catalog.items or found in catalog.broken:
            return jsonify({"message": f"item {key} not found"}), 404
        return jsonify({"id": found, **catalog.details[found]})

    def lines(self, name: str) -> Any:
        rows, link = self.page(name)
        body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        return Response(body, mimetype="application/x-ndjson", headers=link)

    def table(self, name: str) -> Any:
        rows, link = self.page(name)
        out = io.StringIO()
        writer = csv.DictWriter(out, ["id", "name", "updated_at", "deleted"], restval="",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "deleted": "yes" if row.get("deleted") else ""}
                         for row in rows)
        return Response(out.getvalue(), mimetype="text/csv", headers=link)

    def search(self, name: str) -> Any:
        catalog = self.logged(name)
        body = request.get_json() or {}
        rows, _ = catalog.page((body.get("filter") or {}).get("since"), int(body.get("page", 1)))
        return jsonify({"data": rows})

    def graphql(self, name: str) -> Any:
        catalog = self.logged(name)
        body = request.get_json() or {}
        if "items" not in str(body.get("query", "")):
            return jsonify({"data": None, "errors": [{"message": "Cannot query field"}]})
        variables = body.get("variables") or {}
        after = variables.get("after")
        number = int(base64.b64decode(after)) + 1 if after else 1
        rows, more = catalog.page(variables.get("since"), number)
        cursor = base64.b64encode(str(number).encode()).decode()
        return jsonify({"data": {"items": {"nodes": rows, "pageInfo": {
            "endCursor": cursor, "hasNextPage": more}}}})


def blueprint(catalogs: dict[str, Catalog]) -> Blueprint:
    """Return the routes serving `catalogs` (see the module docstring)."""
    bp = Blueprint("catalogs", __name__, url_prefix="/catalogs/<name>")
    routes = Routes(catalogs)
    for rule, view, methods in (("/items", routes.items, ["GET"]),
                                ("/items/<key>", routes.detail, ["GET"]),
                                ("/items.jsonl", routes.lines, ["GET"]),
                                ("/items.csv", routes.table, ["GET"]),
                                ("/search", routes.search, ["POST"]),
                                ("/graphql", routes.graphql, ["POST"])):
        bp.add_url_rule(rule, view.__name__, view, methods=methods)
    return bp
