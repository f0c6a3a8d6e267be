"""The SSRF guard: which upstream addresses the worker may connect to.

A URL must be http or https, and its host must not be, or resolve to, a loopback,
private, link-local, multicast, reserved or unspecified address, unless the host (or
host:port) is listed in ``ALLOWED_SOURCE_HOSTS``. The check runs twice: on the URL when a
definition is PUT (`check_url`, `source_url_errors`), and on the socket's peer address
each time the worker connects (`HostPolicy.check_peer`, used by `transport`), so a name
that resolves differently at fetch time (DNS rebinding) gets no further.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from app.exceptions import UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# What inet_aton accepts besides dotted quads: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_INET_ATON_FORM = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)


def resolve_host(host: str, port: int) -> list[str]:
    """Return the addresses `host` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def literal_ip(host: str) -> IPAddress | None:
    """Return the address a host spells literally (any IPv4 form, [v6]), else None."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _INET_ATON_FORM.match(bare) and any(char.isdigit() for char in bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def forbidden_ip(address: IPAddress | str) -> bool:
    """Tell whether an address is not a public unicast one."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def _canonical_host(host: str) -> str:
    ip = literal_ip(host)
    return str(ip) if ip is not None else host.strip("[]").rstrip(".").lower()


def _parse_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return _canonical_host(host), int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return _canonical_host(host), int(port)
    return _canonical_host(entry), None


class HostPolicy:
    """The allow-list of ``ALLOWED_SOURCE_HOSTS`` and the checks that use it."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self.allowed = {_parse_entry(entry) for entry in allowed_hosts if entry.strip()}

    def allows(self, host: str, port: int) -> bool:
        """Tell whether host, or host:port, is explicitly allowed."""
        name = _canonical_host(host)
        return (name, None) in self.allowed or (name, port) in self.allowed

    def check_peer(self, host: str, port: int, peer: str) -> None:
        """Refuse a connection to `host` that landed on a forbidden peer address."""
        if self.allows(host, port) or self.allows(peer, port) or not forbidden_ip(peer):
            return
        raise UpstreamError("forbidden_host", f"{host}:{port} connects to {peer}, a "
                            "non-public address; list it in ALLOWED_SOURCE_HOSTS to allow it")

    def check_url(self, url: str, *, resolve: Resolver | None = resolve_host) -> None:
        """Refuse a URL whose scheme or host is forbidden; `resolve=None` skips DNS."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise UpstreamError("forbidden_host", "only http and https URLs with a host "
                                "may be fetched")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise UpstreamError("forbidden_host", "the URL's port is not valid") from None
        host = parts.hostname
        if self.allows(host, port):
            return
        ip = literal_ip(host)
        addresses = [str(ip)] if ip is not None else _resolved(host, port, resolve)
        for address in addresses:
            if forbidden_ip(address):
                raise UpstreamError("forbidden_host", f"{host} is or resolves to {address}, "
                                    "a non-public address; list it in ALLOWED_SOURCE_HOSTS "
                                    "to allow it")


def _resolved(host: str, port: int, resolve: Resolver | None) -> list[str]:
    # A name that does not resolve now cannot be reached either; the connect-time check
    # still stands between it and any address it resolves to later.
    if resolve is None:
        return []
    try:
        return resolve(host, port)
    except (OSError, UnicodeError):
        return []


def check_url(url: str, allowed_hosts: Iterable[str], *,
              resolve: Resolver | None = resolve_host) -> None:
    """Raise UpstreamError(forbidden_host) unless the worker may fetch `url`."""
    HostPolicy(allowed_hosts).check_url(url, resolve=resolve)


def source_url_errors(source: Any, allowed_hosts: Iterable[str], *,
                      resolve: Resolver | None = resolve_host) -> list[dict[str, str]]:
    """Return one validation error per forbidden URL of a source (url, auth.token_url,
    details.url)."""
    policy = HostPolicy(allowed_hosts)
    urls = [("source.url", source.url)]
    token_url = getattr(source.auth, "token_url", None)
    if token_url:
        urls.append(("source.auth.token_url", token_url))
    details = getattr(getattr(source, "details", None), "url", "")
    if details and "{" not in urlsplit(details).netloc:  # a host filled per record: at fetch
        urls.append(("source.details.url", details))
    errors = []
    for field, url in urls:
        try:
            policy.check_url(url, resolve=resolve)
        except UpstreamError as exc:
            errors.append({"field": field, "message": exc.message, "type": "forbidden_host"})
    return errors
