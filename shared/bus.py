"""The NATS bus: one thin wrapper over nats-py that both sides use.

It owns connection lifecycle (connect with retry, jittered reconnect, bounded drain on exit), the
JetStream topology (streams, durable consumers, the policies bucket), and the decoding of inbound
messages into wire models. A message that does not validate is handed to an ``on_invalid`` callback
and dropped; it never reaches a consumer and never raises out of the iterator.

nats-py reconnects on its own after the first connection; the delay between attempts comes from
``reconnect_delay`` (exponential with full jitter), plugged in through nats-py's
``reconnect_to_server_handler``. The first connection is retried here, with the same delays, so a
spoke that starts before NATS simply waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue
from pydantic import ValidationError

from . import subjects
from .errors import BusUnavailable, InvalidMessage
from .messages import M, ScaleCommand, WireModel

logger = logging.getLogger(__name__)

InvalidCallback = Callable[[InvalidMessage], None]


@dataclass(frozen=True, slots=True)
class BusOptions:
    """How to reach NATS and how hard to try. Built from the process's settings."""

    url: str = "nats://127.0.0.1:4222"
    """One server, or several comma-separated (the servers of one cluster: losing one is a reconnect)."""
    name: str = "fleetscale"
    token: str | None = None
    creds_file: str | None = None
    nkey_seed: str | None = field(default=None, repr=False)
    """An nkey user seed (``SU...``), already read from its file; a secret, so never in a repr."""
    inbox_prefix: str | None = None
    """Where replies come back; a spoke uses its own (``subjects.spoke_inbox_prefix``), which is all
    its server permissions let it subscribe to. None: nats-py's shared ``_INBOX``."""
    connect_timeout_s: float = 2.0
    reconnect_base_s: float = 0.25
    """First reconnect delay; doubles per failed attempt up to ``reconnect_cap_s``."""
    reconnect_cap_s: float = 5.0
    drain_timeout_s: float = 5.0
    commands_max_age_s: float = 3600.0
    """Commands older than this are dropped by the stream; each also has its own deadline."""
    results_max_age_s: float = 86400.0
    duplicate_window_s: float = 120.0
    """JetStream de-duplicates commands by message id within this window."""
    ack_wait_s: float = 30.0
    """A spoke that takes longer than this to apply and report a command gets it redelivered."""
    js_domain: str | None = None
    """The JetStream domain the streams live in, when they are reached across a leaf node (a spoke
    on its cluster's leaf: the hub side's domain). None: the server connected to (``$JS.API``)."""
    stream_replicas: int = 1
    """Replicas of every stream and KV bucket the hub creates: 1 on one server, 3 on a cluster."""

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]


@dataclass(frozen=True, slots=True)
class DecisionRetention:
    """How much decision history the hub's stream keeps; whichever limit is hit first drops the oldest."""

    max_age_s: float = 7 * 86400.0
    max_msgs: int = 100_000
    max_bytes: int = 512 * 1024 * 1024


def decisions_stream_config(retention: DecisionRetention, *, replicas: int = 1) -> StreamConfig:
    """The decisions stream: one subject per decision id, holding only that decision's last revision.

    NB: ``max_msgs_per_subject=1`` turns the stream into a compacted log (as a KV bucket is), so a
    result that updates a decision replaces the older revision instead of adding to the history,
    and ``max_msgs`` counts decisions, not revisions.
    """
    return StreamConfig(
        name=subjects.DECISIONS_STREAM,
        subjects=[subjects.DECISIONS_ALL],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=retention.max_age_s,
        max_msgs=retention.max_msgs,
        max_bytes=retention.max_bytes,
        max_msgs_per_subject=1,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
    )


