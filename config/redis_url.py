"""The Redis addresses of the two roles, parsed and checked: `REDIS_URL` and `STORE_URL`.

`REDIS_URL` is the Celery broker and RedBeat's store; `STORE_URL` (default: the same) is
the batch store. Each is one URL in one of these forms (``rediss`` instead of ``redis``
for TLS; the password, if any, is that of the Redis servers):

    redis://[[user]:password@]host:port[/db]                     one Redis
    redis+sentinel://[[user]:password@]h1:p1,h2:p2,.../service[/db][?sentinel_password=...]
                                                                 the master Sentinel names
    redis+cluster://[[user]:password@]h1:p1,h2:p2,...            a Redis Cluster (STORE_URL)

Celery's broker (kombu) has no Redis Cluster transport and RedBeat's saves are cross-slot
there, so a cluster URL as `REDIS_URL` is refused; so is Celery's own ``sentinel://``
form, which cannot carry the service name. `celery_redis_settings` turns `REDIS_URL` into
the settings Celery and RedBeat each expect for it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE, SENTINEL, CLUSTER = "single", "sentinel", "cluster"
SCHEMES = {"redis": (SINGLE, False), "rediss": (SINGLE, True),
           "redis+sentinel": (SENTINEL, False), "rediss+sentinel": (SENTINEL, True),
           "redis+cluster": (CLUSTER, False), "rediss+cluster": (CLUSTER, True)}
FORMS = ("redis://host:port/db, redis+sentinel://h1:p1,h2:p2/service/db or "
         "redis+cluster://h1:p1,h2:p2 (rediss... for TLS)")


@dataclass(frozen=True)
class RedisUrl:
    """One parsed Redis address: its kind, hosts and what the clients need."""

    url: str
    kind: str
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    service: str = ""
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse(url: str, setting: str) -> RedisUrl:
    """Parse `url`, the value of `setting`; raise ValueError saying what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sentinel":
        raise ValueError(f"{setting}={_safe(url)}: Celery's sentinel:// form cannot name the "
                         "Sentinel service; write redis+sentinel://h1:p1,h2:p2/service/db")
    if scheme not in SCHEMES:
        raise ValueError(f"{setting}={_safe(url)}: unknown scheme {scheme!r}; use {FORMS}")
    kind, tls = SCHEMES[scheme]
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(_host(item, setting, url) for item in hostlist.split(",") if item)
    if not hosts:
        raise ValueError(f"{setting}={_safe(url)}: no host:port given")
    if kind == SINGLE and len(hosts) > 1:
        raise ValueError(f"{setting}={_safe(url)}: one Redis has one host; a list of hosts "
                         "is a Sentinel group (redis+sentinel://) or a cluster (redis+cluster://)")
    path = [part for part in parts.path.split("/") if part]
    service, db = _service_and_db(kind, path, setting, url)
    query = parse_qs(parts.query)
    sentinel_password = query.get("sentinel_password", [""])[0]
    return RedisUrl(url=url, kind=kind, tls=tls, hosts=hosts, db=db, service=service,
                    username=unquote(username) or None,
                    password=unquote(password) or None,
                    sentinel_password=sentinel_password or None)


def _host(item: str, setting: str, url: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{setting}={_safe(url)}: {item!r} is not host:port")
    return host.strip("[]"), int(port)


def _service_and_db(kind: str, path: list[str], setting: str, url: str) -> tuple[str, int]:
    """Return the Sentinel service name and the database number of the URL's path."""
    if kind == SENTINEL:
        if not path:
            raise ValueError(f"{setting}={_safe(url)}: name the Sentinel service: "
                             "redis+sentinel://h1:p1,h2:p2/service/db")
        service, rest = path[0], path[1:]
    else:
        service, rest = "", path
    if len(rest) > 1 or (rest and not rest[0].isdigit()):
        raise ValueError(f"{setting}={_safe(url)}: the path must be /db (a number)")
    db = int(rest[0]) if rest else 0
    if kind == CLUSTER and db != 0:
        raise ValueError(f"{setting}={_safe(url)}: a Redis Cluster has only database 0")
    return service, db


def _safe(url: str) -> str:
    """Return `url` with its password hidden (error messages end up in logs)."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def broker_url(url: str) -> RedisUrl:
    """Parse `REDIS_URL`: one Redis or a Sentinel group, never a cluster."""
    parsed = parse(url, "REDIS_URL")
    if parsed.kind == CLUSTER:
        raise ValueError(f"REDIS_URL={_safe(url)} names a Redis Cluster, but Celery's broker "
                         "has no cluster transport and RedBeat's saves span slots: give "
                         "REDIS_URL one Redis or a Sentinel group (redis+sentinel://) and the "
                         "cluster to STORE_URL, which holds the batches")
    return parsed


def celery_redis_settings(parsed: RedisUrl, redis_options: dict[str, Any]) -> dict[str, Any]:
    """Return Celery's and RedBeat's connection settings for `REDIS_URL`.

    One Redis: both take the URL. Sentinel: Celery wants ``sentinel://h1;sentinel://h2``
    plus ``master_name`` in its transport options, RedBeat ``redis-sentinel://`` plus
    ``sentinels`` and ``service_name`` in its options (RedBeat refuses Celery's form).
    ``broker_transport_options`` here is to be merged with the other transport options.
    """
    if parsed.kind == SINGLE:
        return {"broker_url": parsed.url, "broker_transport_options": {},
                "redbeat_redis_url": parsed.url, "redbeat_redis_options": dict(redis_options)}
    auth = f"{parsed.username or ''}:{parsed.password}@" if parsed.password else ""
    sentinel_kwargs = ({"password": parsed.sentinel_password}
                       if parsed.sentinel_password else None)
    host, port = parsed.hosts[0]
    redbeat: dict[str, Any] = {
        **redis_options, "sentinels": list(parsed.hosts), "service_name": parsed.service,
        "db": parsed.db, "password": parsed.password, "sentinel_kwargs": sentinel_kwargs}
    if parsed.username:
        redbeat["username"] = parsed.username
    settings: dict[str, Any] = {
        "broker_url": ";".join(f"sentinel://{auth}{h}:{p}/{parsed.db}" for h, p in parsed.hosts),
        "broker_transport_options": {"master_name": parsed.service,
                                     "sentinel_kwargs": sentinel_kwargs or {}},
        "redbeat_redis_url": f"redis-sentinel://{host}:{port}/{parsed.db}",
        "redbeat_redis_options": redbeat}
    if parsed.tls:
        settings["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        settings["redbeat_redis_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings
