"""Sharded hubs: two real hub processes split the workloads; one is killed, the other takes its share.

Against a real nats-server, with simulated spokes in this process and sine loads that keep every
workload's replica count moving: two ``python -m hub`` processes with ``HUB_SHARDED`` and two
partitions each take one partition (leases in the ``fleetscale_leases`` KV bucket) and command only
its workloads. Then the one that holds the partition of the first two workloads is killed with
SIGKILL, and from outside (a core-NATS subscription on the command subjects, the bucket, the spokes'
ledgers and the decision journal):

* the partition is re-homed and the first command for a moved workload is published within 15 s;
* the moved workloads' commands carry a higher fencing epoch than the dead hub's;
* 0 lost (every command either hub sent was answered by its spoke), 0 applied twice, every
  applied command in the decision history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from hub.control.leases import LeaseValue, lease_key, partition_of
from shared import subjects
from shared.messages import ResultReason, ScaleCommand
from shared.natsserver import NatsServer
from shared.simulation import SimWorld
from tests.e2e.conftest import eventually, running_spoke, write_policies
from tests.e2e.test_chaos import CountingBackend, HubProcess, journalled_commands, swinging_world, unanswered
from tests.e2e.world import NS, driven

pytestmark = [pytest.mark.nats, pytest.mark.slow]

PARTITIONS = 2
FAILOVER_GOAL_S = 15.0
NAMES = ("llama", "mistral", "qwen", "gemma", "phi", "falcon", "mixtral", "yi", "olmo", "granite")


def workloads() -> tuple[list[str], list[str]]:
    """Two workload names in partition 0 and two in partition 1 (the hash decides, so they are picked)."""
    by_partition: dict[int, list[str]] = {0: [], 1: []}
    for name in NAMES:
        by_partition[partition_of(f"{NS}/{name}", PARTITIONS)].append(name)
    assert len(by_partition[0]) >= 2 and len(by_partition[1]) >= 2, by_partition
    return by_partition[0][:2], by_partition[1][:2]


def world(names: list[str]) -> SimWorld:
    return swinging_world(tuple(names), rate_per_s=9.0, seed=11)


def policy(tmp_path: Path, names: list[str]) -> Path:
    # At most 3 replicas of a workload per cluster: 12 of each cluster's 16 GPUs for four workloads,
    # so each hub's half of the free GPUs (6 at the start) holds its two workloads' growth.
    return write_policies(tmp_path / "policies.yaml", {
        "id": "swing", "targets": {"workloads": [{"namespace": NS, "name": n} for n in names]},
        "bounds": {"min_replicas": 2, "max_replicas": 6},
        "signals": [{"metric": "request_rate_per_replica", "target": 3}],
        "behavior": {"scale_down": {"stabilization_window_seconds": 0}}, "panic": {"enabled": False},
        "placement": {"strategy": "static_weights", "weights": {"alpha": 1, "beta": 1}},
    })


def sharded(hub: HubProcess, hub_id: str) -> HubProcess:
    hub.env |= {"HUB_SHARDED": "true", "HUB_ID": hub_id, "HUB_PARTITIONS": str(PARTITIONS)}
    return hub


async def owners(nats_url: str) -> dict[int, LeaseValue | None]:
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().key_value(subjects.LEASES_BUCKET)
        out: dict[int, LeaseValue | None] = {}
        for p in range(PARTITIONS):
            try:
                out[p] = LeaseValue.from_bytes((await kv.get(lease_key(p, PARTITIONS))).value)
            except nats.js.errors.KeyNotFoundError:
                out[p] = None
        return out
    finally:
        await nc.close()


@pytest.mark.timeout(240)
async def test_killing_one_of_two_hubs_moves_its_partition_and_loses_no_command(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    first, second = workloads()
    names = first + second
    sim = world(names)
    backends = {c: CountingBackend(sim, c) for c in ("alpha", "beta")}
    policies = policy(tmp_path, names)
    hubs = {h: sharded(HubProcess(nats_server.url, policies, tmp_path / f"{h}.log"), h) for h in ("hub-a", "hub-b")}
    seen: list[tuple[float, ScaleCommand]] = []
    watcher = await nats.connect(nats_server.url)

    async def on_command(msg: nats.aio.msg.Msg) -> None:
        seen.append((time.monotonic(), ScaleCommand.model_validate_json(msg.data)))

    await watcher.subscribe(f"{subjects.PREFIX}.commands.*", cb=on_command)
    try:
        async with (
            driven(sim, time_scale=4.0),
            running_spoke(nats_server.url, "alpha", backends["alpha"], interval_s=1.0) as alpha,
            running_spoke(nats_server.url, "beta", backends["beta"], interval_s=1.0) as beta,
        ):
            spokes = {"alpha": alpha, "beta": beta}
            await hubs["hub-a"].start()
            await hubs["hub-b"].start()

            async def split() -> dict[int, str] | None:
                held = await owners(nats_server.url)
                named = {p: v.owner for p, v in held.items() if v is not None and v.owner is not None}
                return named if len(named) == PARTITIONS and len(set(named.values())) == 2 else None

            async with asyncio.timeout(60):
                while (homes := await split()) is None:
                    await asyncio.sleep(0.5)
            split_at = time.monotonic()
            victim, survivor = hubs[homes[0]], hubs[homes[1]]
            moved = {f"{NS}/{n}" for n in first}
            # Both hubs command their own workloads, and only those (the first hub held everything
            # until the second one joined, so only what came after the split counts).
            await eventually(lambda: {c.workload.key for t, c in seen if t > split_at} >= {f"{NS}/{n}" for n in names},
                             timeout_s=60)
            by_hub = {h: set(p.sent) for h, p in hubs.items()}
            commands = {c.command_id: c for t, c in seen if t > split_at}
            for hub_id, sent in by_hub.items():
                mine = {partition_of(commands[c].workload.key, PARTITIONS) for c in sent if c in commands}
                assert mine == {p for p, owner in homes.items() if owner == hub_id}, (hub_id, mine, homes)
            old_epoch = max(c.fence.epoch for _, c in seen if c.workload.key in moved and c.fence is not None)

            killed_at = time.monotonic()
            await victim.kill()

            def first_moved_command() -> float | None:
                return next((t - killed_at for t, c in seen if t > killed_at and c.workload.key in moved
                             and c.command_id in survivor.sent), None)

            async with asyncio.timeout(60):
                while (held := (await owners(nats_server.url))[0]) is None or held.owner != homes[1]:
                    await asyncio.sleep(0.2)
            rehomed_s = time.monotonic() - killed_at
            await eventually(first_moved_command, timeout_s=60)
            command_s = first_moved_command()
            assert command_s is not None
            new_epochs = {c.fence.epoch for t, c in seen if t > killed_at and c.workload.key in moved
                          and c.fence is not None}
            # A few more commands for the moved workloads, then the survivor stops.
            await eventually(lambda: sum(1 for t, c in seen if t > killed_at and c.workload.key in moved) >= 3,
                             timeout_s=60)
            await survivor.stop()
            sent = victim.sent | survivor.sent
            with contextlib.suppress(TimeoutError):
                await eventually(lambda: not unanswered(sent, spokes), timeout_s=45)
            lost = unanswered(sent, spokes)
            results = [spokes[cid].executor.ledger.result_of(c) for c, cid in sent.items()]
    finally:
        for h in hubs.values():
            await h.stop()
        await watcher.close()
    journalled = await journalled_commands(nats_server.url)
    applies = backends["alpha"].applies + backends["beta"].applies
    twice = {c: n for c, n in applies.items() if n > 1}
    outcomes = Counter(f"{r.status.value}/{r.reason.value}" for r in results if r is not None)
    print(f"\nsharded: partition re-homed {rehomed_s:.1f}s after SIGKILL, first command for a moved workload "
          f"{command_s:.1f}s after; {len(sent)} commands sent ({len(victim.sent)} by the killed hub), outcomes "
          f"{dict(outcomes)}, {len(twice)} applied twice, {len(lost)} lost; epochs {old_epoch} -> {sorted(new_epochs)}")

    assert rehomed_s <= FAILOVER_GOAL_S and command_s <= FAILOVER_GOAL_S, (rehomed_s, command_s, survivor.tail())
    assert new_epochs and min(new_epochs) > old_epoch  # the new owner's commands fence the old one's off
    assert not lost, f"{len(lost)} commands sent and never answered: {lost[:5]}"
    assert not twice, f"commands applied more than once: {twice}"
    assert set(applies) <= journalled and set(sent) <= journalled, "the decision history lost a command"
    refused = {k for k in outcomes if not k.startswith("applied/")}
    assert refused <= {f"rejected/{ResultReason.SUPERSEDED.value}", f"rejected/{ResultReason.EXPIRED.value}"}, outcomes
