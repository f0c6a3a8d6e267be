"""The wire between worker and ingest: packed pages, and pages too large for one message."""

from __future__ import annotations

from app.extensions import Store
from app.records import to_entries
from config import defaults, names
from config.streams import StreamDefinition
from tasks import protocol
from tests.support.seed import Seeder


def test_a_page_is_cut_into_parts_of_bounded_size_at_the_defaults() -> None:
    small = to_entries([{"id": n} for n in range(25_000)], 1, None)
    large = to_entries([{"id": n, "text": "x" * 10_000} for n in range(1000)], 1, None)
    huge = to_entries([{"id": 1, "text": "x" * (5 * 1024 * 1024)}, {"id": 2}], 1, None)

    assert [len(part) for part in protocol.split(small)] == [10_000, 10_000, 5_000]
    parts = protocol.split(large)
    assert len(parts) == 3 and sum(len(part) for part in parts) == 1000
    assert all(sum(len(m) + 1 for _, m in part) <= defaults.PAGE_PART_BYTES for part in parts)
    assert [len(part) for part in protocol.split(huge)] == [1, 1]  # a record is never cut
    assert [len(part) for part in protocol.split([])] == [0]


def test_parts_count_once_in_any_order_and_when_redelivered(store: Store, seed: Seeder) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    batch = seed.batch("s")
    entries = to_entries([{"id": n} for n in range(6)], 1, None)
    parts = protocol.split(entries, max_records=2)
    lease = batch.lease

    def send(index: int) -> None:
        packed = protocol.pack(parts[index], (index + 1, len(parts)))
        seed.celery.send_task(names.INGEST_PAGE, [lease.stream, lease.version, lease.token,
                                                  1, packed], queue=names.INGEST_QUEUE)

    send(2)
    send(0)
    send(0)  # redelivered: adds nothing
    batch.complete(pages=1, records=6)
    assert seed.status("s", batch.version) == "running"
    assert store.reader.batch("s", batch.version)["pages_received"] == 0

    send(1)

    published = store.reader.batch("s", batch.version)
    assert published["status"] == "complete"
    assert (published["pages_received"], published["records_received"]) == (1, 6)
