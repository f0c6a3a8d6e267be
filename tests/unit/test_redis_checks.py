"""The start-up warning about Redis eviction."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from app.ops import redis_checks
from app.store.connection import Server


class FakeConfig:
    """A Redis client whose CONFIG GET answers `policy` or fails with `error`."""

    def __init__(self, policy: Any = None, error: Exception | None = None) -> None:
        self.policy, self.error = policy, error

    def config_get(self, pattern: str) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {pattern: self.policy}


def check(connection: FakeConfig) -> str | None:
    return redis_checks.warn_if_evicting(connection, "web")  # type: ignore[arg-type]


def test_noeviction_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.ops.redis_checks"):
        assert check(FakeConfig("noeviction")) == "noeviction"
    assert caplog.records == []


@pytest.mark.parametrize("policy", ["allkeys-lru", b"volatile-ttl"])
def test_an_evicting_policy_warns(policy: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.ops.redis_checks"):
        found = check(FakeConfig(policy))
    assert found in ("allkeys-lru", "volatile-ttl")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "noeviction" in record.getMessage() and found in record.getMessage()


def test_config_get_disabled_is_only_noted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.ops.redis_checks"):
        assert check(FakeConfig(error=redis.ResponseError("unknown command 'CONFIG'"))) is None
    [record] = caplog.records
    assert record.levelno == logging.INFO


def test_unreachable_redis_warns_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.ops.redis_checks"):
        assert check(FakeConfig(error=redis.ConnectionError("refused"))) is None
    assert caplog.records[0].levelno == logging.WARNING


def test_creating_the_app_connects_to_nothing() -> None:
    from app import create_app

    app = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert app.extensions["redis"] is not None


def test_a_server_held_down_is_named_not_asked(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    class Dead:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a server held down was asked {name}")

    found = [Server("10.0.0.1:7000", "master", FakeConfig("noeviction")),  # type: ignore[arg-type]
             Server("10.0.0.2:7000", "failed", Dead(), down=True)]  # type: ignore[arg-type]
    monkeypatch.setattr(redis_checks, "servers", lambda connection: found)
    monkeypatch.setattr(redis_checks, "_cluster_enabled", lambda connection: False)
    with caplog.at_level(logging.WARNING):
        assert redis_checks.check_role(object(), "store", "web") == []  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "web: the store's Redis 10.0.0.2:7000 (failed) is down: cannot check it"]
