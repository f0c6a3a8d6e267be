"""The worker's HTTP transport: a `requests.Session` whose sockets pass the SSRF guard
and whose redirects leave the source's credentials behind.

The guard runs in urllib3's `_new_conn`, right after the TCP connect and before a byte
of HTTP (or TLS) is sent, on the peer address the socket actually reached. Every request,
redirect and next link goes through it, so checking the URL beforehand is only a fast path.
A redirect to another origin than the source's (scheme, host, port) is sent with only the
plain headers (`PLAIN_HEADERS`) and without the query parameters that carry a secret, so
credentials and custom headers never follow it; cookies are neither kept nor sent.
Retries are not done here but in `retry`, around a whole request.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from app.hosts import HostPolicy
from tasks.upstream.urls import origin, without_params

USER_AGENT = "data-streams/0.1"
MAX_REDIRECTS = 5
# Headers a request to another origin keeps: how to answer, never who asks.
PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "connection", "content-length",
                           "content-type", "user-agent"})


class _GuardedConnection(HTTPConnection):
    policy: HostPolicy = HostPolicy()

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        try:
            self.policy.check_peer(self.host, self.port, str(sock.getpeername()[0]))
        except BaseException:
            sock.close()
            raise
        return sock


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connection pools make guarded connections."""

    def __init__(self, policy: HostPolicy, **kwargs: Any) -> None:
        attrs = {"policy": policy}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnection,), attrs)
        https_conn = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), attrs)
        self._pool_classes = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn}),
        }
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager, then swap in the guarded pool classes."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


class GuardedSession(requests.Session):
    """A session whose redirects to another origin than `home` carry no credentials."""

    def __init__(self, home: str | None, secret_params: Iterable[str]) -> None:
        super().__init__()
        self.home = origin(home) if home else None
        self.secret_params = list(secret_params)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                     response: requests.Response) -> None:
        """Strip credentials, custom headers and secret params when leaving the origin."""
        super().rebuild_auth(prepared_request, response)
        target = str(prepared_request.url)
        if self.home is None or origin(target) == self.home:
            return
        for name in list(prepared_request.headers):
            if name.lower() not in PLAIN_HEADERS:
                del prepared_request.headers[name]
        prepared_request.url = without_params(target, self.secret_params)


def make_session(policy: HostPolicy, home: str | None = None,
                 secret_params: Iterable[str] = ()) -> requests.Session:
    """Return a session that connects only where `policy` allows, ignores env proxies and
    cookies, and sends credentials on no redirect away from the origin of `home`."""
    session = GuardedSession(home, secret_params)
    # Proxies and .netrc from the environment would bypass the peer check or leak creds.
    session.trust_env = False
    # Cookies are scoped by host, not port or scheme: kept, they would reach other origins.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.max_redirects = MAX_REDIRECTS
    adapter = GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
