"""The commands and views of deliveries: what to send, what is due, how far behind.

A published version is delivered to each destination of its stream by the task
``ds.deliver.stream`` on the ``deliver`` queue (`tasks.deliver`, which loads with dlt).
This module only decides and reports, from the store: `after_publish` sends one message
per destination when a version publishes, `due` tells the periodic sweep which
destinations are behind and free to deliver, `status` is what `GET /streams/<name>`,
the status page and `/metrics` show. Nothing here knows about HTTP or dlt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from flask import current_app

from app.extensions import Store
from app.records import iso_at, parse_time
from app.store.delivery_state import DeliveryState
from config import names
from config.destinations import DeliveryTarget
from config.streams import StreamDefinition

log = logging.getLogger(__name__)


def send(celery_app: Celery, stream: str, destination: str) -> bool:
    """Enqueue one delivery; return False if the broker refused it.

    A lost message costs only time (the sweep finds every destination that is behind), so
    the send is never retried and never fails its caller: a publish or a reload stands
    whatever the broker says. The message expires once the sweep would have sent it again.
    """
    expires = 3 * current_app.config["DELIVERY_SWEEP_SECONDS"]
    try:
        celery_app.send_task(names.DELIVER_STREAM, args=[stream, destination],
                             queue=names.DELIVER_QUEUE, expires=expires, retry=False)
    except Exception as exc:  # the broker is down or full
        log.warning("delivery not enqueued stream=%s destination=%s error=%s", stream,
                    destination, type(exc).__name__)
        return False
    return True


def after_publish(store: Store, celery_app: Celery, stream: str) -> int:
    """Send a delivery to each destination of a stream that just published; return how many
    were enqueued."""
    definition = store.definitions.get(stream)
    targets = definition.deliver_to if definition else []
    return sum(send(celery_app, stream, target.destination) for target in targets)


def due(store: Store, now_ms: int | None = None) -> Iterator[tuple[str, str]]:
    """Yield (stream, destination) of each delivery that is behind, past backoff and free."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    destinations = store.destinations.all()
    states = store.delivery_states
    for stream in store.definitions.names():
        definition = store.definitions.get(stream)
        current = store.reader.current_version(stream)
        if definition is None or current is None:
            continue
        for target in definition.deliver_to:
            state = states.get(stream, target.destination)
            behind = state.reload_pending or state.delivered_version != current
            found = destinations.get(target.destination)
            single = found.single_writer if found else False
            if behind and state.due(now_ms) and not states.locked(
                    stream, target.destination, single_writer=single):
                yield stream, target.destination


def status(store: Store, stream: str, definition: StreamDefinition,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """Return, per destination of the stream, what it holds and how far behind it is."""
    now = now or datetime.now(UTC)
    current = store.reader.current_version(stream) or 0
    return [_target_status(store, stream, target, current, now)
            for target in definition.deliver_to]


def lag(store: Store, stream: str, delivered: int, current: int, now: datetime
        ) -> tuple[int, float]:
    """Return how far a destination is behind: published versions, and seconds since the
    oldest of them was published (0, 0.0 when it holds the current version)."""
    if delivered == current:
        return 0, 0.0
    missing = store.delivery_states.published_after(stream, delivered, current)
    oldest = parse_time(missing[0][1]) if missing else None
    seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return len(missing), round(seconds, 3)


def _target_status(store: Store, stream: str, target: DeliveryTarget, current: int,
                   now: datetime) -> dict[str, Any]:
    destination = store.destinations.get(target.destination)
    state = store.delivery_states.get(stream, target.destination)
    versions, seconds = lag(store, stream, state.delivered_version, current, now)
    return {"destination": target.destination,
            "type": destination.type if destination else None,
            "table": target.table_for(stream),
            "delivered_version": state.delivered_version or None,
            "current_version": current or None,
            "lag_versions": versions, "lag_seconds": seconds,
            "last_delivery": _last_delivery(state), "last_error": _last_error(state),
            "reload_pending": state.reload_pending,
            "delivering": store.delivery_states.locked(
                stream, target.destination,
                single_writer=bool(destination and destination.single_writer))}


def _last_delivery(state: DeliveryState) -> dict[str, Any] | None:
    if not state.delivered_at:
        return None
    return {"version": state.delivered_version, "at": state.delivered_at,
            "published_at": state.published_at, "mode": state.mode, "rows": state.rows}


def _last_error(state: DeliveryState) -> dict[str, Any] | None:
    if not state.error:
        return None
    retry = iso_at(state.retry_at_ms / 1000) if state.failures and state.retry_at_ms else None
    return {"message": state.error, "at": state.error_at, "failures_in_a_row": state.failures,
            "retry_at": retry}
