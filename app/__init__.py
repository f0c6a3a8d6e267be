"""data-streams: the app that serves the HTTP API and that every Celery process loads.

`create_app` is the only place that builds the app: defaults, then the environment, then
the test overrides. Nothing connects to anything at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from config.settings import load_settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the data-streams Flask app (and its Celery app)."""
    app = Flask(__name__)
    _configure(app, test_config)
    _set_up_logging(app)

    from app import api, extensions
    from app.ops import cli, health, metrics, redis_checks

    extensions.init_app(app)
    redis_checks.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    health.init_app(app)
    api.init_app(app)
    return app


def _configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Load defaults, then the environment, then the test overrides."""
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024, JSON_SORT_KEYS=False)
    environ = dict(os.environ)
    for name in ("REDIS_URL", "STORE_URL"):
        if test_config is not None and test_config.get(name):
            # The broker and RedBeat follow a test's Redis like the store does.
            environ[name] = str(test_config[name])
    app.config.from_mapping(load_settings(environ))
    if test_config is not None:
        app.config.from_mapping(test_config)


def _set_up_logging(app: Flask) -> None:
    """Log JSON lines with secrets scrubbed (plain text under tests)."""
    if app.config.get("TESTING"):
        logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
        return
    from app.ops import logs

    # The web process here; Celery's processes through its logging signals.
    logs.configure(app.config["LOG_LEVEL"], app.config["SECRET_ENV_VARS"])
    logs.connect_celery(app.config["LOG_LEVEL"], app.config["SECRET_ENV_VARS"])
