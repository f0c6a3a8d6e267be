"""Reading ahead: the next upstream page is fetched while the current one is sent on.

A batch's fetch alternates between waiting for the upstream (request, body, parse, the
next page's request) and work on the page (middleware, encoding, the ingest message).
`ReadAhead` runs the pager in a thread of its own, at most `depth` pages ahead of the
page being worked on, so the two overlap. Nothing else changes: the pager still asks
for one page at a time, in order, each request only once the previous answer said what
comes next, through the same session, guard, throttle and retries; pages come out in
order, and an error of the pager comes out at its place, after every page before it.

When the work on a page fails, or the batch ends early, `close` stops the thread: it
finishes the request in flight (bounded by the source's timeouts) and fetches no more.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class _End:
    """What the thread puts last: the pager's error, or None once it ran out of pages."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterates `items` in a thread at most `depth` items ahead; depth 0 is no thread."""

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self.items = items
        self.depth = depth
        self._slots = threading.Semaphore(depth)
        self._queue: queue.SimpleQueue[T | _End] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        if self.depth <= 0:
            yield from self.items
            return
        # The thread logs and measures as this one does (log fields, the app context).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._produce,),
                                        name="read-ahead", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                self._slots.release()  # this page is being worked on: fetch the next one
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading ahead: the thread ends after the request it may have in flight."""
        self._stop.set()
        self._slots.release()  # wakes a thread waiting for a slot, so it sees the stop

    def _produce(self) -> None:
        iterator = iter(self.items)
        try:
            while self._take_slot():
                try:
                    item = next(iterator)
                except StopIteration:
                    self._queue.put(_End(None))
                    return
                self._queue.put(item)
        except BaseException as exc:  # raised in the consumer's thread, at its place
            self._queue.put(_End(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator's cleanup runs in the thread that ran it
                close()

    def _take_slot(self) -> bool:
        """Wait until the consumer takes a page (or stops); return False once stopped."""
        self._slots.acquire()
        return not self._stop.is_set()
