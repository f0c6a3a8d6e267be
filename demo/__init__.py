"""The built-in demo upstream: a paginated JSON API whose data changes over time.

    GET /items?page=1&page_size=50[&total=N][&delay_ms=D]
    -> {"data": [{"id", "name", "category", "price", "stock", "updated_at"}, ...],
        "next": "<url of the next page>" | null, "total": N}

Every `DEMO_CHANGE_SECONDS` (default 60) a new "epoch" begins: prices and stock move,
a few items disappear and a few new ones appear, so consecutive batches differ the way a
real catalogue does. Everything is computed from (id, epoch), so any page can be served
by any process without state. `total` and `delay_ms` let benchmarks ask for N records and
add latency per page.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request

CATEGORIES = ("books", "garden", "kitchen", "music", "outdoor", "toys")
MAX_PAGE_SIZE = 5000


def _digest(*parts: int) -> int:
    text = ":".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def item(item_id: int, epoch: int, change_seconds: int) -> dict[str, Any]:
    """Return the demo item `item_id` as it looks during `epoch`."""
    moved = _digest(item_id, epoch)
    changed_at = datetime.fromtimestamp(epoch * change_seconds, UTC)
    return {"id": item_id, "name": f"Item {item_id}",
            "category": CATEGORIES[item_id % len(CATEGORIES)],
            "price": round(5 + (moved % 9500) / 100, 2), "stock": moved % 40,
            "updated_at": changed_at.isoformat().replace("+00:00", "Z")}


def item_ids(total: int, epoch: int) -> list[int]:
    """Return the ids alive in `epoch`: a few retire and a few join every epoch."""
    gone = {1 + _digest(epoch, n) % total for n in range(max(1, total // 50))}
    joined = range(total + 1, total + 1 + (epoch % 5))
    return [i for i in range(1, total + 1) if i not in gone] + list(joined)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        value = default
    return max(low, min(high, value))


def create_app(total: int | None = None, change_seconds: int | None = None) -> Flask:
    """Build the demo upstream app."""
    app = Flask("demo")
    default_total = total or int(os.environ.get("DEMO_ITEMS", "500"))
    period = change_seconds or int(os.environ.get("DEMO_CHANGE_SECONDS", "60"))

    @app.get("/items")
    def items() -> Any:
        """Return one page of the catalogue."""
        page = _int_arg("page", 1, 1, 10**9)
        size = _int_arg("page_size", 50, 1, MAX_PAGE_SIZE)
        count = _int_arg("total", default_total, 1, 10**8)
        delay = _int_arg("delay_ms", 0, 0, 10_000)
        if delay:
            time.sleep(delay / 1000)
        epoch = int(time.time() // period)
        # Past 100k no item retires or joins: a range, sliced without being built.
        ids: Sequence[int] = item_ids(count, epoch) if count <= 100_000 else range(
            1, count + 1)
        chunk = ids[(page - 1) * size: page * size]
        more = page * size < len(ids)
        args = {**request.args.to_dict(), "page": str(page + 1), "page_size": str(size)}
        query = "&".join(f"{key}={value}" for key, value in args.items())
        next_url = f"{request.host_url}items?{query}" if more else None
        return jsonify({"data": [item(i, epoch, period) for i in chunk], "next": next_url,
                        "total": len(ids)})

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"ok": True})

    return app
