"""Partition leases (hub.control.leases): the pure balancing, then CAS, expiry and hand-over against a real
nats-server's KV bucket, with a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from hub.control.leases import (
    LeaseBook,
    LeaseKeeper,
    LeaseValue,
    hub_key,
    lease_key,
    next_epoch,
    partition_of,
    plan_moves,
)
from hub.control.shard import Shard
from hub.state import share_of
from shared.bus import Bus, BusOptions
from tests.e2e.conftest import eventually

P = 16
TTL = 8.0
RENEW = 2.0


# --- pure --------------------------------------------------------------------------------------------


def test_the_partition_of_a_workload_is_stable_and_spreads_the_fleet() -> None:
    keys = [f"ns/w{i}" for i in range(4000)]
    parts = [partition_of(k, P) for k in keys]
    assert parts == [partition_of(k, P) for k in keys]  # deterministic (not Python's salted hash())
    assert partition_of("inference/llama", 16) == partition_of("inference/llama", 16)
    counts = Counter(parts)
    assert set(counts) == set(range(P))
    assert max(counts.values()) < 1.3 * 4000 / P  # about even


def test_free_gpus_are_split_without_overlap_or_loss() -> None:
    for free in range(0, 40):
        for hubs in range(1, 6):
            parts = [share_of(free, r, hubs) for r in range(hubs)]
            assert sum(parts) == free and max(parts) - min(parts) <= 1


def test_a_hub_alone_takes_every_partition_then_gives_up_half_to_a_second() -> None:
    book = LeaseBook("a", P, TTL)
    moves = plan_moves(book, [], now=0.0)
    assert sorted(moves.take) == list(range(P)) and not moves.release
    book.observe(hub_key("b"), 1, b"{}", now=1.0)  # a second hub's heartbeat
    moves = plan_moves(book, range(P), now=1.5)
    assert moves.renew == list(range(8)) and moves.release == list(range(8, P)) and not moves.take
    # Its heartbeat unchanged for a TTL: gone, and the share is all of them again.
    assert plan_moves(book, range(8), now=1.0 + TTL).take != []


def test_a_lease_lapses_only_after_a_ttl_of_the_observers_own_clock() -> None:
    book = LeaseBook("b", P, TTL)
    for p in range(P):
        book.observe(lease_key(p, P), p + 1, LeaseValue("a", 5).to_bytes(), now=100.0)
    book.observe(hub_key("a"), 99, b"{}", now=100.0)
    assert plan_moves(book, [], now=100.0 + TTL - 0.1).take == []  # a's leases still run
    book.observe(hub_key("a"), 120, b"{}", now=100.0 + TTL - 0.1)  # a renews its heartbeat, not its leases
    moves = plan_moves(book, [], now=100.0 + TTL)
    assert len(moves.take) == P // 2  # lapsed, and b takes its fair share of two live hubs
    book.observe(lease_key(3, P), 200, LeaseValue("a", 5).to_bytes(), now=100.0 + TTL)  # a renewed 3 after all
    assert not book.takeable(3, now=100.0 + TTL + 1)


def test_an_epoch_never_goes_back() -> None:
    assert next_epoch(None, 0.0) == 1
    assert next_epoch(LeaseValue("a", 41), 0.0) == 42
    # A bucket lost with its store starts again above every epoch issued before (wall-clock ms).
    assert next_epoch(None, 1_800_000_000.0) == 1_800_000_000_000
    assert next_epoch(LeaseValue("a", 1_900_000_000_000), 1_800_000_000.0) == 1_900_000_000_001


# --- against a real KV bucket --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def bucket(nats_url: str) -> AsyncIterator[tuple[Bus, KeyValue]]:
    async with Bus.connect(BusOptions(url=nats_url)) as bus:
        name = f"leases_{uuid.uuid4().hex[:8]}"  # one per test: the server is shared by the session
        kv = await bus.js.create_key_value(KeyValueConfig(bucket=name, history=1, storage=StorageType.MEMORY))
        try:
            yield bus, kv
        finally:
            await bus.js.delete_key_value(name)


@asynccontextmanager
async def following(bus: Bus, keeper: LeaseKeeper) -> AsyncIterator[LeaseKeeper]:
    """The keeper with its watch of the bucket running; its rounds are the test's to call."""
    task = asyncio.create_task(keeper._follow(bus.kv_changes(keeper.kv)))
    try:
        yield keeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def caught_up(keeper: LeaseKeeper, kv: KeyValue) -> None:
    """Wait until the keeper's watch has seen the bucket's latest write."""
    status = await kv.status()
    last = status.stream_info.state.last_seq
    await eventually(lambda: max((s.revision for s in keeper.book.keys.values()), default=0) >= last)


def keeper(kv: KeyValue, hub_id: str, clock: Clock) -> LeaseKeeper:
    return LeaseKeeper(kv, hub_id, P, renew_s=RENEW, ttl_s=TTL, clock=clock)


