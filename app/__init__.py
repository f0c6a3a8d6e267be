"""data-streams: the HTTP API and the ingest consumer.

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
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024, JSON_SORT_KEYS=False)
    environ = dict(os.environ)
    if test_config is not None and test_config.get("REDIS_URL"):
        # One Redis URL: the broker and RedBeat follow a test's Redis like the store does.
        environ["REDIS_URL"] = str(test_config["REDIS_URL"])
    app.config.from_mapping(load_settings(environ))
    if test_config is not None:
        app.config.from_mapping(test_config)
    if app.config.get("TESTING"):
        logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
    else:  # JSON lines, secrets scrubbed: web here, Celery processes through its signals
        from app import logging_setup

        logging_setup.configure(app.config["LOG_LEVEL"], app.config["SECRET_ENV_VARS"])
        logging_setup.connect_celery(app.config["LOG_LEVEL"], app.config["SECRET_ENV_VARS"])

    from app import (
        batches,
        celery_app,
        changes,
        cli,
        data,
        errors,
        openapi,
        redis_checks,
        schema,
        services,
        streams,
        ui,
    )

    services.init_app(app)
    celery_app.celery_init_app(app)
    redis_checks.init_app(app)
    errors.init_app(app)
    from app import auth, health, metrics

    auth.init_app(app)
    app.register_blueprint(health.bp)
    metrics.init_app(app)
    cli.init_app(app)
    app.register_blueprint(streams.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(changes.bp)
    openapi.init_app(app)
    app.register_blueprint(schema.bp)
    app.register_blueprint(ui.bp)
    return app
