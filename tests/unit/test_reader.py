"""Reading published versions: cursors pin a version, expired versions are 410."""

from __future__ import annotations

import fakeredis
import pytest

from app.exceptions import InvalidCursor, VersionExpired
from app.extensions import Store
from app.records import to_entries
from app.store.cursors import Cursor
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tests.support.seed import Seeder


@pytest.fixture
def s(store: Store) -> Store:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    return store


def test_cursor_keeps_reading_the_version_it_started_on(s: Store, seed: Seeder) -> None:
    first = seed.publish("s", [{"id": i} for i in range(5)])
    page = s.reader.read("s", limit=2)
    seed.publish("s", [{"id": 100 + i} for i in range(5)])

    assert page.next_cursor is not None
    rest = s.reader.read("s", limit=10, cursor=Cursor.decode(page.next_cursor))

    assert rest.version == first
    assert rest.records == [f'{{"id":{i}}}' for i in range(2, 5)]
    assert rest.next_cursor is None


def test_expired_version_is_gone(s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    version = seed.publish("s", [{"id": 1}])
    redis.delete(StreamKeys("ds", "s").records(version))

    with pytest.raises(VersionExpired):
        s.reader.read("s", limit=10, version=version)


@pytest.mark.parametrize("text", ["", "not-base64!", "eyJ2IjoxfQ", "eyJ2IjotMSwibyI6MH0"])
def test_malformed_cursor_is_invalid(text: str) -> None:
    with pytest.raises(InvalidCursor):
        Cursor.decode(text)


def test_order_by_field_orders_records(store: Store) -> None:
    entries = to_entries([{"t": "2024-01-02T00:00:00Z"}, {"t": "2024-01-01T00:00:00Z"},
                          {"t": 5}, {}], 1, "t")

    scores = [score for score, _ in entries]

    assert scores[2] < scores[1] < scores[0] < scores[3] == float("inf")
