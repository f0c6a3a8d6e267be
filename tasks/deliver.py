"""The delivery worker: tasks on the ``deliver`` queue that load published versions into
destinations, in order and exactly once.

``ds.deliver.stream(stream, destination)`` is sent when a version publishes
(`app.delivery.after_publish`) and by the sweep. It takes the delivery's lock (renewed
while it runs), asks the destination which version its table holds, then loads each
missing version in order: the version's change set merged by key (upserts and deletes),
or a full replace of the current version when the table is new, a reload was asked for,
or the change sets since the held version are no longer kept. A failure is recorded with
a backoff and never raised: publishing and other destinations go on. Messages are
acknowledged on receipt; a delivery lost with its worker is found again by
``ds.deliver.sweep`` (every DELIVERY_SWEEP_SECONDS, from beat) once its lock expires.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from flask import current_app
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from app import delivery
from app.exceptions import ChangesExpired
from app.extensions import Store, get_celery, get_store
from app.ops import metrics
from app.ops.logs import redact, secret_values
from app.records import now_iso
from app.store.cursors import EVERYTHING
from app.store.delivery_state import DeliveryState
from config import names
from config.destinations import DeliveryTarget, DestinationDefinition
from config.streams import StreamDefinition

log = logging.getLogger(__name__)

# Most versions one task delivers before it leaves the rest to the next message.
MAX_STEPS = 100


class DeliveryFailed(Exception):
    """A delivery that cannot go on as planned (the next attempt plans again)."""


@shared_task(name=names.DELIVER_STREAM, ignore_result=True)
def deliver(stream: str, destination: str) -> str:
    """Bring `destination`'s table of `stream` to the current version; return the outcome."""
    store = get_store()
    definition = store.definitions.get(stream)
    target = next((t for t in definition.deliver_to if t.destination == destination),
                  None) if definition else None
    if definition is None or target is None:
        return "not_configured"
    state = store.delivery_states.get(stream, destination)
    if not state.due(int(time.time() * 1000)):
        return "backoff"
    found = store.destinations.get(destination)
    lock = store.delivery_states.lock(stream, destination,
                                      single_writer=bool(found and found.single_writer),
                                      timeout=current_app.config["DELIVERY_LOCK_SECONDS"])
    if not lock.acquire(blocking=False):
        return "busy"
    try:
        with renewing(lock, current_app.config["DELIVERY_LOCK_SECONDS"] / 3) as lost:
            return _deliver(store, stream, definition, target, found, state, lost)
    finally:
        with contextlib.suppress(LockError, RedisError):  # expired or taken over: not ours
            lock.release()


@shared_task(name=names.DELIVER_SWEEP, ignore_result=True)
def sweep() -> int:
    """Send a delivery for each destination that is behind, past its backoff and free."""
    store = get_store()
    sent = 0
    for stream, destination in delivery.due(store):
        delivery.send(get_celery(), stream, destination)
        sent += 1
    return sent