def reconnect_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): exponential backoff, full jitter.

    Full jitter (uniform in [0, backoff]) spreads a fleet of spokes that lost the same server, so they
    do not come back in lock-step (AWS Architecture blog, "Exponential Backoff And Jitter").
    """
    backoff = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, backoff)


def decode(model: type[M], data: bytes, *, subject: str = "") -> M:
    """Validate raw bytes as ``model``; raise ``InvalidMessage`` naming the first bad field."""
    try:
        return model.from_bytes(data)
    except ValidationError as e:
        first = next(iter(e.errors()), None)
        field = (".".join(str(p) for p in first["loc"]) or None) if first else None
        message = first["msg"] if first else str(e)
        raise InvalidMessage(
            f"{model.__name__} on {subject!r} is invalid: {field or '<message>'}: {message}",
            subject=subject,
            field=field,
        ) from e


@dataclass(frozen=True, slots=True)
class Delivery(Generic[M]):
    """A validated JetStream message with its handle, so the consumer acks when it is done."""

    model: M
    msg: Msg

    async def ack(self) -> bool:
        """Acknowledge and wait for the server to confirm. False if that failed.

        A lost ack is not an error for the consumer: the message comes back after ``ack_wait``
        and the handlers are idempotent (the spoke's ledger, the hub's intent table).
        """
        try:
            await self.msg.ack_sync()
        except (nats.errors.Error, TimeoutError) as e:
            logger.warning("ack of %s not confirmed (%r); it will be re-delivered", self.msg.subject, e)
            return False
        return True

    async def nak(self, delay_s: float | None = None) -> None:
        try:
            await self.msg.nak(delay=delay_s)
        except (nats.errors.Error, TimeoutError) as e:
            logger.warning("nak of %s failed (%r); it will be re-delivered after ack_wait", self.msg.subject, e)


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation that nats-py swallowed.

    NB: nats-py waits with ``asyncio.wait_for``, which on Python 3.11 swallows a cancellation that
    arrives as the awaited future completes. A consumer loop would then poll on forever, and the
    task that owns it would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _stop_watch(watch: KeyValue.KeyWatcher) -> None:
    """Stop a KV watch, and the nats-py task that feeds it.

    NB: that task (the subscription's callback) may be in ``asyncio.wait_for`` on the watch's setup
    when it is stopped. On Python 3.11 ``wait_for`` swallows a cancellation that arrives as the awaited
    future completes, and the task then waits forever on the closed subscription's queue. So a task
    that outlives the stop is cancelled once more, as is the task of a watch that could not be stopped.
    """
    feeder: asyncio.Task[None] | None = getattr(watch._sub, "_wait_for_msgs_task", None)
    try:
        await watch.stop()  # raises when the connection is closed or draining
        await asyncio.sleep(0)
    finally:
        if feeder is not None and not feeder.done():
            feeder.cancel()
@dataclass
class BusStats:
    """What the connection dropped on its own."""

    slow_consumer_drops: int = 0
    """Messages nats-py discarded because a subscription's buffer was full."""


class Bus:
    """A connected NATS client plus the project's JetStream topology."""

    def __init__(self, nc: Client, options: BusOptions, stats: BusStats | None = None) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(domain=options.js_domain)
        self.api_prefix = f"$JS.{options.js_domain}.API" if options.js_domain else "$JS.API"
        """Where this connection's JetStream API requests go (as nats-py's ``jetstream(domain=)``)."""
        self.options = options
        self.stats = stats or BusStats()
        self._spoke_consumers: set[str] = set()
        """Clusters whose consumer this connection has seen exist (hub side); forgotten on reconnect,
        since a server that restarted with an empty store lost them."""
        self._spoke_consumers_epoch = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(cls, options: BusOptions) -> AsyncIterator[Bus]:
        stats = BusStats()
        nc = await _connect_with_retry(options, stats)
        bus = cls(nc, options, stats)
        try:
            yield bus
        finally:
            await bus.close()

    async def close(self) -> None:
        """Flush what we published, then close.

        NB: not ``drain()``: by the time the bus closes, the root tasks that consumed its
        subscriptions have been cancelled, so draining would wait (up to its timeout) for queued
        messages nobody will process. Unprocessed core messages are telemetry (the next report
        supersedes it); unacknowledged JetStream messages are re-delivered.
        """
        if self.nc.is_closed:
            return
        try:
            if self.nc.is_connected:
                # nats-py annotates int, but any positive number of seconds works (it waits with
                # asyncio.wait_for).
                await self.nc.flush(timeout=self.options.drain_timeout_s)  # type: ignore[arg-type]
        except (nats.errors.Error, TimeoutError, OSError) as e:
            logger.warning("NATS flush on close did not finish (%r)", e)
        # NB: nats-py's close cancels its subscriptions' tasks only if it gets that far; a connection
        # lost as it closes raises before, and the tasks would run on with nothing to feed them.
        feeders: list[asyncio.Task[Any]] = [
            t for s in self.nc._subs.values() if isinstance(t := getattr(s, "_wait_for_msgs_task", None), asyncio.Task)
        ]
        try:
            await self.nc.close()
        except (nats.errors.Error, TimeoutError, OSError) as e:
            # The connection dropped as we closed it (the server went away at that moment):
            # there is nothing left to close, and shutting down must not fail for it.
            logger.warning("NATS connection lost while closing (%r)", e)
        finally:
            for task in feeders:
                task.cancel()

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    # --- topology -----------------------------------------------------------------------------

    async def ensure_topology(self, *, decisions: DecisionRetention | None = None) -> None:
        """Create or update the streams. Idempotent; both sides call it on start.

        Only the hub passes ``decisions``: the decisions stream is its own, and a spoke that set
        default limits on start would undo the hub's configured retention.
        """
        o = self.options
        await self._ensure_stream(
            StreamConfig(
                name=subjects.COMMANDS_STREAM,
                subjects=[subjects.COMMANDS_ALL],
                # Work queue: a command is gone once its spoke acks it, and one consumer per
                # cluster subject is enforced by the server.
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                max_age=o.commands_max_age_s,
                duplicate_window=o.duplicate_window_s,
                num_replicas=o.stream_replicas,
            )
        )
        await self._ensure_stream(
            StreamConfig(
                name=subjects.RESULTS_STREAM,
                subjects=[subjects.RESULTS_ALL],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=o.results_max_age_s,
                duplicate_window=o.duplicate_window_s,
                num_replicas=o.stream_replicas,
            )
        )
        if decisions is not None:
            await self._ensure_stream(decisions_stream_config(decisions, replicas=o.stream_replicas))

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Exists with another config (an upgrade changed a limit): update it in place.
            await self.js.update_stream(config)

    async def policies_bucket(self, history: int = 16) -> KeyValue:
        return await self._bucket(subjects.POLICIES_BUCKET, history)

    async def budgets_bucket(self, history: int = 16) -> KeyValue:
        return await self._bucket(subjects.BUDGETS_BUCKET, history)

    async def leases_bucket(self) -> KeyValue:
        """Sharded hubs' leases: only the latest value counts (every write is a CAS on its revision)."""
        return await self._bucket(subjects.LEASES_BUCKET, 1)

    async def _bucket(self, name: str, history: int) -> KeyValue:
        try:
            return await self.js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            return await self.js.create_key_value(
                KeyValueConfig(bucket=name, history=history, storage=StorageType.FILE,
                               replicas=self.options.stream_replicas)
            )

    # --- core NATS ----------------------------------------------------------------------------

    async def publish(self, subject: str, message: WireModel) -> None:
        await self.nc.publish(subject, message.to_bytes())

    async def hand_off(
        self,
        subject: str,
        put: Callable[[str, bytes], None],
        *,
        pending_msgs_limit: int = 65_536,
        pending_bytes_limit: int = 16 * 1024 * 1024,
    ) -> None:
        """Hand every message on ``subject`` to ``put`` (which must not block), unvalidated, until cancelled.

        For a consumer that queues messages itself (the hub's bounded inbox). NB: a callback, not
        ``sub.messages``: nats-py's iterator makes a task per message and moves one per turn of
        the event loop, so under a flood its buffer overflowed; the callback drains the buffer in
        one go. The client's own buffer is bounded too: past it nats-py drops messages and reports
        a slow consumer, counted in ``stats.slow_consumer_drops``.
        """

        async def on_message(msg: Msg) -> None:
            put(msg.subject, msg.data)

        sub = await self.nc.subscribe(
            subject, cb=on_message, pending_msgs_limit=pending_msgs_limit, pending_bytes_limit=pending_bytes_limit
        )
        try:
            await asyncio.Future()  # until cancelled: the subscription lives as long as this task
        finally:
            if not self.nc.is_closed:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()

    async def messages(
        self,
        subject: str,
        model: type[M],
        *,
        on_invalid: InvalidCallback,
        pending_msgs_limit: int = 1_000_000,
    ) -> AsyncIterator[tuple[str, M]]:
        """Subscribe and yield ``(subject, model)``; invalid messages go to ``on_invalid``."""
        sub = await self.nc.subscribe(
            subject, pending_msgs_limit=pending_msgs_limit, pending_bytes_limit=1024 * 1024 * 1024
        )
        try:
            async for msg in sub.messages:
                try:
                    yield msg.subject, decode(model, msg.data, subject=msg.subject)
                except InvalidMessage as e:
                    on_invalid(e)
        finally:
            if not self.nc.is_closed:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()

    # --- JetStream ----------------------------------------------------------------------------

    async def publish_durable(
        self, subject: str, message: WireModel | bytes, *, msg_id: str, timeout_s: float | None = None
    ) -> None:
        """Publish to a stream and wait (``timeout_s``, else nats-py's 5 s) for the server's ack.

        ``msg_id`` de-duplicates.
        """
        data = message if isinstance(message, bytes) else message.to_bytes()
        try:
            await self.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=timeout_s)
        except (nats.errors.Error, TimeoutError) as e:
            # Every way this fails (timeout, no responders, reconnecting, closed) means the same to
            # the caller: not stored, try again later. The bare TimeoutError is what nats-py raises
            # when its own timer fires under load.
            raise BusUnavailable(f"JetStream publish to {subject} failed: {e!r}", delay_s=1.0) from e

    async def publish_command(self, command: ScaleCommand) -> None:
        """Publish a command, first creating its cluster's consumer if this connection has not yet."""
        await self.ensure_spoke_consumer(command.cluster_id)
        await self.publish_durable(subjects.commands(command.cluster_id), command, msg_id=command.command_id)

    def spoke_consumer_config(self, cluster_id: str) -> ConsumerConfig:
        """Cluster ``cluster_id``'s durable command consumer, as docs/protocol.md specifies it."""
        name = subjects.spoke_consumer(cluster_id)
        return ConsumerConfig(
            name=name,
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait_s,
            max_deliver=-1,
            filter_subject=subjects.commands(cluster_id),
        )

    async def ensure_spoke_consumer(self, cluster_id: str) -> None:
        """Create ``spoke-C`` unless it exists (the hub's job: a spoke may only bind it).

        NB: an existing consumer is left as it is, never updated, so a spoke that created its own
        on an open server (same config) is not disturbed. The work queue keeps commands published
        before the consumer existed, so the order of the two does not lose any.
        """
        reconnects = int(self.nc.stats.get("reconnects", 0))
        if reconnects != self._spoke_consumers_epoch:
            self._spoke_consumers.clear()
            self._spoke_consumers_epoch = reconnects
        if cluster_id in self._spoke_consumers:
            return
        durable = subjects.spoke_consumer(cluster_id)
        try:
            try:
                await self.js.consumer_info(subjects.COMMANDS_STREAM, durable)
            except nats.js.errors.NotFoundError:
                await self.js.add_consumer(subjects.COMMANDS_STREAM, self.spoke_consumer_config(cluster_id))
                logger.info("created the command consumer %s", durable)
        except (nats.errors.Error, TimeoutError) as e:
            raise BusUnavailable(f"cannot create consumer {durable}: {e!r}", delay_s=1.0) from e
        self._spoke_consumers.add(cluster_id)
    async def purge_commands(self, cluster_id: str) -> int:
        """Delete the commands still queued for ``cluster_id`` (unacknowledged ones too); return how many.

        The hub revokes them when the cluster goes stale: it re-places that share elsewhere, and the
        queued commands would otherwise be applied when the spoke comes back.
        """
        request = json.dumps({"filter": subjects.commands(cluster_id)}).encode()
        try:
            reply = await self.nc.request(f"{self.api_prefix}.STREAM.PURGE.{subjects.COMMANDS_STREAM}", request,
                                          timeout=5.0)
        except (nats.errors.Error, TimeoutError) as e:
            raise BusUnavailable(f"purging the commands of {cluster_id} failed: {e!r}", delay_s=1.0) from e
        body = json.loads(reply.data)
        if "error" in body:
            raise BusUnavailable(f"purging the commands of {cluster_id} failed: {body['error']}", delay_s=1.0)
        return int(body.get("purged", 0))

    async def _back_off(self, what: str, error: BaseException, attempt: int) -> None:
        """Wait before re-establishing ``what`` after its ``attempt``-th consecutive loss."""
        delay = reconnect_delay(attempt - 1, base_s=self.options.reconnect_base_s, cap_s=self.options.reconnect_cap_s)
        logger.warning("%s lost (%r); retrying in %.2fs (attempt #%d)", what, error, delay, attempt)
        await asyncio.sleep(delay)

    async def kv_changes(self, kv: KeyValue) -> AsyncIterator[Any]:
        """Every change to a KV bucket, forever: the current values first, then updates.

        A lost watch (NATS down, server restarted) is re-established after a backoff and starts again
        with the current values, so a reader that applies entries idempotently misses nothing (a key
        deleted meanwhile comes back as its delete marker). Ends only when the connection is closed.
        """
        attempt = 0
        while True:
            try:
                watch = await self._open_watch(kv)
                attempt = 0
                try:
                    async for entry in watch:
                        if entry is not None:  # None marks the end of the current values
                            yield entry
                finally:
                    with contextlib.suppress(nats.errors.Error, TimeoutError):
                        await _stop_watch(watch)
            except (nats.errors.Error, TimeoutError) as e:
                if self.nc.is_closed:
                    return
                attempt += 1
                await self._back_off("KV watch", e, attempt)
            if self.nc.is_closed:
                return

    async def _open_watch(self, kv: KeyValue) -> KeyValue.KeyWatcher:
        """``kv.watchall()``, stopped again when this task is cancelled while it opens.

        NB: nats-py's ``KeyValue.watch`` subscribes (starting the subscription's heartbeat and
        flow-control tasks) and then awaits the consumer's info; cancelled there, it leaves the
        subscription and both tasks running, with no handle to stop them. So it runs shielded, and a
        cancellation waits (bounded) for it to open, stops it, and goes on.
        """
        opening = asyncio.ensure_future(kv.watchall())
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.options.drain_timeout_s):
                    await _stop_watch(await opening)
            raise

    async def durable(
        self,
        *,
        stream: str,
        subject: str,
        durable: str,
        model: type[M],
        on_invalid: InvalidCallback,
        batch: int = 64,
        poll_s: float = 1.0,
        create: bool = True,
        from_now: bool = False,
        inactive_threshold_s: float | None = None,
    ) -> AsyncIterator[Delivery[M]]:
        """Consume a durable pull consumer forever, yielding validated deliveries to ack.

        ``create``: make the consumer if it is missing (the hub's own consumers). A spoke passes
        False: its consumer is the hub's to create, and its credentials only let it look the
        consumer up, fetch and acknowledge; until the consumer exists it waits, retrying.

        An invalid message is reported and *terminated* (never redelivered): retrying bytes that do
        not parse cannot succeed. Lost connections are retried here, so the iterator outlives them.
        ``from_now``: a consumer created now starts at the stream's end, not its start;
        ``inactive_threshold_s``: the server deletes the consumer after this long without a client.
        """
        attempt = 0
        while True:
            try:
                psub = await self._pull_subscription(stream, subject, durable, create=create, from_now=from_now,
                                                     inactive_threshold_s=inactive_threshold_s)
                attempt = 0
                while True:
                    try:
                        msgs = await psub.fetch(batch, timeout=poll_s)
                    except TimeoutError:
                        # Both nats.errors.TimeoutError and the bare asyncio one that nats-py's
                        # fetch raises when the loop is busy: nothing arrived, poll again.
                        _raise_if_cancelled()
                        continue
                    _raise_if_cancelled()
                    for msg in msgs:
                        try:
                            yield Delivery(decode(model, msg.data, subject=msg.subject), msg)
                        except InvalidMessage as e:
                            on_invalid(e)
                            with contextlib.suppress(nats.errors.Error, TimeoutError):
                                await msg.term()
            except (nats.errors.Error, TimeoutError) as e:
                # Any NATS failure (connection lost, server restarted, consumer not there yet) is
                # the same to a consumer that must outlive it: subscribe again after a backoff.
                # Listing classes here once let an unlisted one stop the hub.
                if self.nc.is_closed:
                    return
                attempt += 1
                await self._back_off(f"durable consumer {durable}", e, attempt)

    async def _pull_subscription(
        self, stream: str, subject: str, durable: str, *, create: bool, from_now: bool = False,
        inactive_threshold_s: float | None = None,
    ) -> JetStreamContext.PullSubscription:
        if create:
            config = ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW if from_now else DeliverPolicy.ALL,
                inactive_threshold=inactive_threshold_s,
                ack_wait=self.options.ack_wait_s,
                max_deliver=-1,
                filter_subject=subject,
            )
            return await self.js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        await self._await_consumer(stream, durable)
        return await self.js.pull_subscribe_bind(durable=durable, stream=stream)

    async def _await_consumer(self, stream: str, durable: str, *, poll_cap_s: float = 1.0) -> None:
        """Return once ``durable`` exists. Missing is the normal state of a spoke no command has been
        sent to yet, so it is said once, not warned about every poll; other failures propagate."""
        attempt = 0
        while True:
            try:
                await self.js.consumer_info(stream, durable)
                return
            except nats.js.errors.NotFoundError:
                if attempt == 0:
                    logger.info("consumer %s does not exist yet; the hub creates it before its first command", durable)
                await asyncio.sleep(reconnect_delay(attempt, base_s=self.options.reconnect_base_s, cap_s=poll_cap_s))
                attempt += 1


