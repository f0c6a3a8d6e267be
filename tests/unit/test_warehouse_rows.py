"""Rows handed to dlt: every keyed record once, stamped; removals as key-only delete rows."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from app.store.changesets import SEP
from tasks.warehouse import rows

WHEN = "2026-01-01T00:00:00.000Z"
MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def member(record: object) -> str:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def test_snapshot_stamps_each_keyed_record_once_in_order() -> None:
    stamp = rows.Stamp(7, WHEN, MOMENT)
    chunks = [[member({"id": 2, "v": "first"}), member({"v": "no key"}), member([1, 2])],
              [member({"id": 2, "v": "second"}), member({"id": 1, "v": "x"}),
               member({"id": "1", "v": "a string key is another key"})]]

    found = [row for chunk in rows.snapshot(chunks, "id", stamp) for row in chunk]

    assert found == [{"id": 2, "v": "first", "_ds_version": 7,
                      "_ds_published_at": MOMENT},
                     {"id": 1, "v": "x", "_ds_version": 7, "_ds_published_at": MOMENT},
                     {"id": "1", "v": "a string key is another key", "_ds_version": 7,
                      "_ds_published_at": MOMENT}]
    assert stamp.rows == 3


def test_change_set_upserts_and_deletes_by_a_nested_key() -> None:
    stamp = rows.Stamp(3, WHEN, MOMENT)
    members = [f'"a"{SEP}a{SEP}' + member({"meta": {"id": "a"}, "n": 1}),
               f'"b"{SEP}u{SEP}' + member({"meta": {"id": "b"}, "n": 2}),
               f'"c"{SEP}r{SEP}']

    found = [row for chunk in rows.changes(members, "meta.id", stamp) for row in chunk]

    assert found[0] == {"meta": {"id": "a"}, "n": 1, "_ds_version": 3,
                        "_ds_published_at": MOMENT}
    assert found[1]["n"] == 2
    assert found[2] == {"meta": {"id": "c"}, "_ds_deleted": True, "_ds_version": 3,
                        "_ds_published_at": MOMENT}
    assert stamp.rows == 3


def test_large_inputs_come_in_chunks() -> None:
    stamp = rows.Stamp(1, WHEN, MOMENT)
    chunks = [[member({"id": i}) for i in range(rows.CHUNK + 10)]]

    sizes = [len(chunk) for chunk in rows.snapshot(chunks, "id", stamp)]

    assert sizes == [rows.CHUNK + 10]  # a chunk is flushed once it reaches CHUNK
    assert stamp.rows == rows.CHUNK + 10
