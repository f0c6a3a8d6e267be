"""The highest current version of each stream this process has served, so that a
failover that lost the last publish never shows a reader an older version.

Replication is asynchronous: a master that dies can take the last pointer move (PUBLISH)
with it, and the replica that takes over answers the version before. A reader that was
given version N by this process must not be given N-1 next. `ServedVersions` keeps, per
stream, the highest version served as the current one (one dict lookup per read; a
bounded dict, oldest out first). When the store answers a lower one, a second look at the
stream's slot decides: its version counter or history still reaching the served version
means the same stream lost a publish, and the read is refused with `StoreBehind` (503,
retry) until the pointer catches up; both below it mean the stream was deleted and
defined again (its keys start over at version 1), and the memory starts over with it.
The guarantee is per process: another web process may not yet have served N.
"""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis

from app.exceptions import StoreBehind
from app.store.keys import StreamKeys
from config import defaults


class ServedVersions:
    """Per stream, the highest current version served; refuses to serve a lower one."""

    def __init__(self, connection: Redis, prefix: str,
                 kept: int = defaults.SERVED_VERSIONS_KEPT) -> None:
        self.connection = connection
        self.prefix = prefix
        self.kept = kept
        self._high: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, stream: str, version: int) -> None:
        """Note `version` served as the current one; StoreBehind if one above was served."""
        high = self._high.get(stream, 0)
        if version > high:
            self._note(stream, version)
        elif version < high:
            if self._same_stream(stream, high):
                raise StoreBehind(stream, version, high)
            self.forget(stream)  # defined again since: it counts from 1
            self._note(stream, version)

    def forget(self, stream: str) -> None:
        """Drop what was served of `stream` (it was deleted)."""
        with self._lock:
            self._high.pop(stream, None)

    def _note(self, stream: str, version: int) -> None:
        with self._lock:
            if version <= self._high.get(stream, 0):
                return  # another thread served a newer one meanwhile
            self._high.pop(stream, None)  # re-inserted last: the newest stays longest
            self._high[stream] = version
            while len(self._high) > self.kept:
                self._high.pop(next(iter(self._high)))

    def _same_stream(self, stream: str, high: int) -> bool:
        """True when the version counter or the history still reaches `high`."""
        keys = StreamKeys(self.prefix, stream)
        with self.connection.pipeline(transaction=False) as pipe:  # one slot, one trip
            pipe.get(keys.seq)
            pipe.zrevrange(keys.batches, 0, 0, withscores=True)
            seq, newest = pipe.execute()
        top: Any = newest[0][1] if newest else 0
        return max(int(seq or 0), int(top)) >= high
