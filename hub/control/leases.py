"""Partition leases: which hub decides which workloads, held in a JetStream KV bucket (sharded hubs).

The workloads are split into ``partitions`` by a stable hash of their key (``partition_of``). Each
partition is a key of the leases bucket (``p16-3``: partition 3 of 16) whose value names its owner and
an *epoch*, the fencing token every command of that partition carries (``shared.messages.Fence``).
Every hub also renews a heartbeat key (``hub-<id>``), so each one knows how many hubs are live.

All writes are compare-and-set on the key's revision, so two hubs never both win a partition. Expiry
is judged on the *observer's* monotonic clock, never by comparing wall clocks: a lease whose key has
not changed revision for ``ttl_s`` since this hub first saw that revision has lapsed, and may be taken
(with CAS on that revision). The owner stops deciding a partition ``renew_s`` before its own lease could
lapse (``Holding.valid_until``, counted from before its last successful write), so the old and the new
owner never decide the same partition at the same instant unless a process stalls; the fencing epoch
then makes the spoke refuse the stalled one's late commands.

Epochs grow by one with each new owner and never fall: a new epoch is ``max(previous + 1, unix ms)``,
so even after the bucket is lost (a NATS server whose store was wiped) a new epoch is above every
epoch the spokes remember, as long as the hubs' clocks do not run backwards by more than that.

Balancing: each hub aims at ``ceil(partitions / live hubs)``, takes lapsed or free partitions up to that
(in its own rendezvous-hash order, so hubs rarely race for the same one) and frees the ones above it.
A hub alone holds every partition. The pure part (``LeaseBook``, ``plan_moves``) is tested without a
server; ``LeaseKeeper`` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from hub.metrics import HubMetrics
from shared.bus import Bus

logger = logging.getLogger(__name__)

HUB_KEY_PREFIX = "hub-"
FORGET_HUB_AFTER_TTLS = 10
"""A heartbeat key unchanged for this many lease TTLs is deleted (CAS), so generated ids do not pile up."""


@functools.lru_cache(maxsize=1 << 16)
def partition_of(workload_key: str, partitions: int) -> int:
    """The partition of a workload (``namespace/name``): a stable hash, the same in every process and
    Python version (``hash()`` is salted per process, so it is not used)."""
    digest = hashlib.blake2b(workload_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def lease_key(partition: int, partitions: int) -> str:
    """The KV key, and the fence's lease name: the partition count is part of it, so hubs configured
    with another count never share (or fight over) a key."""
    return f"p{partitions}-{partition}"


def hub_key(hub_id: str) -> str:
    return f"{HUB_KEY_PREFIX}{hub_id}"


@dataclass(frozen=True, slots=True)
class LeaseValue:
    owner: str | None
    """None: released, free to take at once."""
    epoch: int

    def to_bytes(self) -> bytes:
        return json.dumps({"owner": self.owner, "epoch": self.epoch}).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> LeaseValue | None:
        """The value, or None when it is not one (deleted, or written by something else): such a key is
        taken like a free one, with CAS on its revision, and the epoch starts above the wall clock."""
        try:
            raw = json.loads(data or b"")
            owner, epoch = raw["owner"], raw["epoch"]
        except (ValueError, TypeError, KeyError):
            return None
        if (owner is not None and not isinstance(owner, str)) or not isinstance(epoch, int) or epoch < 0:
            return None
        return cls(owner, epoch)


def next_epoch(previous: LeaseValue | None, now_unix_s: float) -> int:
    return max((previous.epoch if previous is not None else 0) + 1, int(now_unix_s * 1000))


@dataclass(slots=True)
class Seen:
    """One key as this hub last saw it, and since when (monotonic) it has shown that revision."""

    revision: int
    value: bytes | None
    since: float


@dataclass(frozen=True, slots=True)
class Holding:
    """A partition this hub holds."""

    epoch: int
    revision: int
    valid_until: float
    """Monotonic: past this the hub no longer decides the partition, renewed or not."""


class LeaseBook:
    """What this hub knows of the leases bucket: every key's latest revision and since when it has
    seen it (pure; fed by a watch and by this hub's own writes)."""

    def __init__(self, hub_id: str, partitions: int, ttl_s: float) -> None:
        self.hub_id = hub_id
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.keys: dict[str, Seen] = {}

    def observe(self, key: str, revision: int, value: bytes | None, now: float) -> None:
        """A key's revision (``value`` None: deleted). An older revision than the one known is ignored
        (a watch that lags behind this hub's own write)."""
        seen = self.keys.get(key)
        if seen is not None and seen.revision >= revision:
            return
        self.keys[key] = Seen(revision, value, now)

    def lapsed(self, seen: Seen, now: float) -> bool:
        return now - seen.since >= self.ttl_s

    def live_hubs(self, now: float) -> list[str]:
        """Hub ids whose heartbeat key changed within the TTL, this one included, sorted."""
        live = {self.hub_id}
        for key, seen in self.keys.items():
            if key.startswith(HUB_KEY_PREFIX) and seen.value is not None and not self.lapsed(seen, now):
                live.add(key.removeprefix(HUB_KEY_PREFIX))
        return sorted(live)

    def lease(self, partition: int) -> tuple[Seen | None, LeaseValue | None]:
        seen = self.keys.get(lease_key(partition, self.partitions))
        return seen, (LeaseValue.from_bytes(seen.value) if seen is not None else None)

    def takeable(self, partition: int, now: float) -> bool:
        """Never written, released, unreadable, this hub id's own (an earlier run of it), or lapsed."""
        seen, value = self.lease(partition)
        return (seen is None or value is None or value.owner is None or value.owner == self.hub_id
                or self.lapsed(seen, now))

    def forgotten_hubs(self, now: float) -> list[tuple[str, int]]:
        """Heartbeat keys (key, revision) of hubs gone so long that their key can be deleted."""
        return [(k, s.revision) for k, s in self.keys.items()
                if k.startswith(HUB_KEY_PREFIX) and s.value is not None and k != hub_key(self.hub_id)
                and now - s.since >= FORGET_HUB_AFTER_TTLS * self.ttl_s]


@dataclass(frozen=True, slots=True)
class Moves:
    renew: list[int]
    take: list[int]
    release: list[int]


def _preference(hub_id: str, partition: int) -> bytes:
    """Rendezvous hashing: each hub tries free partitions in its own order, so two hubs seldom race."""
    return hashlib.blake2b(f"{hub_id}/{partition}".encode(), digest_size=8).digest()


def fair_share(partitions: int, hubs: int) -> int:
    return math.ceil(partitions / max(hubs, 1))


def plan_moves(book: LeaseBook, held: Iterable[int], now: float) -> Moves:
    """What to write this round: renew what is held up to the fair share, release the rest (highest
    partitions first), take lapsed or free partitions up to the share."""
    held = sorted(held)
    target = fair_share(book.partitions, len(book.live_hubs(now)))
    keep, release = held[:target], held[target:]
    room = target - len(keep)
    mine = set(held)
    candidates = [p for p in range(book.partitions) if p not in mine and book.takeable(p, now)]
    candidates.sort(key=lambda p: _preference(book.hub_id, p))
    return Moves(renew=keep, take=candidates[:max(room, 0)], release=release)


@dataclass
class LeaseKeeper:
    """Holds this hub's partitions: heartbeat, renew, balance, every ``renew_s``; frees them on stop.

    ``held`` and ``version`` are written by the keeper's thread (``run``) and read by the hub's loop:
    each is replaced or read in one step, which the interpreter makes atomic."""

    kv: KeyValue | None
    """The leases bucket; ``run`` opens its own on its own connection."""
    hub_id: str
    partitions: int
    renew_s: float
    ttl_s: float
    metrics: HubMetrics | None = None
    on_change: Callable[[], None] | None = None
    """Called when the held partitions change (the evaluator then re-plans everything it holds)."""
    clock: Callable[[], float] = time.monotonic
    held: dict[int, Holding] = field(default_factory=dict)
    version: int = 0
    """Grows whenever ``held`` changes."""
    book: LeaseBook = field(init=False)
    _live: tuple[str, ...] = field(init=False)
    _stop_soon: Callable[[], object] | None = field(init=False, default=None)
    """Stops ``hold`` from another thread (set once the keeper's thread runs)."""

    def __post_init__(self) -> None:
        self.book = LeaseBook(self.hub_id, self.partitions, self.ttl_s)
        self._live = (self.hub_id,)

    @property
    def bucket(self) -> KeyValue:
        if self.kv is None:
            raise RuntimeError("the lease keeper has no bucket yet (run() opens it)")
        return self.kv

    # --- what the evaluator and the dispatcher read ------------------------------------------------

    def holds(self, partition: int, now: float | None = None) -> Holding | None:
        holding = self.held.get(partition)
        if holding is None or holding.valid_until <= (self.clock() if now is None else now):
            return None
        return holding

    def live_hubs(self) -> list[str]:
        """As of the last round (the book itself is the keeper thread's)."""
        return list(self._live)

    # --- the rounds ----------------------------------------------------------------------------------

    async def run(self, connect: Callable[[], AbstractAsyncContextManager[Bus]]) -> None:
        """Hold leases until cancelled, then free them, so the other hubs take them at once.

        NB: on a thread of its own, with its own event loop and NATS connection (``connect``): the
        hub's event loop stalls for seconds under load (a first evaluation of 10,000 workloads), and
        renewals made there came late, so a live hub lost its leases and the partitions flapped
        between hubs (seen in bench/hub_throughput.py --hubs 2 at 10,000 workloads). The thread
        still shares the interpreter, which switches threads every few milliseconds.
        """
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        done: asyncio.Future[None] = loop.create_future()
        wake = self.on_change
        if wake is not None:
            def wake_threadsafe() -> None:
                with contextlib.suppress(RuntimeError):  # the hub's loop closed meanwhile
                    loop.call_soon_threadsafe(wake)
            self.on_change = wake_threadsafe

        def finish(error: BaseException | None) -> None:
            if not done.done():
                done.set_exception(error) if error is not None else done.set_result(None)

        def main() -> None:
            error: BaseException | None = None
            try:
                asyncio.run(self._hold(connect, stop))
            except BaseException as e:  # handed to the hub's task, which logs and stops the hub
                error = e
            with contextlib.suppress(RuntimeError):  # the hub's loop closed meanwhile
                loop.call_soon_threadsafe(finish, error)

        threading.Thread(target=main, name="partition leases", daemon=True).start()
        try:
            await asyncio.shield(done)
        finally:
            stop.set()
            if self._stop_soon is not None:
                with contextlib.suppress(RuntimeError):  # the keeper's loop already ended
                    self._stop_soon()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(done), self.renew_s + 3.0)

    async def _hold(self, connect: Callable[[], AbstractAsyncContextManager[Bus]], stop: threading.Event) -> None:
        """The keeper thread's loop: ``stop`` (set by the hub's loop) is bridged to an event of this loop."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._stop_soon = lambda: loop.call_soon_threadsafe(stopping.set)
        if stop.is_set():
            stopping.set()
        async with connect() as bus:
            self.kv = await bus.leases_bucket()
            await self.hold(bus.kv_changes(self.kv), stopping)

    async def hold(self, entries: AsyncIterator[Any], stop: asyncio.Event) -> None:
        """Follow the bucket (``entries``: ``Bus.kv_changes``) and run rounds until ``stop``; then free
        every held partition."""
        watcher = asyncio.create_task(self._follow(entries), name="lease watch")
        try:
            while not stop.is_set():
                started = self.clock()
                try:
                    await self.round()
                except (nats.errors.Error, TimeoutError) as e:
                    logger.warning("lease round failed (%r); the held leases stay valid until their own expiry", e)
                    self._drop_expired()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, self.renew_s - (self.clock() - started))):
                        await stop.wait()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.release_all()

    async def _follow(self, entries: AsyncIterator[Any]) -> None:
        async for entry in entries:
            deleted = entry.operation is not None  # DEL or PURGE
            self.book.observe(entry.key, entry.revision, None if deleted else (entry.value or b""), self.clock())

    async def round(self) -> Moves:
        """One heartbeat, renewal and balancing round; the moves it made."""
        now = self.clock()
        await self._heartbeat(now)
        self._drop_expired()
        self._live = tuple(self.book.live_hubs(now))
        moves = plan_moves(self.book, self.held, now)
        for p in moves.renew:
            await self._renew(p)
        for p in moves.release:
            await self._release(p, "above this hub's fair share")
        for p in moves.take:
            await self._take(p)
        for key, revision in self.book.forgotten_hubs(now):
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.APIError):
                await self.bucket.delete(key, last=revision)
        if self.metrics is not None:
            self.metrics.partitions_held.set(len(self.held))
            self.metrics.hubs_live.set(len(self._live))
        return moves

    async def _heartbeat(self, now: float) -> None:
        value = json.dumps({"hub": self.hub_id, "partitions": self.partitions}).encode()
        revision = await self.bucket.put(hub_key(self.hub_id), value)
        self.book.observe(hub_key(self.hub_id), revision, value, now)

    async def _write(self, partition: int, value: LeaseValue, last: int | None) -> int | None:
        """CAS write of one lease key: its new revision, or None when another hub wrote it first."""
        key = lease_key(partition, self.partitions)
        try:
            if last is None:
                return await self.bucket.create(key, value.to_bytes())
            return await self.bucket.update(key, value.to_bytes(), last=last)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def _claim(self, partition: int, epoch: int, last: int | None) -> bool:
        """Write this hub's lease at ``epoch`` over revision ``last`` (None: a new key); on success hold
        it until a renew interval before it could lapse. False: another hub wrote first."""
        before = self.clock()
        value = LeaseValue(self.hub_id, epoch)
        revision = await self._write(partition, value, last)
        if revision is None:
            return False
        self.held[partition] = Holding(epoch, revision, before + self.ttl_s - self.renew_s)
        self.book.observe(lease_key(partition, self.partitions), revision, value.to_bytes(), before)
        return True

    async def _renew(self, partition: int) -> None:
        holding = self.held[partition]
        if not await self._claim(partition, holding.epoch, holding.revision):
            self._lost(partition, "another hub wrote its key")

    async def _release(self, partition: int, why: str) -> None:
        holding = self.held.pop(partition)
        self._changed("released")
        logger.info("released partition %d (epoch %d): %s", partition, holding.epoch, why)
        # Not owned from here on, written or not: if the write fails, the lease lapses after the TTL.
        await self._write(partition, LeaseValue(None, holding.epoch), holding.revision)

    async def _take(self, partition: int) -> None:
        if not self.book.takeable(partition, self.clock()):
            return  # the watch brought a newer value since the round was planned: the CAS would win on it
        seen, previous = self.book.lease(partition)
        epoch = next_epoch(previous, time.time())
        if not await self._claim(partition, epoch, None if seen is None else seen.revision):
            return  # another hub was first; the watch brings its value
        self._changed("acquired")
        was = f"from {previous.owner}" if previous is not None and previous.owner else "free"
        logger.info("acquired partition %d (epoch %d, %s)", partition, epoch, was)

    def _drop_expired(self) -> None:
        now = self.clock()
        for p in [p for p, h in self.held.items() if h.valid_until <= now]:
            self._lost(p, "not renewed in time")

    def _lost(self, partition: int, why: str) -> None:
        if self.held.pop(partition, None) is not None:
            self._changed("lost")
            logger.warning("lost partition %d: %s", partition, why)

    def _changed(self, change: str) -> None:
        self.version += 1
        if self.metrics is not None:
            self.metrics.lease_changes.labels(change).inc()
            self.metrics.partitions_held.set(len(self.held))
        if self.on_change is not None:
            self.on_change()

    async def release_all(self) -> None:
        """Free every held partition and delete the heartbeat key (a clean stop hands over at once)."""
        for p in list(self.held):
            await self._release(p, "this hub is stopping")
        with contextlib.suppress(nats.errors.Error, nats.js.errors.APIError):
            await self.bucket.delete(hub_key(self.hub_id))
