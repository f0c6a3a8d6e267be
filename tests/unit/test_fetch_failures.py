"""The fetch task ends a batch as failed on any error, never leaving it running."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.exceptions import UpstreamError
from app.extensions import Store
from app.store.locks import BatchLease
from config.streams import StreamDefinition
from tasks import fetch


class RecordingOutbox:
    """Stands in for the ingest queue: records what the task sends."""

    sent: list[tuple[str, Any]] = []

    def __init__(self, celery_app: Any, lease: BatchLease) -> None:
        self.lease = lease

    def begin(self) -> None:
        self.sent.append(("begin", self.lease.version))

    def fail(self, error: dict[str, Any]) -> None:
        self.sent.append(("fail", error))


def test_an_unexpected_error_fails_the_batch_and_is_raised(
        app: Flask, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    RecordingOutbox.sent = []
    monkeypatch.setattr(fetch, "Outbox", RecordingOutbox)

    def broken(*args: Any) -> None:
        raise KeyError("secret-value")

    monkeypatch.setattr(fetch, "run_batch", broken)

    with pytest.raises(KeyError):
        fetch.fetch_stream.apply(args=["s"], throw=True)

    assert RecordingOutbox.sent[0][0] == "begin"
    assert RecordingOutbox.sent[1] == ("fail", {"kind": "internal", "message": "KeyError"})


def test_a_failed_batch_ends_the_task_as_failed(
        app: Flask, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower counts tasks by how they end: a batch failure must not look like a success."""
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    RecordingOutbox.sent = []
    monkeypatch.setattr(fetch, "Outbox", RecordingOutbox)

    def refused(*args: Any) -> None:
        raise UpstreamError("http_status", "upstream answered 503", status=503, page=2)

    monkeypatch.setattr(fetch, "run_batch", refused)

    result = fetch.fetch_stream.apply(args=["s"])

    assert result.state == "FAILURE"
    assert isinstance(result.result, fetch.BatchFailed)
    assert "http_status: upstream answered 503" in str(result.result)
    assert fetch.BatchFailed in fetch.fetch_stream.throws  # logged without a traceback
    assert RecordingOutbox.sent[1] == ("fail", {"kind": "http_status", "status": 503,
                                                "page": 2,
                                                "message": "upstream answered 503"})
