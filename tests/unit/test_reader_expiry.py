"""Expired versions raise VersionExpired (410 Gone), never an empty page, whatever expired."""

from __future__ import annotations

import fakeredis
import pytest

from app.exceptions import BatchNotFound, VersionExpired
from app.extensions import Store
from app.store.cursors import Cursor, Window
from app.store.keys import StreamKeys
from app.store.reader import Reader
from tests.support.seed import Seeder
from tests.unit.test_reader import s  # noqa: F401 (fixture)


def test_cursor_of_a_version_dropped_from_history_is_gone(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:  # noqa: F811
    version = seed.publish("s", [{"id": i} for i in range(5)])
    cursor = s.reader.read("s", limit=2).next_cursor
    assert cursor is not None
    keys = StreamKeys("ds", "s")
    redis.delete(keys.batch(version), keys.records(version))

    with pytest.raises(VersionExpired):
        s.reader.read("s", limit=2, cursor=Cursor.decode(cursor))
    with pytest.raises(BatchNotFound):
        s.reader.read("s", limit=2, version=version)


def test_version_expiring_during_a_read_is_gone_not_empty(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    version = seed.publish("s", [{"id": i} for i in range(5)])
    span = Reader.span

    def span_then_expire(self: Reader, *args: object) -> tuple[int, int]:
        found = span(self, *args)  # type: ignore[arg-type]
        redis.delete(StreamKeys("ds", "s").records(version))
        return found

    monkeypatch.setattr(Reader, "span", span_then_expire)
    with pytest.raises(VersionExpired):  # a score range is read in two steps: span, then slice
        s.reader.read("s", limit=2, version=version, window=Window(low=0))


def test_a_plain_page_reads_check_and_data_in_one_transaction(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:  # noqa: F811
    version = seed.publish("s", [{"id": i} for i in range(5)])
    redis.delete(StreamKeys("ds", "s").records(version))

    with pytest.raises(VersionExpired):
        s.reader.read("s", limit=2, version=version)


def test_a_reader_that_guessed_an_old_current_version_reads_the_new_one(
        s: Store, seed: Seeder) -> None:  # noqa: F811
    first = seed.publish("s", [{"id": 1}])
    assert s.reader.read("s", limit=10).version == first
    second = seed.publish("s", [{"id": 2}])

    page = s.reader.read("s", limit=10)

    assert (page.version, page.records) == (second, ['{"id":2}'])
