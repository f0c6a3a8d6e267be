"""What counts as "the store is unreachable for now", and how the API answers it: the
errors of a failover are 503s with Retry-After, a programming error stays a 500."""

from __future__ import annotations

import pytest
from flask import Flask
from kombu.exceptions import OperationalError
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from app.extensions import Store
from app.store.connection import is_unavailable


def _unreachable_cluster() -> RedisClusterException:
    try:
        try:
            raise ConnectionError("Error 111 connecting to 10.0.0.7:7000")
        except ConnectionError as cause:
            raise RedisClusterException("Redis Cluster cannot be connected") from cause
    except RedisClusterException as error:
        return error


FAILOVER = [ConnectionError("refused"), ClusterDownError("CLUSTERDOWN The cluster is down"),
            MasterDownError("MASTERDOWN"), TryAgainError("TRYAGAIN"),
            ReadOnlyError("READONLY You can't write against a read only replica."),
            SlotNotCoveredError("Slot 42 is not covered"), _unreachable_cluster()]


@pytest.mark.parametrize("error", FAILOVER, ids=lambda e: type(e).__name__)
def test_failover_errors_are_unavailability(error: Exception) -> None:
    assert is_unavailable(error)


def test_a_cross_slot_command_is_a_bug_not_unavailability() -> None:
    assert not is_unavailable(RedisClusterException("all keys must map to the same slot"))


@pytest.mark.parametrize("error", [*FAILOVER, OperationalError("broker gone")],
                         ids=lambda e: type(e).__name__)
def test_the_api_answers_a_failover_with_503_and_retry_after(
        app: Flask, store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail(*_: object) -> list[str]:
        raise error

    monkeypatch.setattr(store.definitions, "names_after", fail)
    response = app.test_client().get("/streams")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"]["code"] == "store_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_a_cross_slot_error_in_a_view_is_a_500(
        app: Flask, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> list[str]:
        raise RedisClusterException("all keys must map to the same slot")

    monkeypatch.setattr(store.definitions, "names_after", fail)
    assert app.test_client().get("/streams").status_code == 500
