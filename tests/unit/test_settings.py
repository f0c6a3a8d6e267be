"""The limits that bound each other: derived in one place, refused when inconsistent."""

from __future__ import annotations

import pytest

from config import defaults
from config.settings import SettingsError, load_settings, timing


def test_the_defaults_keep_every_relation() -> None:
    limits = timing({})

    assert limits.problems() == []
    assert limits.soft_limit < limits.hard_limit < limits.visibility
    assert 3 * limits.lease_renew <= limits.lease_ttl <= 30  # a dead worker frees within 60 s
    # Staging outlives a message redelivered after the visibility timeout, run to its limit.
    assert limits.staging >= limits.visibility + limits.restore_interval + limits.hard_limit
    assert limits.staging == 3600 + 10 + 660 + 600
    settings = load_settings({})
    assert settings["LEASE_TTL_SECONDS"] == defaults.LEASE_TTL_SECONDS
    assert settings["STAGING_SECONDS"] == limits.staging
    assert settings["CELERY"]["broker_transport_options"]["visibility_timeout"] == 3600
    assert settings["CELERY"]["beat_scheduler"] == "app.beat:Scheduler"


@pytest.mark.parametrize(("env", "named"), [
    ({"FETCH_SOFT_TIME_LIMIT": "700"}, "FETCH_SOFT_TIME_LIMIT (700) must stay below"),
    ({"VISIBILITY_TIMEOUT": "600"}, "FETCH_HARD_TIME_LIMIT (660) must stay below VISIBILITY"),
    ({"LEASE_RENEW_SECONDS": "20"}, "LEASE_RENEW_SECONDS (20) must be at least 1 and at most"),
    ({"LEASE_TTL_SECONDS": "10"}, "a third of LEASE_TTL_SECONDS (10)"),
    ({"LEASE_RENEW_SECONDS": "0"}, "LEASE_RENEW_SECONDS (0) must be at least 1"),
    ({"GRACE_SECONDS": "0"}, "GRACE_SECONDS (0) must be at least 1"),
    ({"BEAT_LOCK_TIMEOUT": "10"}, "BEAT_LOCK_TIMEOUT (10) must be at least three"),
    ({"LEASE_TTL_SECONDS": "thirty"}, "LEASE_TTL_SECONDS='thirty' is not a whole number"),
])
def test_inconsistent_values_refuse_to_start_naming_them(env: dict[str, str],
                                                         named: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(env)

    assert str(refused.value).startswith("data-streams refuses to start")
    assert named in str(refused.value)


def test_every_broken_relation_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        timing({"FETCH_SOFT_TIME_LIMIT": "900", "LEASE_RENEW_SECONDS": "29"})

    assert str(refused.value).count("\n  - ") == 2


def test_the_flower_link_follows_flower_port() -> None:
    assert load_settings({})["UI_FLOWER_URL"] == "http://127.0.0.1:5555"
    assert load_settings({"FLOWER_PORT": "6555"})["UI_FLOWER_URL"] == "http://127.0.0.1:6555"
    explicit = {"FLOWER_PORT": "6555", "UI_FLOWER_URL": "https://flower.example.org"}
    assert load_settings(explicit)["UI_FLOWER_URL"] == "https://flower.example.org"
