"""Bearer tokens: one `before_request` hook decides every request by its HTTP method.

With ``API_TOKEN`` set, every request that can change state (any method but GET, HEAD and
OPTIONS) needs ``Authorization: Bearer <API_TOKEN>``. With ``READ_TOKEN`` set, reads need
the read token or the API token. Deciding by method, not by endpoint, covers endpoints
added later without anyone remembering to protect them. Open whatever the tokens:
``/healthz`` and ``/readyz`` (probes carry no data), ``/openapi.json`` and ``/docs`` (the
API's shape is public, not its data) and the data-free status page shell
(`app.api.ui.PUBLIC_ENDPOINTS`). ``/metrics`` names streams, so it is a read like any other.

Missing or malformed header: 401; a well-formed but wrong token: 403. Comparison is
constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, current_app, request

from app.exceptions import Forbidden, Unauthorized

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "openapi.openapi_document",
                            "openapi.docs_page"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _public_endpoints() -> frozenset[str]:
    from app.api.ui import PUBLIC_ENDPOINTS

    return OPEN_ENDPOINTS | PUBLIC_ENDPOINTS


def presented_token() -> str:
    """Return the bearer token of the request; raise Unauthorized if absent or malformed."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized("this endpoint needs Authorization: Bearer <token>",
                           details={"scheme": "Bearer"})
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'",
                           details={"scheme": "Bearer"})
    return token


def _matches(token: str, expected: str) -> bool:
    return hmac.compare_digest(token.encode(), expected.encode())


def required_tokens(method: str, api_token: str, read_token: str) -> list[str]:
    """Return the tokens that grant `method` (empty: the request is open)."""
    if method in READ_METHODS:
        return [read_token, api_token] if read_token else []
    return [api_token] if api_token else []


def check_request() -> None:
    """Refuse the current request unless it carries a token that grants it."""
    if request.endpoint in _public_endpoints():
        return
    config = current_app.config
    accepted = required_tokens(request.method, config.get("API_TOKEN", ""),
                               config.get("READ_TOKEN", ""))
    if not accepted:
        return
    token = presented_token()
    # Compare against every accepted token (no early exit) so timing says nothing either.
    results = [_matches(token, expected) for expected in accepted if expected]
    if not any(results):
        raise Forbidden("the token does not grant this request",
                        details={"needs": "api_token" if request.method not in READ_METHODS
                                 else "read_token"})


def is_loopback(host: str) -> bool:
    """Tell whether a bind host only listens on this machine."""
    host = host.strip()
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(hosts: list[str], api_token: str, read_token: str) -> str | None:
    """Return why serving on `hosts` is unsafe (no token, non-loopback bind), or None."""
    if api_token:
        return None
    exposed = [host for host in hosts if not is_loopback(host)]
    if exposed:
        return (f"refusing to bind {', '.join(exposed)} without API_TOKEN: anyone on the "
                "network could define streams that make this server fetch URLs; set "
                "API_TOKEN (and READ_TOKEN) or bind 127.0.0.1")
    return None


def init_app(app: Flask) -> None:
    """Check the token of every request before its view runs."""
    app.before_request(check_request)