@pytest.mark.nats
async def test_two_hubs_split_the_partitions_and_a_lapsed_hubs_share_moves(nats_url: str) -> None:
    clock = Clock()
    async with bucket(nats_url) as (bus, kv):
        a, b = keeper(kv, "a", clock), keeper(kv, "b", clock)
        async with following(bus, a), following(bus, b):
            await a.round()
            assert sorted(a.held) == list(range(P))  # alone: everything
            first_epochs = {p: h.epoch for p, h in a.held.items()}
            await b.round()  # b's heartbeat; a's leases are fresh, so b takes nothing yet
            assert not b.held
            await caught_up(a, kv)
            await a.round()  # a sees two hubs: keeps its share, frees the rest at once
            assert len(a.held) == P // 2
            await caught_up(b, kv)
            await b.round()
            assert len(b.held) == P // 2 and not set(a.held) & set(b.held)
            assert all(b.held[p].epoch > first_epochs[p] for p in b.held)  # a new owner, a higher epoch

            shard_a, shard_b = Shard(a), Shard(b)
            workloads = [f"ns/w{i}" for i in range(200)]
            assert all(shard_a.owns(w) != shard_b.owns(w) for w in workloads)  # every workload exactly once
            fence = shard_b.fence(next(w for w in workloads if shard_b.owns(w)))
            assert fence is not None and fence.lease.startswith(f"p{P}-")
            assert shard_a.share() == (0, 2) and shard_b.share() == (1, 2)

            # a stops renewing (killed): once b has seen its keys unchanged for a TTL, b takes them all.
            clock.now += RENEW
            await b.round()
            assert len(b.held) == P // 2
            assert a.holds(next(iter(a.held)), now=clock.now + TTL - RENEW) is None  # a stops deciding first
            clock.now += TTL
            await b.round()  # heartbeat: a's lapsed too, so b's share is everything
            await b.round()
            assert sorted(b.held) == list(range(P))
            # a comes back (a paused process): its renewals fail on the revision, it holds nothing.
            await a.round()
            assert sorted(a.held) == []


@pytest.mark.nats
async def test_compare_and_set_lets_one_of_two_racing_hubs_win(nats_url: str) -> None:
    clock = Clock()
    async with bucket(nats_url) as (_, kv):
        a, b = keeper(kv, "a", clock), keeper(kv, "b", clock)
        # Neither watches: both think partition 5 was never written, and both try to create it.
        await a._take(5)
        await b._take(5)
        assert 5 in a.held and 5 not in b.held
        entry = await kv.get(lease_key(5, P))
        assert LeaseValue.from_bytes(entry.value) == LeaseValue("a", a.held[5].epoch)
        # b planned its round before its watch brought a's value; by the time it writes, it has: a CAS on
        # that (current) revision would win, so the take is checked against the book again first.
        entry = await kv.get(lease_key(5, P))
        b.book.observe(lease_key(5, P), entry.revision, entry.value, clock.now)
        await b._take(5)
        assert 5 not in b.held and 5 in a.held
        # b's renewal of a lease it believes it holds, on a revision since renewed by a, fails: lost at once.
        b.held[5] = a.held[5]
        await a._renew(5)
        await b._renew(5)
        assert 5 not in b.held


@pytest.mark.nats
async def test_a_hub_that_stops_cleanly_hands_its_partitions_over_at_once(nats_url: str) -> None:
    clock = Clock()
    async with bucket(nats_url) as (bus, kv):
        a, b = keeper(kv, "a", clock), keeper(kv, "b", clock)
        async with following(bus, b):
            await a.round()
            await a.release_all()
            await caught_up(b, kv)
            await b.round()  # no TTL to wait: released keys are free, the heartbeat key is gone
            assert sorted(b.held) == list(range(P))
            assert b.live_hubs() == ["b"]


@pytest.mark.nats
async def test_the_keeper_holds_from_its_own_thread_while_the_hubs_loop_is_blocked(nats_url: str) -> None:
    """``run``: on its own thread and connection, renewals go on while the hub's event loop does not
    run (a long evaluation), so a busy hub keeps its partitions; cancelled, it frees them."""
    async with bucket(nats_url) as (_, kv):
        name = kv._name
        options = BusOptions(url=nats_url, name="keeper")

        class OwnBucket(Bus):
            async def leases_bucket(self) -> KeyValue:
                return await self.js.key_value(name)

        def connect() -> contextlib.AbstractAsyncContextManager[Bus]:
            return OwnBucket.connect(options)

        woken = asyncio.Event()
        keeper = LeaseKeeper(None, "a", P, renew_s=0.2, ttl_s=0.6, on_change=woken.set)
        task = asyncio.create_task(keeper.run(connect))
        await asyncio.wait_for(woken.wait(), 10)  # called on this loop, from the keeper's thread
        await eventually(lambda: len(keeper.held) == P, timeout_s=10)
        first = {p: h.revision for p, h in keeper.held.items()}
        time.sleep(1.5)  # noqa: ASYNC251 (on purpose) the loop blocked for more than twice the TTL: a renewal on it would have lapsed
        assert len(keeper.held) == P and all(keeper.held[p].revision > first[p] for p in first)
        assert Shard(keeper).owns("ns/anything")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not keeper.held
        values = [LeaseValue.from_bytes((await kv.get(lease_key(p, P))).value) for p in range(P)]
        assert all(v is not None and v.owner is None for v in values)  # freed for the others at once
