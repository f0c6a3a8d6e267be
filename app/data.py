"""Blueprint of a stream's data: pages of the current (or a pinned) complete version."""

from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app, request

from app import control, validation
from app.services import get_store
from app.store.reader import Cursor

bp = Blueprint("data", __name__, url_prefix="/streams")


@bp.get("/<name>/data")
def read_data(name: str) -> Response:
    """Return one page of records of the current complete batch."""
    name = validation.stream_name(name)
    store = get_store()
    config = current_app.config
    limit = validation.query_int("limit", config["DEFAULT_PAGE_LIMIT"], low=1,
                                 high=config["MAX_PAGE_LIMIT"])
    version = validation.query_int("version", None, low=1, high=2**53)
    cursor = Cursor.decode(request.args["cursor"]) if request.args.get("cursor") else None
    control.require(store, name)
    page = store.reader.read(name, limit=limit or 1, cursor=cursor, version=version)
    body = {"stream": name, "version": page.version,
            "records": [orjson.Fragment(member) for member in page.records],
            "next_cursor": page.next_cursor}
    return Response(orjson.dumps(body), mimetype="application/json",
                    headers={"X-Stream-Version": str(page.version)})
