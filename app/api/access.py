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

Without ``API_TOKEN`` (loopback mode) a browser could still be made to send requests: a
page on another site posting to 127.0.0.1, or a name of the attacker's that resolves to
127.0.0.1 (DNS rebinding). So `check_origin` answers 403 to any request (probes aside)
whose ``Host`` is not this server's own (127.0.0.1, localhost, [::1] or another loopback
address, at the port the request reached, or a ``TRUSTED_ORIGINS`` entry), and to any
state-changing request whose ``Origin`` is not the origin of that ``Host`` (or trusted). The
status page calls the API from its own origin, so its buttons keep working.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache, lru_cache
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from app.exceptions import Forbidden, Unauthorized

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "openapi.openapi_document",
                            "openapi.docs_page", "openapi.docs_asset"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
PROBES = frozenset({"health.healthz", "health.readyz"})


@cache
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


def local_port() -> int | None:
    """Return the port this request reached on the server's socket, when the server says."""
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    try:
        return int(sock.getsockname()[1]) if sock is not None else None
    except (OSError, AttributeError, IndexError, TypeError, ValueError):
        return None


def own_host(host: str, trusted: list[str]) -> bool:
    """Tell whether a Host header names this server: loopback at the port reached, or trusted."""
    return _own_host(host, tuple(trusted), local_port())


@lru_cache(maxsize=256)  # a pure function of its arguments, asked on every request
def _own_host(host: str, trusted: tuple[str, ...], reached: int | None) -> bool:
    if host.lower() in {urlsplit(origin).netloc.lower() for origin in trusted}:
        return True
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname or not is_loopback(parts.hostname):
        return False
    return reached is None or (port or 80) == reached


def check_origin() -> None:
    """Refuse, without API_TOKEN, a request from a foreign Host or a cross-origin write."""
    config = current_app.config
    if config.get("API_TOKEN") or request.endpoint in PROBES:
        return
    host = request.headers.get("Host", "")
    trusted = config.get("TRUSTED_ORIGINS", [])
    if not own_host(host, trusted):
        raise Forbidden(f"Host {host!r} is not this server: without API_TOKEN only "
                        "127.0.0.1, localhost and [::1] (or TRUSTED_ORIGINS) are served",
                        details={"reason": "foreign_host", "host": host})
    origin = request.headers.get("Origin")
    if request.method in READ_METHODS or origin is None:
        return
    allowed = {f"http://{host}".lower(), f"https://{host}".lower(),
               *(entry.rstrip("/").lower() for entry in trusted)}
    if origin.lower() not in allowed:
        raise Forbidden(f"cross-origin {request.method} refused: Origin {origin!r} is not "
                        "this server's (set API_TOKEN, or list it in TRUSTED_ORIGINS)",
                        details={"reason": "foreign_origin", "origin": origin})


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
    """Check the origin and the token of every request before its view runs."""
    app.before_request(check_origin)
    app.before_request(check_request)
