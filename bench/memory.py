"""Redis memory per stored record: MEMORY USAGE (exact, SAMPLES 0) over a version's keys
against the raw JSON bytes of its records."""

from __future__ import annotations

import re

import redis

CHUNK = 10_000


def measure(connection: redis.Redis, stream: str) -> dict[str, float]:
    """Return bytes per record of the current version: records zset alone and all keys."""
    version = int(connection.get(f"ds:{{{stream}}}:current") or 0)
    base = f"ds:{{{stream}}}:b:{version}"
    records_key = f"{base}:rec"
    usage = {key: int(connection.memory_usage(key, samples=0) or 0)
             for key in connection.scan_iter(f"{base}:*", count=1000)}
    usage[base] = int(connection.memory_usage(base, samples=0) or 0)
    raw = count = 0
    for start in range(0, 10**8, CHUNK):
        members: list[str] = connection.zrange(records_key, start, start + CHUNK - 1)  # type: ignore[assignment]
        raw += sum(len(member.encode()) for member in members)
        count += len(members)
        if len(members) < CHUNK:
            break
    per_key: dict[str, float] = {}
    for key, size in usage.items():
        name = re.sub(r":dig:\d+$", ":dig:<i>", key.removeprefix(base)) or ":meta"
        per_key[name] = per_key.get(name, 0.0) + size / count
    total = sum(usage.values())
    return {"records": count, "raw_bytes": raw / count,
            "zset_bytes": usage[records_key] / count, "all_bytes": total / count,
            "zset_ratio": usage[records_key] / raw, "all_ratio": total / raw,
            "per_key": per_key}  # type: ignore[dict-item]
