"""Rows handed to dlt: every keyed record once, stamped; removals as key-only delete rows."""

from __future__ import annotations

import orjson

from app.records import parse_time
from app.store.changesets import SEP
from tasks.warehouse import rows

WHEN = "2026-01-01T00:00:00.000Z"


def member(record: object) -> str:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def test_snapshot_stamps_each_keyed_record_once_in_order() -> None:
    stamp = rows.Stamp(7, WHEN)
    chunks = [[member({"id": 2, "v": "first"}), member({"v": "no key"}), member([1, 2])],
              [member({"id": 2, "v": "second"}), member({"id": 1, "v": "x"})]]

    found = [row for chunk in rows.snapshot(chunks, "id", stamp) for row in chunk]

    assert found == [{"id": 2, "v": "first", "_ds_version": 7,
                      "_ds_published_at": parse_time(WHEN)},
                     {"id": 1, "v": "x", "_ds_version": 7, "_ds_published_at": parse_time(WHEN)}]
    assert stamp.rows == 2


def test_change_set_upserts_and_deletes_by_a_nested_key() -> None:
    stamp = rows.Stamp(3, WHEN)
    members = [f'"a"{SEP}a{SEP}' + member({"meta": {"id": "a"}, "n": 1}),
               f'"b"{SEP}u{SEP}' + member({"meta": {"id": "b"}, "n": 2}),
               f'"c"{SEP}r{SEP}']

    found = [row for chunk in rows.changes(members, "meta.id", stamp) for row in chunk]

    assert found[0] == {"meta": {"id": "a"}, "n": 1, "_ds_version": 3,
                        "_ds_published_at": parse_time(WHEN)}
    assert found[1]["n"] == 2
    assert found[2] == {"meta": {"id": "c"}, "_ds_deleted": True, "_ds_version": 3,
                        "_ds_published_at": parse_time(WHEN)}
    assert stamp.rows == 3


def test_large_inputs_come_in_chunks() -> None:
    stamp = rows.Stamp(1, WHEN)
    chunks = [[member({"id": i}) for i in range(rows.CHUNK + 10)]]

    sizes = [len(chunk) for chunk in rows.snapshot(chunks, "id", stamp)]

    assert sizes == [rows.CHUNK + 10]  # a chunk is flushed once it reaches CHUNK
    assert stamp.rows == rows.CHUNK + 10