async def _connect_with_retry(options: BusOptions, stats: BusStats) -> Client:
    async def on_error(e: Exception) -> None:
        if isinstance(e, nats.errors.SlowConsumerError):
            # One per dropped message during a flood: count them, log a few.
            stats.slow_consumer_drops += 1
            if stats.slow_consumer_drops in (1, 10, 100) or stats.slow_consumer_drops % 10_000 == 0:
                logger.warning("NATS dropped %d messages for slow consumers so far (%r)",
                               stats.slow_consumer_drops, e)
            return
        logger.warning("NATS error: %r", e)

    holder: list[Client] = []

    async def on_disconnected() -> None:
        if holder and (holder[0].is_closed or holder[0].is_draining):
            return  # our own shutdown
        logger.warning("NATS disconnected from %s; reconnecting", options.url)

    async def on_reconnected() -> None:
        logger.info("NATS reconnected to %s", options.url)

    def pick_server(servers: list[Server], _info: dict[str, Any]) -> tuple[Server | None, float]:
        best = min(servers, key=lambda s: s.reconnects)
        return best, reconnect_delay(best.reconnects, base_s=options.reconnect_base_s, cap_s=options.reconnect_cap_s)

    kwargs: dict[str, Any] = {
        "servers": options.servers,
        "name": options.name,
        "connect_timeout": options.connect_timeout_s,
        "max_reconnect_attempts": -1,
        "reconnect_to_server_handler": pick_server,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
        "drain_timeout": int(max(1, options.drain_timeout_s)),
        "ping_interval": 5,
        "max_outstanding_pings": 3,
    }
    if options.token:
        kwargs["token"] = options.token
    if options.creds_file:
        kwargs["user_credentials"] = options.creds_file
    if options.nkey_seed:
        kwargs["nkeys_seed_str"] = options.nkey_seed
    if options.inbox_prefix:
        kwargs["inbox_prefix"] = options.inbox_prefix
    attempt = 0
    while True:
        try:
            nc = await nats.connect(**kwargs)
            holder.append(nc)
            return nc
        except (OSError, nats.errors.NoServersError, TimeoutError) as e:
            delay = reconnect_delay(attempt, base_s=options.reconnect_base_s, cap_s=options.reconnect_cap_s)
            attempt += 1
            logger.warning(
                "cannot reach NATS at %s (%r); retrying in %.2fs (attempt #%d)", options.url, e, delay, attempt
            )
            await asyncio.sleep(delay)
