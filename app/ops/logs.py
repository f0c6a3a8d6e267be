"""Structured logs: one JSON object per line, secrets scrubbed, batch context attached.

Web (gunicorn), ingest consumer, worker and beat all log through `configure`: the web
process from `create_app`, Celery processes from its ``after_setup_logger`` and
``after_setup_task_logger`` signals (Celery replaces the root handlers, so the formatter
and filters are put on the handlers it installs). Each line carries ``ts``, ``level``,
``logger`` and ``message``, the fields a call passes in ``extra=``, the batch context
bound with `bind` (stream, version, page) and the Celery task id when inside a task.

`Redactor` scrubs every line: the value of every ``name=value`` or ``Name: value`` whose
name can carry a secret by `app.redaction.secret_name` (Authorization and other credential
headers, ``api_key``, ``api_token``, ``private_token``, ``access_token``, ``sig``,
``X-Amz-Signature``, ``client_secret``, ...), passwords in URLs and the values of secret
environment variables (names with TOKEN, SECRET, PASSWORD, KEY, CREDENTIAL or
FLOWER_BASIC_AUTH, plus any listed in ``SECRET_ENV_VARS``).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from app.records import iso_at
from app.redaction import secret_name

REDACTED = "[REDACTED]"
# Celery's per-task INFO lines; their failures are still logged (at ERROR).
QUIET_LOGGERS = ("celery.app.trace", "celery.worker.strategy")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE|FLOWER_BASIC_AUTH",
                         re.IGNORECASE)
# A name, how it is tied to its value (=, :, %3D, quoted or not), an auth scheme, the value.
# Names are bounded so that a long run of word characters is scanned in linear time.
_PAIR = re.compile(r"""(?<![\w.-])([\w.-]{1,64})(["']?\s*[:=]\s*["']?|%3D)"""
                   r"""((?:bearer|basic|token)\s+)?([^\s"',;&#?]+)""", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*:)[^@/\s]+@")
# Fields of a LogRecord itself; everything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None)


def secret_values(environ: Mapping[str, str], names: list[str] | None = None) -> list[str]:
    """Return the values of secret-looking environment variables, longest first."""
    extra = set(names or [])
    values = {value for name, value in environ.items()
              if (SECRET_NAME.search(name) or name in extra) and len(value) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Return `text` with headers, token parameters, URL passwords and secrets scrubbed."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: f"{m[1]}{REDACTED}@", text)
    return _PAIR.sub(_scrub_pair, text)


def _scrub_pair(match: re.Match[str]) -> str:
    name, tie, scheme, _ = match.groups()
    return f"{name}{tie}{scheme or ''}{REDACTED}" if secret_name(name) else match[0]


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Attach `fields` (stream, version, page, ...) to every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _task_id() -> str | None:
    from celery import current_task

    return getattr(getattr(current_task, "request", None), "id", None)


class Redactor(logging.Filter):
    """Scrub secrets from the message and the `extra` fields of every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with its context and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": iso_at(record.created),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        line.update({k: v for k, v in (_context.get() or {}).items() if v is not None})
        task_id = _task_id()
        if task_id:
            line["task_id"] = task_id
        line.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def install(handler: logging.Handler, secrets: list[str]) -> None:
    """Give `handler` the JSON formatter and the redacting filter (once)."""
    handler.setFormatter(JsonFormatter())
    if not any(isinstance(f, Redactor) for f in handler.filters):
        handler.addFilter(Redactor(secrets))


def configure(level: str = "INFO", secret_env_vars: list[str] | None = None,
              logger: logging.Logger | None = None) -> None:
    """Log JSON lines from `logger` (default: root) on stderr, at `level`."""
    target = logger or logging.getLogger()
    secrets = secret_values(os.environ, secret_env_vars)
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
    for handler in target.handlers:
        install(handler, secrets)
    target.setLevel(level)


def task_fields(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return the stream, version and page a task was called with (by parameter name)."""
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}
    names = {"stream": "stream", "version": "version", "number": "page", "page": "page"}
    return {field: bound[name] for name, field in names.items()
            if name in bound and isinstance(bound[name], (str, int))}


def _task_started(task: Any = None, args: Any = (), kwargs: Any = None, **_: Any) -> None:
    _context.set(task_fields(task, tuple(args or ()), dict(kwargs or {})))


def _task_ended(**_: Any) -> None:
    _context.set(None)


def connect_celery(level: str, secret_env_vars: list[str]) -> None:
    """Log JSON lines from Celery's loggers; bind each task's stream, version and page."""
    from celery.signals import (
        after_setup_logger,
        after_setup_task_logger,
        task_postrun,
        task_prerun,
    )

    task_prerun.connect(_task_started, weak=False, dispatch_uid="ds-log-task-started")
    task_postrun.connect(_task_ended, weak=False, dispatch_uid="ds-log-task-ended")

    def _setup(logger: logging.Logger, **_: Any) -> None:
        configure(level, secret_env_vars, logger)
        if logging.getLevelName(level) > logging.DEBUG:
            # "received" and "succeeded" for every page task would drown a batch's few lines.
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)

    after_setup_logger.connect(_setup, weak=False, dispatch_uid="ds-json-logs")
    after_setup_task_logger.connect(_setup, weak=False, dispatch_uid="ds-json-task-logs")
