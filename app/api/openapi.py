"""The OpenAPI 3 document (/openapi.json) and its interactive docs (/docs), by spectree.

/docs is Swagger UI served from this server: its assets come from the pinned
swagger-ui-bundle-v2 package (/docs/assets/...) and its start-up script from
app/static/docs/, so the page works offline and tells no third party of a visit; its
Content-Security-Policy lets it load nothing from anywhere else.

Every route of the app is in the document, decorated or not (spectree's "normal" mode),
so a new endpoint appears without ceremony. `document(query=..., json=..., ok=...)` adds
the pydantic models of its query, body and answer: the same models the view validates
with `validation.query` / `validation.body`, so the document cannot drift from the checks.
spectree only documents here (its runtime validation is off): our validation answers
errors in the one error shape, and streamed answers are never buffered to be checked.
Every operation also lists the error answers of `ERROR_STATUSES` with `ErrorBody`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory
from pydantic import BaseModel, Field
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType
from spectree.plugins.flask_plugin import FlaskPlugin
from swagger_ui_bundle import swagger_ui_path

from app.api import http_cache

ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500)


class ErrorDetail(BaseModel):
    """The error of every non-2xx answer."""

    code: str = Field(description="Stable machine-readable code, e.g. stream_not_found.")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error answer: {"error": {"code", "message", "details"}}."""

    error: ErrorDetail


class _DocumentOnly(FlaskPlugin):
    """spectree's Flask plugin with runtime validation off: the view validates."""

    def validate(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # args: query, json, form, headers, cookies, resp, before, after, status, skip, force
        return func(*args[11:], **kwargs)


# Tokens are optional by configuration, so the scheme is declared without a global
# requirement: a document that required it would be wrong for a server without tokens.
BEARER = SecurityScheme(name="bearer", data=SecuritySchemeData(
    type=SecureType.HTTP, scheme="bearer",
    description="Required when the server sets API_TOKEN (every method but GET, HEAD and "
                "OPTIONS) or READ_TOKEN (reads; the API token is accepted too)."))

spec = SpecTree("flask", backend=_DocumentOnly, title="data-streams API", version="1",
                annotations=False, path="docs", mode="normal",
                validation_error_model=ErrorBody, security_schemes=[BEARER],
                description="A fresh, versioned copy of an external HTTP/JSON API: streams, "
                            "their data, change feed and batch history. With API_TOKEN or "
                            "READ_TOKEN set, send `Authorization: Bearer <token>`.")


def document(*, query: type[BaseModel] | None = None, json: type[BaseModel] | None = None,
             ok: type[BaseModel] | None = None, status: int = 200,
             tags: tuple[str, ...] = (), conditional: bool = False
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a view in the OpenAPI document: its query, body and answer models.

    `conditional`: the view tags its answer (ETag) and honours If-None-Match with a 304
    (`app.api.http_cache`); `http_cache.describe` adds the headers to the document.
    """
    answers = Answers(**{f"HTTP_{status}": ok, **({"HTTP_304": None} if conditional else {})})
    return spec.validate(query=query, json=json, resp=answers, tags=tags,
                         headers=http_cache.ConditionalHeaders if conditional else None,
                         validation_error_status=422)


def _with_errors(document_: dict[str, Any]) -> dict[str, Any]:
    """Give every operation the shared error answers (and undecorated ones a 200)."""
    error_ref = {"$ref": "#/components/schemas/" + spec.naming_strategy(ErrorBody)}
    spec.models.setdefault(spec.naming_strategy(ErrorBody), ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"))
    for operations in document_["paths"].values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if not any(code.startswith("2") for code in answers):
                answers["200"] = {"description": "OK"}
            for status in ERROR_STATUSES:
                answers.setdefault(str(status), {
                    "description": "Error", "content": {"application/json": {
                        "schema": error_ref}}})
    return document_


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Return the OpenAPI 3 document of this API."""
    cached = current_app.extensions.get("openapi")
    if cached is None:
        cached = current_app.extensions["openapi"] = http_cache.describe(
            _with_errors(spec._generate_spec()))
    return jsonify(cached)


# Only this server: no CDN, no validator badge, no font or image from elsewhere.
SAME_ORIGIN_ONLY = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                    "'unsafe-inline'; base-uri 'none'; form-action 'self'; "
                    "frame-ancestors 'none'")
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>data-streams API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/static/docs/init.js"></script>
</body>
</html>
"""


@bp.get("/docs")
def docs_page() -> Response:
    """Return the interactive docs (Swagger UI) of the OpenAPI document."""
    return Response(DOCS_PAGE, mimetype="text/html",
                    headers={"Content-Security-Policy": SAME_ORIGIN_ONLY})


@bp.get("/docs/assets/<path:filename>")
def docs_asset(filename: str) -> Response:
    """Return a file of Swagger UI (from the swagger-ui-bundle-v2 package)."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def init_app(app: Flask) -> None:
    """Serve the document and the docs."""
    app.register_blueprint(bp)
