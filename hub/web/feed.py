"""The live feed: decisions and fleet summaries pushed to browsers as server-sent events.

``GET /api/v1/events`` (``text/event-stream``) carries three events, each one JSON object per
``data:`` line: ``decision`` (a decision record as ``/api/v1/decisions/{id}`` serves it, sent when it
is recorded and again, same id, each time a command result is attached to it), ``fleet`` (the
overview: clusters, workloads, policies; on connect and every ``fleet_interval_s``) and ``gap``
(``{"dropped": n}``: events were lost for this subscriber, re-read ``/api/v1/decisions``). Comment
lines are heartbeats, so proxies keep an idle stream open.

Publishing never waits on a subscriber: each one has a bounded queue, and an event that does not fit
is dropped for that subscriber alone and counted. The evaluator calls ``on_decision`` inline, so a
slow browser must cost it nothing; events are encoded once for all subscribers, and not at all
while nobody listens (at fleet scale a tick records thousands of decisions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from hub.decisions.model import Decision
from hub.metrics import HubMetrics

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256
"""Frames buffered per subscriber: a few seconds of a busy fleet."""
DEFAULT_QUEUE_BYTES = 8 * 1024 * 1024
"""Bytes buffered per subscriber: a ``fleet`` frame of thousands of workloads is megabytes, so a
count alone would not bound a slow client's memory. One frame is always let into an empty queue."""
DEFAULT_FLEET_INTERVAL_S = 2.0
DEFAULT_HEARTBEAT_S = 15.0
"""Under the 30-60 s idle timeouts common in proxies and load balancers."""
RETRY_MS = 2000
"""Sent as ``retry:``: how long EventSource waits before it reconnects."""

HEARTBEAT = b": heartbeat\n\n"
_CLOSED = b""


def frame(event: str, data: Any) -> bytes:
    """One SSE frame: a model by its own serialiser (the shape the API serves), anything else by orjson.
    Neither emits a raw newline without an indent, so the JSON always fits one ``data:`` line."""
    body = data.model_dump_json().encode() if isinstance(data, BaseModel) else orjson.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"


class Subscription:
    """One subscriber's bounded queue of encoded frames."""

    def __init__(self, size: int, max_bytes: int = DEFAULT_QUEUE_BYTES) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(size)
        self._bytes = 0
        self.max_bytes = max_bytes
        self._unreported = 0
        self.dropped = 0
        self.closed = False

    def offer(self, data: bytes) -> bool:
        """Queue a frame without waiting; False (and counted) when the subscriber is too slow."""
        if self.closed:
            return False
        if self._queue.full() or (self._bytes and self._bytes + len(data) > self.max_bytes):
            self.dropped += 1
            self._unreported += 1
            return False
        self._queue.put_nowait(data)
        self._bytes += len(data)
        return True

    def close(self) -> None:
        """End the stream: pending frames are discarded so the end marker always fits."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._bytes = 0
        self._queue.put_nowait(_CLOSED)

    async def next(self, heartbeat_s: float) -> bytes | None:
        """The next bytes to write: a frame (after a ``gap`` notice if some were dropped), a
        heartbeat after ``heartbeat_s`` of silence, or None once closed."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the get completes, and a stream task would then outlive shutdown.
            async with asyncio.timeout(heartbeat_s):
                data = await self._queue.get()
        except TimeoutError:
            return HEARTBEAT
        if not data:  # _CLOSED
            return None
        self._bytes -= len(data)
        if self._unreported:
            # NB: the dropped events are newer than this frame; the client re-reads the decisions
            # and merges by id, so the order of the notice and this frame does not matter.
            notice = frame("gap", {"dropped": self._unreported})
            self._unreported = 0
            return notice + data
        return data


class Feed:
    def __init__(
        self,
        metrics: HubMetrics,
        *,
        fleet: Callable[[], Any] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        fleet_interval_s: float = DEFAULT_FLEET_INTERVAL_S,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    ) -> None:
        self.metrics = metrics
        self.fleet = fleet
        self.queue_size = queue_size
        self.fleet_interval_s = fleet_interval_s
        self.heartbeat_s = heartbeat_s
        self.dropped = 0
        self._subscriptions: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @contextmanager
    def subscribe(self, queue_size: int | None = None) -> Iterator[Subscription]:
        sub = Subscription(queue_size or self.queue_size)
        self._subscriptions.add(sub)
        self.metrics.feed_subscribers.set(len(self._subscriptions))
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)
            self.metrics.feed_subscribers.set(len(self._subscriptions))

    def publish(self, event: str, data: Any) -> None:
        if self._subscriptions:
            self._broadcast(event, frame(event, data))

    def _broadcast(self, event: str, encoded: bytes) -> None:
        for sub in self._subscriptions:
            if not sub.offer(encoded):
                self.dropped += 1
                self.metrics.feed_dropped.labels(event).inc()

    def on_decision(self, decision: Decision) -> None:
        """The ``DecisionLog`` listener. It must never raise into the evaluator or the result consumer."""
        if not self._subscriptions:
            return
        try:
            self.publish("decision", decision)
        except Exception:
            logger.exception("live feed: decision %s not published", decision.id)

    def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()

    async def on_shutdown(self, app: web.Application) -> None:
        # aiohttp runs on_shutdown before it waits for handlers: open streams end now, not at the timeout.
        self.close()

    def fleet_frame(self) -> bytes:
        """The ``fleet`` frame now, or nothing if the summary cannot be built (logged; the next one may)."""
        if self.fleet is None:
            return b""
        try:
            return frame("fleet", self.fleet())
        except Exception:
            logger.exception("live feed: fleet summary failed; trying again in %.1f s", self.fleet_interval_s)
            return b""

    async def run(self) -> None:
        """Publish the fleet summary every ``fleet_interval_s`` while anyone listens."""
        while True:
            await asyncio.sleep(self.fleet_interval_s)
            if self._subscriptions and (encoded := self.fleet_frame()):
                self._broadcast("fleet", encoded)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/events``: this subscriber's events until it goes away or the hub stops."""
        resp = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        resp.content_type = "text/event-stream"
        # Subscribed before the first summary is built, so no decision falls between the two.
        with self.subscribe() as sub:
            await resp.prepare(request)
            try:
                await resp.write(b"retry: %d\n\n" % RETRY_MS + self.fleet_frame())
                while (data := await sub.next(self.heartbeat_s)) is not None:
                    await resp.write(data)
            except ConnectionResetError:
                pass  # the client went away (aiohttp's ClientConnectionResetError is one)
        return resp
