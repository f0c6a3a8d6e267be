"""Redis clients for the addresses of `config.redis_url`, the servers behind each, and the
errors that mean "unreachable for now".

`connect` returns a client of one Redis, of the master a Sentinel group names (it finds
the new master after a failover), or of a Redis Cluster (it follows the slots: each
command and Lua script goes to the master of its keys' slot; never to a replica, whose
copy may lag, so a reader could see a version go backwards). The store is typed against
`redis.Redis`; `RedisCluster` offers every command it uses. `servers` lists every server
a client depends on, for the probes and the start-up checks. One Redis and a Sentinel
group connect on first use; `RedisCluster` reads the cluster's layout when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from config.redis_url import CLUSTER, SENTINEL, RedisUrl

# Timeouts in seconds: a dead server is noticed in seconds, a slow command is waited for.
OPTIONS: dict[str, Any] = {"decode_responses": True, "socket_connect_timeout": 5,
                           "socket_timeout": 30, "health_check_interval": 30}

# What redis-py raises while a server is down or a failover is under way (the cluster
# refusing queries, a slot without a master, a demoted master refusing writes).
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, ClusterDownError, ClusterError, TryAgainError,
    ReadOnlyError, SlotNotCoveredError)


def is_unavailable(error: BaseException) -> bool:
    """True when `error` says the store is unreachable for now (retry later), not a bug."""
    if isinstance(error, UNAVAILABLE):
        return True
    # "Redis Cluster cannot be connected": no start-up node answered.
    return (isinstance(error, RedisClusterException)
            and isinstance(error.__cause__, UNAVAILABLE))


def connect(address: RedisUrl) -> redis.Redis:
    """Return a client of `address` (nothing connects until the first command)."""
    auth: dict[str, Any] = {"username": address.username, "password": address.password}
    if address.kind == CLUSTER:
        nodes = [ClusterNode(host, port) for host, port in address.hosts]
        cluster = RedisCluster(startup_nodes=nodes, ssl=address.tls, **auth, **OPTIONS)
        return cast(redis.Redis, cluster)
    if address.kind == SENTINEL:
        sentinel_kwargs = {"socket_connect_timeout": OPTIONS["socket_connect_timeout"],
                           "socket_timeout": 5}
        if address.sentinel_password:
            sentinel_kwargs["password"] = address.sentinel_password
        sentinel = Sentinel(address.hosts, sentinel_kwargs=sentinel_kwargs)
        return sentinel.master_for(address.service, db=address.db, ssl=address.tls,
                                   **auth, **OPTIONS)
    return redis.Redis.from_url(address.url, **OPTIONS)


@dataclass(frozen=True)
class Server:
    """One server behind a client: its address, role and a client of it alone."""

    name: str
    role: str  # "master", "replica", "single" or "failed"
    client: redis.Redis
    down: bool = False  # the cluster or the sentinels hold it down: not worth asking


def servers(connection: redis.Redis) -> list[Server]:
    """Return every server `connection` depends on (asks the cluster or the sentinels).

    The layout a client follows leaves out the servers the cluster or the sentinels
    marked failed (a dead replica, a master a replica replaced); they are listed too, with
    the role `failed` (cluster) or `replica` (Sentinel) and `down` set, so a probe lists
    them without waiting on them.
    """
    if isinstance(connection, RedisCluster):
        return _cluster_servers(connection)
    pool = connection.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        sentinel = pool.sentinel_manager
        master = sentinel.discover_master(pool.service_name)
        down = _sentinel_down(sentinel, pool.service_name)
        listed = [("master", master, False),
                  *(("replica", r, False) for r in sentinel.discover_slaves(pool.service_name)),
                  *(("replica", r, True) for r in down)]
        return [Server(f"{host}:{port}", role, _alone(pool.connection_kwargs, host, port), gone)
                for role, (host, port), gone in listed]
    kwargs = pool.connection_kwargs
    return [Server(f"{kwargs.get('host', 'unix')}:{kwargs.get('port', '')}", "single",
                   connection)]


def _cluster_servers(cluster: RedisCluster) -> list[Server]:
    found = []
    for node in cluster.get_nodes():
        role = "master" if node.server_type == "primary" else "replica"
        found.append(Server(node.name, role, cluster.get_redis_connection(node)))
    try:
        listed: Any = cluster.cluster_nodes()
    except redis.RedisError:  # the layout above is all there is to go on
        return found
    known = {server.name for server in found}
    kwargs = cluster.nodes_manager.connection_kwargs
    for address, about in listed.items():
        name = address.split("@")[0]
        if name not in known and "fail" in str(about.get("flags", "")).split(","):
            host, _, port = name.rpartition(":")
            found.append(Server(name, "failed", _alone(kwargs, host, int(port)), True))
    return found


def _sentinel_down(sentinel: Sentinel, service: str) -> list[tuple[str, int]]:
    """Return the replicas the sentinels hold down (`discover_slaves` leaves them out)."""
    for node in sentinel.sentinels:
        try:
            replicas: Any = node.sentinel_slaves(service)
        except redis.RedisError:
            continue
        return [(r["ip"], int(r["port"])) for r in replicas if r["is_sdown"] or r["is_odown"]]
    return []


def _alone(options: dict[str, Any], host: str, port: int) -> redis.Redis:
    """Return a client of one server, with the credentials and timeouts of `options`."""
    kept = ("username", "password", "db", "ssl", "socket_connect_timeout", "socket_timeout")
    kwargs = {key: options[key] for key in kept if key in options}
    return redis.Redis(host=host, port=port, decode_responses=True,
                       retry=Retry(NoBackoff(), 0), **kwargs)  # a probe asks once


def refresh(connection: redis.Redis) -> None:
    """Ask the cluster for its current layout (after a failover); no-op otherwise."""
    if isinstance(connection, RedisCluster):
        connection.nodes_manager.initialize()
