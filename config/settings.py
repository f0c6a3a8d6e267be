"""Settings from the environment, with the defaults of `config.defaults`.

`load_settings(environ)` returns the mapping that `create_app` loads into Flask's config.
Every Celery setting sits under the one key ``CELERY``, as in Flask's Celery example; the
ones that matter for reliability are chosen here on purpose and explained in the README.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from config import defaults, names


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    return default if raw in (None, "") else int(raw)


def _list(environ: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def celery_settings(redis_url: str, soft_limit: int, hard_limit: int, env: Mapping[str, str]
                    ) -> dict[str, Any]:
    """Return Celery's settings: queues, acks, time limits, RedBeat."""
    visibility = _int(env, "VISIBILITY_TIMEOUT", defaults.VISIBILITY_TIMEOUT)
    if hard_limit >= visibility:
        raise ValueError("FETCH_HARD_TIME_LIMIT must stay below VISIBILITY_TIMEOUT")
    return {
        "broker_url": redis_url,
        "broker_connection_retry_on_startup": True,
        # A killed consumer's unacknowledged messages come back once they are older than
        # the visibility timeout; sweep for them every tenth of it (1-10 s), not every 100 s.
        "broker_transport_options": {"visibility_timeout": visibility,
                                     "unacked_restore_interval": max(1, min(10, visibility // 10)),
                                     "unacked_restore_throttle": 1},
        "task_ignore_result": True,
        "include": names.TASK_MODULES,
        "task_routes": names.TASK_ROUTES,
        "task_default_queue": names.FETCH_QUEUE,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": soft_limit,
        "task_time_limit": hard_limit,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "beat_max_loop_interval": _int(env, "BEAT_MAX_LOOP_INTERVAL",
                                       defaults.BEAT_MAX_LOOP_INTERVAL),
        "redbeat_redis_url": redis_url,
        "redbeat_key_prefix": "{redbeat}:",
        "redbeat_redis_options": {"socket_connect_timeout": 5, "socket_timeout": 30,
                                  "retry_on_timeout": True, "health_check_interval": 30},
        "redbeat_lock_timeout": _int(env, "BEAT_LOCK_TIMEOUT", defaults.BEAT_LOCK_TIMEOUT),
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


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config mapping built from `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    redis_url = env.get("REDIS_URL") or defaults.REDIS_URL
    soft = _int(env, "FETCH_SOFT_TIME_LIMIT", defaults.FETCH_SOFT_TIME_LIMIT)
    hard = _int(env, "FETCH_HARD_TIME_LIMIT", defaults.FETCH_HARD_TIME_LIMIT)
    if soft >= hard:
        raise ValueError("FETCH_SOFT_TIME_LIMIT must stay below FETCH_HARD_TIME_LIMIT")
    return {
        "REDIS_URL": redis_url,
        "KEY_PREFIX": env.get("KEY_PREFIX") or defaults.KEY_PREFIX,
        "STREAMS_FILE": env.get("STREAMS_FILE", ""),
        "DEFAULT_INTERVAL_SECONDS": _int(env, "DEFAULT_INTERVAL_SECONDS",
                                         defaults.DEFAULT_INTERVAL_SECONDS),
        "MIN_INTERVAL_SECONDS": _int(env, "MIN_INTERVAL_SECONDS", defaults.MIN_INTERVAL_SECONDS),
        "MAX_INTERVAL_SECONDS": _int(env, "MAX_INTERVAL_SECONDS", defaults.MAX_INTERVAL_SECONDS),
        "LOCK_TIMEOUT_SECONDS": hard + _int(env, "LOCK_SLACK_SECONDS",
                                            defaults.LOCK_SLACK_SECONDS),
        "KEEP_VERSIONS": _int(env, "KEEP_VERSIONS", defaults.KEEP_VERSIONS),
        "GRACE_SECONDS": _int(env, "GRACE_SECONDS", defaults.GRACE_SECONDS),
        "HISTORY_LENGTH": _int(env, "HISTORY_LENGTH", defaults.HISTORY_LENGTH),
        "CHANGE_HISTORY": _int(env, "CHANGE_HISTORY", defaults.CHANGE_HISTORY),
        "DEFAULT_PAGE_LIMIT": _int(env, "DEFAULT_PAGE_LIMIT", defaults.DEFAULT_PAGE_LIMIT),
        "MAX_PAGE_LIMIT": _int(env, "MAX_PAGE_LIMIT", defaults.MAX_PAGE_LIMIT),
        "MAX_PAGES": _int(env, "MAX_PAGES", defaults.MAX_PAGES),
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
        "CELERY": celery_settings(redis_url, soft, hard, env),
    }
