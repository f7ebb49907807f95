"""Failover faults with the real hub and spokes over a real nats-server.

Each test reproduces one way the hub used to take a live cluster for lost, or act on a partial view
of the fleet, and checks from the outside (commands on the bus, what the simulated clusters run)
that nothing moves.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import nats
import pytest

from shared.messages import ScaleCommand, WorkloadRef
from shared.simulation import SimWorld
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, hub_process, next_tick, running_hub, running_spoke, write_policies
from tests.e2e.world import NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats

COMMANDS = "fleetscale.v1.commands.>"


def half_and_half(tmp_path: Path) -> Path:
    """Two replicas, one per cluster: the steady state needs no command once both clusters are seen."""
    return write_policies(tmp_path / "policies.yaml", {
        "id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
        "bounds": {"min_replicas": 2, "max_replicas": 8},
        "signals": [{"metric": "queue_per_replica", "target": 50}],
        "placement": {"strategy": "static_weights", "weights": {"alpha": 1, "beta": 1}},
    })


def quiet_world() -> SimWorld:
    return two_cluster_world(low=0.5, high=0.5, initial={("alpha", "H100"): 1, ("beta", "L4"): 1})


def replicas(world: SimWorld) -> dict[str, int]:
    return {c: sum(s.desired_replicas for s in world.workload_states(c)) for c in ("alpha", "beta")}


async def commands_seen(nats_url: str) -> tuple[nats.aio.client.Client, list[dict]]:
    """Every command published from now on, as the spokes would get it."""
    nc = await nats.connect(nats_url)
    seen: list[dict] = []

    async def on_command(msg: nats.aio.msg.Msg) -> None:
        seen.append(json.loads(msg.data))

    await nc.subscribe(COMMANDS, cb=on_command)
    return nc, seen


async def test_a_paused_hub_does_not_take_live_clusters_for_lost(nats_server, tmp_path: Path) -> None:
    # alpha reports every 0.5 s (stale after 1.5 s of silence), beta every 2 s (after 6 s). Paused
    # for 3.5 s, the hub used to find alpha silent on its first tick back, before reading the reports
    # waiting in its socket, and move alpha's replica to beta.
    world = quiet_world()
    nc, seen = await commands_seen(nats_server.url)
    try:
        async with (
            driven(world, time_scale=4.0),
            running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha"), interval_s=0.5),
            running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta"), interval_s=2.0),
            hub_process(nats_server.url, HUB_POLICY_FILE=str(half_and_half(tmp_path)),
                        HUB_STARTUP_GRACE_S="2.5") as (hub, api),
            aiohttp.ClientSession() as http,
        ):
            async def fresh() -> bool:
                async with http.get(f"{api}/api/v1/clusters") as r:
                    body = (await r.json())["clusters"]
                return len(body) == 2 and not any(c["stale"] for c in body)

            async with asyncio.timeout(15):
                while not await fresh():
                    await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # decided, and nothing to do
            assert seen == [] and replicas(world) == {"alpha": 1, "beta": 1}, seen
            for _ in range(2):
                hub.send_signal(signal.SIGSTOP)
                await asyncio.sleep(3.5)
                hub.send_signal(signal.SIGCONT)
                await asyncio.sleep(2.5)
            async with http.get(f"{api}/metrics") as r:
                metrics = await r.text()
        assert seen == [], f"commands after a hub pause: {seen}"
        assert replicas(world) == {"alpha": 1, "beta": 1}
        stalls = [float(line.split()[1]) for line in metrics.splitlines()
                  if line.startswith("fleetscale_hub_loop_stalls_total ")]
        assert stalls and stalls[0] >= 2  # (a machine this loaded may starve it once more)
        assert "fleetscale_hub_cluster_losses_total{" not in metrics
    finally:
        await nc.close()


async def test_a_restarted_hub_decides_only_once_every_cluster_has_reported(nats_server, tmp_path: Path) -> None:
    # beta's report comes 0.5 s after the hub starts. A hub that decided on its first tick saw
    # alpha's replica alone, and asked alpha for both.
    world = quiet_world()
    nc, seen = await commands_seen(nats_server.url)
    try:
        async with (
            driven(world, time_scale=4.0),
            running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
            running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as beta,
        ):
            beta.reporter.paused = True
            await asyncio.sleep(1.0)  # beta's last report is stale by the time the hub starts
            async with running_hub(nats_server.url, policy_file=half_and_half(tmp_path),
                                   startup_grace_s=1.0) as hub:
                await asyncio.sleep(0.5)
                beta.reporter.paused = False
                await eventually(lambda: len(hub.state.snapshot().fresh) == 2)
                await asyncio.sleep(2.0)
                assert hub.metrics.tick_seconds._sum.get() > 0  # it has been deciding since
        assert seen == [], f"commands from a hub that decided on part of the fleet: {seen}"
        assert replicas(world) == {"alpha": 1, "beta": 1}
    finally:
        await nc.close()


async def test_a_command_queued_for_a_cluster_that_goes_stale_is_revoked(nats_server, tmp_path: Path) -> None:
    world = quiet_world()
    async with (
        running_hub(nats_server.url, policy_file=half_and_half(tmp_path)) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
    ):
        async with running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")):
            await eventually(lambda: len(hub.state.snapshot().fresh) == 2)
        # beta's spoke died just as the hub asked it for 3 replicas: the command waits in JetStream.
        now = datetime.now(UTC)
        late = ScaleCommand(cluster_id="beta", workload=WorkloadRef(namespace=NS, name=NAME),
                            replicas_by_gpu_type={"L4": 3}, policy_id="llama", issued_at=now,
                            deadline=now + timedelta(seconds=60))
        assert await hub.dispatcher.send([late]) == [late.command_id]
        await eventually(lambda: hub.state.snapshot().clusters["beta"].stale, timeout_s=5)
        # The hub re-places beta's share on alpha, and takes back what it asked of beta.
        await eventually(lambda: hub.metrics.commands_revoked.labels("beta")._value.get() >= 1, timeout_s=5)
        await eventually(lambda: replicas(world)["alpha"] == 2, timeout_s=10)
        async with running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as back:
            await eventually(lambda: not hub.state.snapshot().clusters["beta"].stale, timeout_s=5)
            await asyncio.sleep(2.0)  # the queued command, if it were still there, arrives first
            assert back.executor.ledger.result_of(late.command_id) is None
        assert replicas(world)["beta"] != 3


async def test_while_the_hub_is_away_a_spoke_holds_the_last_applied_counts_for_a_bounded_time(
    nats_server, tmp_path: Path
) -> None:
    world = two_cluster_world(low=0.5, high=0.5, initial={("alpha", "H100"): 1})
    policy = write_policies(tmp_path / "policies.yaml", {
        "id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
        "bounds": {"min_replicas": 2, "max_replicas": 8}, "signals": [{"metric": "queue_per_replica", "target": 50}],
    })
    async with (
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha"),
                      hub_away_after_s=1.0, autonomy_hold_s=4.0) as alpha,
    ):
        async with running_hub(nats_server.url, policy_file=policy):
            await eventually(lambda: replicas(world)["alpha"] == 2)  # the hub's command, applied
        away_since = asyncio.get_running_loop().time()
        await eventually(lambda: alpha.autonomy.state() == "holding", timeout_s=3)
        world.scale("alpha", NS, NAME, {"H100": 1})  # someone scales it down while nobody decides
        await eventually(lambda: replicas(world)["alpha"] == 2, timeout_s=3)
        assert alpha.autonomy.reapplied == 1
        assert alpha.metrics.autonomous._value.get() == 1
        # Past the bound (1 s to notice + 4 s held) the spoke lets go: the cluster is its operators'.
        await asyncio.sleep(max(0.0, away_since + 5.5 - asyncio.get_running_loop().time()))
        assert alpha.autonomy.state() == "released"
        world.scale("alpha", NS, NAME, {"H100": 1})
        await asyncio.sleep(1.0)
        assert replicas(world)["alpha"] == 1 and alpha.autonomy.reapplied == 1
        assert alpha.metrics.autonomous._value.get() == 0


async def test_a_nats_outage_does_not_make_the_hub_take_every_cluster_for_lost(nats_server, tmp_path: Path) -> None:
    # While its NATS connection is down the hub hears nobody; that silence is not the clusters'. The
    # hub used to count it, and after an outage longer than the staleness limit (3 x 0.2 s here)
    # took every cluster for lost and revoked the commands queued for them (found by the chaos run,
    # tests/e2e/test_chaos.py). Clusters get the start-up grace to be heard from again, as at start.
    world = quiet_world()
    async with (
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")),
        # A grace past the spokes' longest reconnect back-off (5 s), so only the bug can fail this.
        running_hub(nats_server.url, policy_file=half_and_half(tmp_path), startup_grace_s=5.0) as hub,
    ):
        # Deciding before the outage: a hub that counted the silence would see it on its ticks.
        await eventually(lambda: len(hub.state.snapshot().fresh) == 2 and hub.evaluator.evaluations > 0,
                         timeout_s=20)
        nats_server.kill()
        await eventually(lambda: not hub.bus.connected, timeout_s=5)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(nats_server.start)
        await eventually(lambda: hub.bus.connected, timeout_s=10)
        back = time.monotonic()
        clusters = lambda: hub.state.snapshot().clusters  # noqa: E731
        await eventually(lambda: all(clusters()[c].received_at > back for c in ("alpha", "beta")), timeout_s=10)
        await next_tick(hub)
    losses = {c: hub.metrics.cluster_losses.labels(c)._value.get() for c in ("alpha", "beta")}
    assert losses == {"alpha": 0, "beta": 0}, f"clusters taken for lost during the hub's own NATS outage: {losses}"
    assert replicas(world) == {"alpha": 1, "beta": 1}



async def test_a_command_whose_publish_was_not_confirmed_is_delivered_and_its_result_counts(
    nats_server, tmp_path: Path
) -> None:
    # nats-py keeps a publish made while it reconnects and sends it once the server is back, so a
    # command whose publish timed out was stored and applied all the same. The hub used to forget
    # it (and rewrite its decision without it), and refused the result of a command its cluster
    # had applied as "unknown_command" (seen building the chaos run, tests/e2e/test_chaos.py).
    world = quiet_world()
    async with (
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as beta,
        # A grace past the spokes' longest reconnect back-off (5 s): a cluster whose spoke came back
        # later would be taken for lost, and the command revoked, as the protocol says.
        running_hub(nats_server.url, policy_file=half_and_half(tmp_path), startup_grace_s=6.0) as hub,
    ):
        await eventually(lambda: len(hub.state.snapshot().fresh) == 2)

        def ask() -> ScaleCommand:  # the count beta runs: nothing for the hub to undo
            now = datetime.now(UTC)
            return ScaleCommand(cluster_id="beta", workload=WorkloadRef(namespace=NS, name=NAME),
                                replicas_by_gpu_type={"L4": 1}, policy_id="llama", issued_at=now,
                                deadline=now + timedelta(seconds=60))

        first = ask()  # (also creates beta's consumer, which a publish while NATS is down cannot)
        assert await hub.dispatcher.send([first]) == [first.command_id]
        nats_server.kill()
        await eventually(lambda: not hub.bus.connected, timeout_s=5)
        late = ask()
        assert await hub.dispatcher.send([late]) == []  # its publish times out: not confirmed
        await asyncio.to_thread(nats_server.start)
        await eventually(lambda: beta.executor.ledger.result_of(late.command_id) is not None, timeout_s=20)
        applied = hub.metrics.results.labels("beta", "applied", "applied")
        await eventually(lambda: applied._value.get() >= 2, timeout_s=10)
    assert hub.metrics.refused.labels("result", "unknown_command")._value.get() == 0
