"""The worker's HTTP transport: a `requests.Session` whose sockets pass the SSRF guard.

The guard runs in urllib3's `_new_conn`, right after the TCP connect and before a byte
of HTTP (or TLS) is sent, on the peer address the socket actually reached. Every request,
redirect and next link goes through it, so checking the URL beforehand is only a fast path.
Retries are not done here but in `retry`, around a whole request.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from app.hosts import HostPolicy

USER_AGENT = "data-streams/0.1"
MAX_REDIRECTS = 5


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


def make_session(policy: HostPolicy) -> requests.Session:
    """Return a session that connects only where `policy` allows and ignores env proxies."""
    session = requests.Session()
    # Proxies and .netrc from the environment would bypass the peer check or leak creds.
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    adapter = GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
