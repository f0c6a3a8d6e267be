"""gunicorn settings of the web process (Procfile: ``gunicorn -c python:app.ops.gunicorn``).

`on_starting` refuses to serve a non-loopback address without ``API_TOKEN`` and warns when
no token is set at all; `child_exit` tells prometheus-client a worker died; the error and
access logs are JSON lines with secrets scrubbed, like every other log of data-streams.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from app.api import access
from app.ops import logs, metrics


def _bind_hosts(binds: list[str]) -> list[str]:
    """Return the hosts of gunicorn's bind addresses ("host:port", "[::1]:port", unix:)."""
    hosts = []
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host = bind.rsplit(":", 1)[0] if bind.count(":") == 1 or bind.startswith("[") else bind
        hosts.append(host or "0.0.0.0")
    return hosts


class JsonLogger(Logger):
    """gunicorn's logger with JSON lines and the redacting filter on its handlers."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        secrets = logs.secret_values(os.environ, os.environ.get(
            "SECRET_ENV_VARS", "").split(","))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                logs.install(handler, secrets)


logger_class = JsonLogger


def on_starting(server: Any) -> None:
    """Refuse an exposed bind without API_TOKEN; warn when the API takes no token."""
    api_token = os.environ.get("API_TOKEN", "")
    read_token = os.environ.get("READ_TOKEN", "")
    problem = access.exposure_problem(_bind_hosts(list(server.cfg.bind)), api_token, read_token)
    if problem:
        server.log.error(problem)
        raise SystemExit(1)
    if not api_token and not read_token:
        server.log.warning("no API_TOKEN or READ_TOKEN set: the API is open to anyone who "
                           "can reach %s (loopback only)", ", ".join(server.cfg.bind))
    elif not api_token:
        server.log.warning("READ_TOKEN set without API_TOKEN: state-changing requests are "
                           "open (loopback only)")


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client that a web worker is gone."""
    metrics.process_exited(worker.pid)
