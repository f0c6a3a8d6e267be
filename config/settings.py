"""Settings from the environment, with the defaults of `config.defaults`.

`load_settings(environ)` returns the mapping that `create_app` loads into Flask's config.
Every Celery setting sits under the one key ``CELERY``, as in Flask's Celery example; the
ones that matter for reliability are chosen here on purpose and explained in
docs/reliability.md. The time limits that bound each other are derived and checked in one
place, `timing`: inconsistent values raise `SettingsError`, so no process starts with them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config import defaults, names, redis_url


class SettingsError(ValueError):
    """The environment asks for settings that contradict each other."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise SettingsError(f"data-streams refuses to start: {name}={raw!r} is not a whole "
                            "number") from None


def _list(environ: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


@dataclass(frozen=True)
class Timing:
    """The limits that bound each other, in seconds (see `timing` for how and why)."""

    soft_limit: int
    hard_limit: int
    visibility: int
    restore_interval: int
    lease_ttl: int
    lease_renew: int
    grace: int
    beat_loop: int
    beat_lock: int

    @property
    def staging(self) -> int:
        """Life of a running batch's staging data after its last stored page.

        It outlives every message of the batch that can still arrive: one taken by a
        consumer that died comes back after the visibility timeout (found by a sweep every
        `restore_interval`), then runs for at most the hard limit; `grace` is the margin.
        """
        return self.visibility + self.restore_interval + self.hard_limit + self.grace

    def problems(self) -> list[str]:
        """Return what is inconsistent, one sentence per relation broken."""
        rules = [
            (self.soft_limit < self.hard_limit,
             "FETCH_SOFT_TIME_LIMIT ({soft_limit}) must stay below FETCH_HARD_TIME_LIMIT "
             "({hard_limit}), so a slow fetch fails as `timeout` before it is killed"),
            (self.hard_limit < self.visibility,
             "FETCH_HARD_TIME_LIMIT ({hard_limit}) must stay below VISIBILITY_TIMEOUT "
             "({visibility}), or a task still running is delivered a second time"),
            (self.lease_renew >= 1 and 3 * self.lease_renew <= self.lease_ttl,
             "LEASE_RENEW_SECONDS ({lease_renew}) must be at least 1 and at most a third of "
             "LEASE_TTL_SECONDS ({lease_ttl}), so two missed renewals do not lose the lease"),
            (self.grace >= 1, "GRACE_SECONDS ({grace}) must be at least 1"),
            (self.beat_loop >= 1 and 3 * self.beat_loop <= self.beat_lock,
             "BEAT_LOCK_TIMEOUT ({beat_lock}) must be at least three BEAT_MAX_LOOP_INTERVAL "
             "({beat_loop}), or the active beat loses its lock between two ticks"),
        ]
        return [message.format(**vars(self)) for holds, message in rules if not holds]


def timing(env: Mapping[str, str]) -> Timing:
    """Return the time limits of `env`; raise SettingsError if they contradict each other."""
    visibility = _int(env, "VISIBILITY_TIMEOUT", defaults.VISIBILITY_TIMEOUT)
    found = Timing(
        soft_limit=_int(env, "FETCH_SOFT_TIME_LIMIT", defaults.FETCH_SOFT_TIME_LIMIT),
        hard_limit=_int(env, "FETCH_HARD_TIME_LIMIT", defaults.FETCH_HARD_TIME_LIMIT),
        visibility=visibility,
        # Kombu looks for a dead consumer's messages every 100 s by default: every tenth
        # of the visibility timeout instead (1-10 s).
        restore_interval=max(1, min(10, visibility // 10)),
        lease_ttl=_int(env, "LEASE_TTL_SECONDS", defaults.LEASE_TTL_SECONDS),
        lease_renew=_int(env, "LEASE_RENEW_SECONDS", defaults.LEASE_RENEW_SECONDS),
        grace=_int(env, "GRACE_SECONDS", defaults.GRACE_SECONDS),
        beat_loop=_int(env, "BEAT_MAX_LOOP_INTERVAL", defaults.BEAT_MAX_LOOP_INTERVAL),
        beat_lock=_int(env, "BEAT_LOCK_TIMEOUT", defaults.BEAT_LOCK_TIMEOUT))
    problems = found.problems()
    if problems:
        raise SettingsError("data-streams refuses to start: inconsistent settings:\n  - "
                            + "\n  - ".join(problems))
    return found


def celery_settings(broker: redis_url.RedisUrl, limits: Timing) -> dict[str, Any]:
    """Return Celery's settings: broker (one Redis or Sentinel), queues, acks, time limits,
    RedBeat."""
    connection = redis_url.celery_redis_settings(broker, {
        "socket_connect_timeout": 5, "socket_timeout": 30, "retry_on_timeout": True,
        "health_check_interval": 30})
    return {
        **connection,
        "broker_connection_retry_on_startup": True,
        # A full Redis (maxmemory, noeviction) refuses the ack of a message: retry as after a
        # lost connection, instead of the worker exiting for good ("Unrecoverable error").
        "broker_channel_error_retry": True,
        # A killed consumer's unacknowledged messages come back once they are older than
        # the visibility timeout; sweep for them every `restore_interval`, not every 100 s.
        "broker_transport_options": {"visibility_timeout": limits.visibility,
                                     "unacked_restore_interval": limits.restore_interval,
                                     "unacked_restore_throttle": 1,
                                     **connection["broker_transport_options"]},
        "task_publish_retry_policy": dict(defaults.PUBLISH_RETRY_POLICY),
        "task_ignore_result": True,
        "include": names.TASK_MODULES,
        "task_routes": names.TASK_ROUTES,
        "task_default_queue": names.FETCH_QUEUE,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": limits.soft_limit,
        "task_time_limit": limits.hard_limit,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # RedBeat's scheduler, riding out Redis restarts (app/beat.py).
        "beat_scheduler": "app.beat:Scheduler",
        "beat_max_loop_interval": limits.beat_loop,
        "redbeat_key_prefix": "{redbeat}:",
        "redbeat_lock_timeout": limits.beat_lock,
    }


def security_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Return the settings of secrets, probes and origins (docs/operations.md, Security)."""
    prefix = env.get("SECRET_ENV_PREFIX", defaults.SECRET_ENV_PREFIX)
    if not prefix.strip():
        raise ValueError("SECRET_ENV_PREFIX must not be empty: it keeps definitions from "
                         "naming the server's own environment variables")
    return {"SECRET_ENV_PREFIX": prefix,
            "READY_CACHE_SECONDS": float(env.get("READY_CACHE_SECONDS")
                                         or defaults.READY_CACHE_SECONDS),
            "TRUSTED_ORIGINS": _list(env, "TRUSTED_ORIGINS") or list(defaults.TRUSTED_ORIGINS)}


def delivery_celery(env: Mapping[str, str]) -> dict[str, Any]:
    """Return the Celery settings of deliveries: the task's time limits and the sweep."""
    sweep = _int(env, "DELIVERY_SWEEP_SECONDS", defaults.DELIVERY_SWEEP_SECONDS)
    return {
        "task_annotations": {names.DELIVER_STREAM: delivery_time_limits(env)},
        # Finds destinations that are behind and due (after a failure, a kill, a lost message).
        # Never retried: the next sweep comes anyway, and a retried send would hold beat's
        # tick while the broker refuses it (a full Redis).
        "beat_schedule": {"ds-deliver-sweep": {"task": names.DELIVER_SWEEP, "schedule": sweep,
                                               "options": {"expires": sweep,
                                                           "retry": False}}},
    }


def delivery_time_limits(env: Mapping[str, str]) -> dict[str, int]:
    """Return the soft and hard time limits of a delivery task.

    Delivery messages are acknowledged on receipt (the sweep re-sends a lost delivery), so
    unlike the fetch's, these limits need not stay below the visibility timeout.
    """
    soft = _int(env, "DELIVERY_SOFT_TIME_LIMIT", defaults.DELIVERY_SOFT_TIME_LIMIT)
    hard = _int(env, "DELIVERY_HARD_TIME_LIMIT", defaults.DELIVERY_HARD_TIME_LIMIT)
    if soft >= hard:
        raise ValueError("DELIVERY_SOFT_TIME_LIMIT must stay below DELIVERY_HARD_TIME_LIMIT")
    return {"soft_time_limit": soft, "time_limit": hard}


def delivery_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Return the settings of deliveries to destinations (docs/destinations.md)."""
    return {
        "DELIVERY_SWEEP_SECONDS": _int(env, "DELIVERY_SWEEP_SECONDS",
                                       defaults.DELIVERY_SWEEP_SECONDS),
        "DELIVERY_RETRY_BASE_SECONDS": _int(env, "DELIVERY_RETRY_BASE_SECONDS",
                                            defaults.DELIVERY_RETRY_BASE_SECONDS),
        "DELIVERY_RETRY_MAX_SECONDS": _int(env, "DELIVERY_RETRY_MAX_SECONDS",
                                           defaults.DELIVERY_RETRY_MAX_SECONDS),
        "DELIVERY_LOCK_SECONDS": _int(env, "DELIVERY_LOCK_SECONDS",
                                      defaults.DELIVERY_LOCK_SECONDS),
        "DUCKDB_DIR": env.get("DUCKDB_DIR") or defaults.DUCKDB_DIR,
        "DELIVERY_WORK_DIR": (env.get("DELIVERY_WORK_DIR") or defaults.DELIVERY_WORK_DIR
                              or os.path.join(tempfile.gettempdir(), "data-streams-dlt")),
    }


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config mapping built from `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    broker_url = env.get("REDIS_URL") or defaults.REDIS_URL
    store_url = env.get("STORE_URL") or broker_url
    broker = redis_url.broker_url(broker_url)  # ValueError: the message says what is wrong
    redis_url.parse(store_url, "STORE_URL")
    limits = timing(env)
    return {
        "REDIS_URL": broker_url,
        "STORE_URL": store_url,
        "KEY_PREFIX": env.get("KEY_PREFIX") or defaults.KEY_PREFIX,
        "STREAMS_FILE": env.get("STREAMS_FILE", ""),
        "DEFAULT_INTERVAL_SECONDS": _int(env, "DEFAULT_INTERVAL_SECONDS",
                                         defaults.DEFAULT_INTERVAL_SECONDS),
        "MIN_INTERVAL_SECONDS": _int(env, "MIN_INTERVAL_SECONDS", defaults.MIN_INTERVAL_SECONDS),
        "MAX_INTERVAL_SECONDS": _int(env, "MAX_INTERVAL_SECONDS", defaults.MAX_INTERVAL_SECONDS),
        "LEASE_TTL_SECONDS": limits.lease_ttl,
        "LEASE_RENEW_SECONDS": limits.lease_renew,
        "STAGING_SECONDS": limits.staging,
        "REPLICA_WAIT_MS": _int(env, "REPLICA_WAIT_MS", defaults.REPLICA_WAIT_MS),
        "KEEP_VERSIONS": _int(env, "KEEP_VERSIONS", defaults.KEEP_VERSIONS),
        "GRACE_SECONDS": limits.grace,
        "HISTORY_LENGTH": _int(env, "HISTORY_LENGTH", defaults.HISTORY_LENGTH),
        "CHANGE_HISTORY": _int(env, "CHANGE_HISTORY", defaults.CHANGE_HISTORY),
        "DEFAULT_PAGE_LIMIT": _int(env, "DEFAULT_PAGE_LIMIT", defaults.DEFAULT_PAGE_LIMIT),
        "MAX_PAGE_LIMIT": _int(env, "MAX_PAGE_LIMIT", defaults.MAX_PAGE_LIMIT),
        "DEFAULT_LIST_LIMIT": _int(env, "DEFAULT_LIST_LIMIT", defaults.DEFAULT_LIST_LIMIT),
        "MAX_LIST_LIMIT": _int(env, "MAX_LIST_LIMIT", defaults.MAX_LIST_LIMIT),
        "LIST_SCAN_LIMIT": _int(env, "LIST_SCAN_LIMIT", defaults.LIST_SCAN_LIMIT),
        "PINNED_MAX_AGE_SECONDS": _int(env, "PINNED_MAX_AGE_SECONDS",
                                       defaults.PINNED_MAX_AGE_SECONDS),
        "MAX_PAGES": _int(env, "MAX_PAGES", defaults.MAX_PAGES),
        "FETCH_READ_AHEAD_PAGES": max(0, _int(env, "FETCH_READ_AHEAD_PAGES",
                                              defaults.FETCH_READ_AHEAD_PAGES)),
        "ALLOWED_SOURCE_HOSTS": _list(env, "ALLOWED_SOURCE_HOSTS"),
        "UI_FLOWER_URL": env.get("UI_FLOWER_URL") or defaults.UI_FLOWER_URL.format(
            port=_int(env, "FLOWER_PORT", defaults.FLOWER_PORT)),
        "CUSTOM_MIDDLEWARE_PREFIXES": (_list(env, "CUSTOM_MIDDLEWARE_PREFIXES")
                                       or list(defaults.CUSTOM_MIDDLEWARE_PREFIXES)),
        # Security and operations (README): bearer tokens, probes, logs.
        "API_TOKEN": env.get("API_TOKEN", ""),
        "READ_TOKEN": env.get("READ_TOKEN", ""),
        "READY_TIMEOUT_SECONDS": float(env.get("READY_TIMEOUT_SECONDS")
                                       or defaults.READY_TIMEOUT_SECONDS),
        "LOG_LEVEL": env.get("LOG_LEVEL") or defaults.LOG_LEVEL,
        "SECRET_ENV_VARS": _list(env, "SECRET_ENV_VARS"),
        **security_settings(env),
        **delivery_settings(env),
        "CELERY": {**celery_settings(broker, limits), **delivery_celery(env)},
    }