@contextmanager
def renewing(lock: Lock, every: float) -> Iterator[threading.Event]:
    """Renew `lock` every `every` seconds while the block runs; the event tells if lost."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                lock.reacquire()
            except LockError:
                lost.set()
                return
            except RedisError:
                continue  # Redis blinked: try again before the lock runs out

    thread = threading.Thread(target=beat, name="delivery-lock", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


def _deliver(store: Store, stream: str, definition: StreamDefinition, target: DeliveryTarget,
             found: DestinationDefinition | None, state: DeliveryState,
             lost: threading.Event) -> str:
    """Load every missing version; record success or the failure with its backoff."""
    config = current_app.config
    try:
        if found is None:
            raise DeliveryFailed(f"destination {target.destination!r} is not defined")
        from tasks.warehouse.loader import warehouse as warehouse_for  # dlt: deliver only

        warehouse = warehouse_for(target.destination, found, duckdb_dir=config["DUCKDB_DIR"],
                                  work_dir=config["DELIVERY_WORK_DIR"],
                                  secret_prefix=config["SECRET_ENV_PREFIX"])
        runner = _Runner(store, stream, definition, target, warehouse)
        return runner.catch_up(state, lost)
    except Exception as exc:
        message = describe_error(exc, found)
        wait = store.delivery_states.failed(
            stream, target.destination, message=message, at=now_iso(),
            base=config["DELIVERY_RETRY_BASE_SECONDS"], cap=config["DELIVERY_RETRY_MAX_SECONDS"])
        metrics.observe_delivery_failure(stream, target.destination)
        log.warning("delivery failed stream=%s destination=%s retry_in=%ss error=%s",
                    stream, target.destination, wait, message)
        return "failed"


class _Runner:
    """Delivers one stream to one destination, version after version."""

    def __init__(self, store: Store, stream: str, definition: StreamDefinition,
                 target: DeliveryTarget, warehouse: Any) -> None:
        self.store = store
        self.stream = stream
        self.definition = definition
        self.target = target
        self.table = target.table_for(stream)
        self.warehouse = warehouse
        self.pipeline = warehouse.pipeline(stream)

    def catch_up(self, state: DeliveryState, lost: threading.Event) -> str:
        """Load versions until the table holds the current one; return the outcome."""
        held = self.warehouse.delivered_version(self.pipeline, self.stream, self.table)
        if held != state.delivered_version:  # the store's copy follows the destination
            self.store.delivery_states.holds(self.stream, self.target.destination, held)
        reload = state.reload_pending
        outcome = "up_to_date"
        for _ in range(MAX_STEPS):
            current = self.store.reader.current_version(self.stream)
            if current is None or (held == current and not reload):
                break
            if lost.is_set():
                raise DeliveryFailed("the delivery lock was lost; another attempt goes on")
            version, mode = self.plan(held, current, reload)
            self.load(version, mode)
            if lost.is_set():  # another delivery may have loaded newer versions meanwhile
                self.store.delivery_states.ask_reload(self.stream, self.target.destination)
                raise DeliveryFailed("the delivery lock was lost during a load; a full "
                                     "reload is asked for")
            if reload:
                self.store.delivery_states.reload_done(self.stream, self.target.destination,
                                                       state.reloads_asked)
            held, reload, outcome = version, False, "delivered"
        return outcome

    def plan(self, held: int, current: int, reload: bool) -> tuple[int, str]:
        """Return the next version to load and how: ``merge`` its changes or ``replace``."""
        if reload or held == 0 or held > current:
            return current, "replace"
        try:
            chain = self.store.change_feed.chain(self.stream, held, current)
        except ChangesExpired:
            return current, "replace"
        return chain[0], "merge"

    def load(self, version: int, mode: str) -> None:
        """Load one version and record it."""
        from tasks.warehouse import rows
        from tasks.warehouse.loader import timestamp

        started = time.monotonic()
        batch = self.store.reader.batch(self.stream, version)
        published = str(batch.get("published_at") or batch["finished_at"])
        stamp = rows.Stamp(version, published, timestamp(published))
        key = self.definition.key
        if mode == "replace":
            chunks = self.store.reader.export(self.stream, version, EVERYTHING, rows.CHUNK)
            data = rows.snapshot(chunks, key, stamp)
        else:
            size, members = self.store.change_sets.of_version(self.stream, version)
            expected = sum((batch.get("changes") or {}).get(op, 0)
                           for op in ("added", "updated", "removed"))
            if size != expected:
                raise DeliveryFailed(f"the change set of version {version} is gone")
            data = rows.changes(members, key, stamp)
        record = {"version": version, "published_at": stamp.published_at,
                  "delivered_at": now_iso()}
        self.warehouse.load(self.pipeline, stream=self.stream, table=self.table, key_path=key,
                            mode=mode, rows=data, record=record)
        self.store.delivery_states.succeeded(
            self.stream, self.target.destination, version=version,
            published_at=stamp.published_at, delivered_at=now_iso(), mode=mode,
            rows=stamp.rows)
        seconds = time.monotonic() - started
        metrics.observe_delivery(self.stream, self.target.destination, mode, seconds, stamp.rows)
        log.info("delivered stream=%s destination=%s version=%s mode=%s rows=%s seconds=%.3f",
                 self.stream, self.target.destination, version, mode, stamp.rows, seconds)


def describe_error(exc: BaseException, definition: DestinationDefinition | None) -> str:
    """Return the root cause of a failure in one short line, with no secret in it."""
    root: BaseException = exc
    for _ in range(10):
        nested = getattr(root, "exception", None) or root.__cause__ or root.__context__
        if not isinstance(nested, BaseException):
            break
        root = nested
    text = " ".join(str(root).split()) or type(root).__name__
    message = f"{type(root).__name__}: {text}"[:500]
    named = [definition.credentials_env] if definition and definition.credentials_env else []
    return redact(message, secret_values(os.environ, named))
