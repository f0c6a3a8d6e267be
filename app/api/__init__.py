"""The HTTP API: one blueprint per resource, their request and response models, the
JSON error shape, bearer tokens, compression, HTTP caching and the OpenAPI document.

`init_app` wires them in order: errors and access first (they guard every view), then
compression (it wraps every answer), then the blueprints, then the OpenAPI document,
which lists every route registered before it.
"""

from __future__ import annotations

from flask import Flask

from app.api import (
    access,
    batches,
    changes,
    compression,
    data,
    error_handlers,
    openapi,
    schema,
    streams,
    ui,
)


def init_app(app: Flask) -> None:
    """Register the error handlers, the token hook, every blueprint and /openapi.json."""
    error_handlers.init_app(app)
    access.init_app(app)
    compression.init_app(app)
    for module in (streams, data, batches, changes, schema, ui):
        app.register_blueprint(module.bp)
    openapi.init_app(app)  # last: the document lists every route registered above
