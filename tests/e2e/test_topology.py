"""The real-world NATS topology: a hub-side cluster of three nats-servers and a leaf node per spoke cluster.

Every server is a real nats-server process with the configs ``shared.natstopology`` generates; the
hub connects to all three servers and replicates its streams and buckets R3; each spoke connects
only to its own cluster's leaf, and reaches the streams through the hub side's JetStream domain.

* A hub-side server (the one the hub is connected to) is killed with SIGKILL, then the hub process,
  then the server a spoke's leaf node is linked to, then two at once (no quorum for 3 s): scaling
  goes on, and the spokes' ledgers show 0 commands lost, 0 applied twice and every applied command
  in the decision history (the checks of ``test_chaos``).
* A spoke cluster's WAN link to the hub side is cut for longer than the staleness limit: the spoke
  keeps its connection to its leaf (its local bus), holds its last applied counts, and when the link
  is back its telemetry reaches the hub again, and the command the hub queued for it as the link
  failed, revoked when the cluster went stale, is never applied.

The recovery times printed here are the ones docs/operations.md quotes ("NATS topology").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest

from shared import subjects
from shared.messages import ScaleCommand, WorkloadRef
from shared.natsserver import HubCluster, NatsServer, healthy, leaf_server
from shared.natstopology import JS_DOMAIN
from shared.simulation import SimWorld
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.test_chaos import (
    CLUSTERS,
    INTERVAL_S,
    CountingBackend,
    HubProcess,
    check_ledgers,
    progress,
    swinging_policy,
    swinging_world,
)
from tests.e2e.wan import WanLink
from tests.e2e.world import NAME, NS, driven, two_cluster_world

pytestmark = [pytest.mark.nats, pytest.mark.slow]

HUB_CONNECTION = "fleetscale-hub"
"""The hub's NATS connection name, by which the hub-side server serving it is found (``/connz``)."""


@pytest.fixture
def hub_cluster() -> Iterator[HubCluster]:
    cluster = HubCluster(3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@asynccontextmanager
async def leaf(cluster_id: str, remotes: list[str]) -> AsyncIterator[NatsServer]:
    server = leaf_server(cluster_id, remotes)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        server.close()


async def replicas_of_each_stream(nats_url: str) -> int | set[int]:
    """The replicas of the hub's streams and KV buckets: one number when they all agree."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        names = [s.config.name for s in await js.streams_info()]
        found = {(await js.stream_info(n)).config.num_replicas for n in names}
    finally:
        await nc.close()
    assert {subjects.COMMANDS_STREAM, subjects.RESULTS_STREAM, subjects.DECISIONS_STREAM,
            f"KV_{subjects.POLICIES_BUCKET}", f"KV_{subjects.BUDGETS_BUCKET}"} <= set(names), names
    return found.pop() if len(found) == 1 else found


@pytest.mark.timeout(150)
async def test_a_hub_side_server_and_the_hub_killed_lose_no_command_and_apply_none_twice(
    hub_cluster: HubCluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    world = swinging_world()
    backends = {c: CountingBackend(world, c) for c in CLUSTERS}
    hub = HubProcess(hub_cluster.url, swinging_policy(tmp_path), tmp_path / "hub.log")
    hub.env["HUB_NATS_STREAM_REPLICAS"] = "3"
    async with (
        leaf("alpha", hub_cluster.leafnode_urls) as leaf_alpha,
        leaf("beta", hub_cluster.leafnode_urls) as leaf_beta,
        driven(world, time_scale=4.0),
        running_spoke(leaf_alpha.url, "alpha", backends["alpha"], interval_s=INTERVAL_S,
                      nats_js_domain=JS_DOMAIN) as alpha,
        running_spoke(leaf_beta.url, "beta", backends["beta"], interval_s=INTERVAL_S,
                      nats_js_domain=JS_DOMAIN) as beta,
    ):
        spokes = {"alpha": alpha, "beta": beta}
        await hub.start()
        try:
            await progress(hub)
            victim = hub_cluster.serving(HUB_CONNECTION)
            assert victim is not None, "the hub is connected to none of the hub-side servers"
            before, killed = len(hub.sent), time.monotonic()
            hub_cluster.servers[victim].kill()
            await eventually(lambda: hub_cluster.serving(HUB_CONNECTION) is not None, timeout_s=15, every_s=0.1)
            reconnect_s = time.monotonic() - killed
            await eventually(lambda: len(hub.sent) > before, timeout_s=30)
            server_recovery_s = time.monotonic() - killed
            await progress(hub)
            before = len(hub.sent)
            await hub.kill()
            killed = time.monotonic()
            await hub.start()
            await eventually(lambda: len(hub.sent) > before, timeout_s=30)
            hub_recovery_s = time.monotonic() - killed
            await progress(hub)
            await asyncio.to_thread(hub_cluster.servers[victim].start)
            await asyncio.to_thread(hub_cluster.wait_healthy)
            await progress(hub)  # with the server back in the cluster
            # Then the server alpha's leaf node is linked to: the leaf moves to another one.
            leaf_victim = hub_cluster.serving_leaf("leaf-alpha")
            assert leaf_victim is not None, "alpha's leaf is linked to none of the hub-side servers"
            applied, killed = sum(backends["alpha"].applies.values()), time.monotonic()
            hub_cluster.servers[leaf_victim].kill()
            await eventually(lambda: hub_cluster.serving_leaf("leaf-alpha") is not None, timeout_s=15, every_s=0.1)
            leaf_moved_s = time.monotonic() - killed
            await eventually(lambda: sum(backends["alpha"].applies.values()) > applied, timeout_s=30)
            alpha_applies_s = time.monotonic() - killed
            await asyncio.to_thread(hub_cluster.servers[leaf_victim].start)
            await asyncio.to_thread(hub_cluster.wait_healthy)
            await progress(hub)
            # Then two servers at once: no JetStream quorum, so nothing is stored until one is back.
            survivor = hub_cluster.serving(HUB_CONNECTION)
            lost = [i for i in range(3) if i != survivor]
            for i in lost:
                hub_cluster.servers[i].kill()
            await asyncio.sleep(3.0)
            before, back = len(hub.sent), time.monotonic()
            await asyncio.to_thread(hub_cluster.servers[lost[0]].start)
            await eventually(lambda: len(hub.sent) > before, timeout_s=30)
            quorum_back_s = time.monotonic() - back
            await asyncio.to_thread(hub_cluster.servers[lost[1]].start)
            await asyncio.to_thread(hub_cluster.wait_healthy)
            await progress(hub)
        finally:
            await hub.stop()
        live = next(n for n, s in zip(hub_cluster.nodes, hub_cluster.servers, strict=True) if s.proc is not None)
        summary = await check_ledgers(hub, spokes, backends, live.client_url)
    assert await replicas_of_each_stream(live.client_url) == 3
    print(f"\ntopology: hub-side server hub-{victim} killed: the hub on another server {reconnect_s:.1f}s later, "
          f"its next command {server_recovery_s:.1f}s after the kill; hub killed: the first command from its "
          f"successor {hub_recovery_s:.1f}s after the kill; hub-side server hub-{leaf_victim} killed under alpha's "
          f"leaf: linked to another {leaf_moved_s:.1f}s later, alpha applied a command {alpha_applies_s:.1f}s after "
          f"the kill; two servers killed for 3s: the first command {quorum_back_s:.1f}s after one was restarted; "
          f"{summary}; {time.monotonic() - started:.0f}s")
    assert hub.starts == 2


def two_and_two(tmp_path: Path) -> Path:
    """Four replicas, half on each cluster: alpha is asked for two at start, and holds them later."""
    return write_policies(tmp_path / "policies.yaml", {
        "id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
        "bounds": {"min_replicas": 4, "max_replicas": 8},
        "signals": [{"metric": "queue_per_replica", "target": 50}],
        "placement": {"strategy": "static_weights", "weights": {"alpha": 1, "beta": 1}},
    })


def running(world: SimWorld, cluster_id: str) -> int:
    return sum(s.desired_replicas for s in world.workload_states(cluster_id))


@pytest.mark.timeout(120)
async def test_a_spoke_cut_off_from_the_hub_side_keeps_its_bus_holds_its_counts_and_catches_up(
    hub_cluster: HubCluster, tmp_path: Path
) -> None:
    world = two_cluster_world(low=0.5, high=0.5, initial={("alpha", "H100"): 1, ("beta", "L4"): 1})
    wan = WanLink([(n.host, n.leafnode_port) for n in hub_cluster.nodes])
    await wan.start()
    try:
        async with (
            leaf("alpha", wan.leafnode_urls) as leaf_alpha,
            leaf("beta", hub_cluster.leafnode_urls) as leaf_beta,
            driven(world, time_scale=4.0),
            # alpha reports every 0.5 s: stale after 1.5 s of silence (3 intervals).
            running_spoke(leaf_alpha.url, "alpha", SimulatedBackend(world, "alpha"), interval_s=0.5,
                          nats_js_domain=JS_DOMAIN, hub_away_after_s=1.0) as alpha,
            running_spoke(leaf_beta.url, "beta", SimulatedBackend(world, "beta"), interval_s=0.5,
                          nats_js_domain=JS_DOMAIN),
            running_hub(hub_cluster.url, policy_file=two_and_two(tmp_path), nats_stream_replicas=3) as hub,
        ):
            await eventually(lambda: running(world, "alpha") == 2 and running(world, "beta") == 2, timeout_s=30)
            await eventually(lambda: NS + "/" + NAME in alpha.autonomy.applied, timeout_s=5)
            local = await nats.connect(leaf_alpha.url)  # a client of alpha's local bus
            heard_locally: list[float] = []

            async def on_report(_msg: nats.aio.msg.Msg) -> None:
                heard_locally.append(time.monotonic())

            await local.subscribe(subjects.telemetry("alpha"), cb=on_report)
            try:
                reconnects = alpha.bus.nc.stats["reconnects"]
                wan.cut()
                cut_at = time.monotonic()
                # The hub decides, just as the link fails, to ask alpha for more: the command waits
                # on the hub side for a spoke that cannot fetch it.
                now = datetime.now(UTC)
                late = ScaleCommand(cluster_id="alpha", workload=WorkloadRef(namespace=NS, name=NAME),
                                    replicas_by_gpu_type={"H100": 5}, policy_id="llama", issued_at=now,
                                    deadline=now + timedelta(seconds=60))
                assert await hub.dispatcher.send([late]) == [late.command_id]
                await eventually(lambda: hub.state.snapshot().clusters["alpha"].stale, timeout_s=5)
                stale_after_s = time.monotonic() - cut_at
                await eventually(lambda: hub.metrics.commands_revoked.labels("alpha")._value.get() >= 1, timeout_s=5)
                # Cut off, alpha holds: someone scales it down while nobody decides, and it restores
                # the count the hub last had applied.
                await eventually(lambda: alpha.autonomy.state() == "holding", timeout_s=5)
                world.scale("alpha", NS, NAME, {"H100": 1})
                await eventually(lambda: running(world, "alpha") == 2, timeout_s=5)
                assert alpha.autonomy.reapplied >= 1
                # The hub re-places alpha's share on beta meanwhile.
                await eventually(lambda: running(world, "beta") == 4, timeout_s=15)
                await asyncio.sleep(max(0.0, cut_at + 6.0 - time.monotonic()))  # 4x the staleness limit
                cut_for_s = time.monotonic() - cut_at
                # alpha's local bus carried its reports all along, and its connection never dropped.
                assert [t for t in heard_locally if t > cut_at + cut_for_s - 1.0], "alpha's local bus went quiet"
                assert alpha.bus.connected and alpha.bus.nc.stats["reconnects"] == reconnects
                # ... and its leaf stays healthy for its probes (the chart's), link or no link.
                assert await asyncio.to_thread(healthy, leaf_alpha)

                wan.restore()
                back = time.monotonic()
                await eventually(lambda: hub.state.snapshot().clusters["alpha"].received_at > back, timeout_s=15)
                telemetry_back_s = time.monotonic() - back
                await eventually(lambda: not hub.state.snapshot().clusters["alpha"].stale, timeout_s=5)
                await eventually(lambda: alpha.autonomy.state() == "present", timeout_s=10)
                heartbeat_back_s = time.monotonic() - back
                # Commands flow again: a new one is fetched and answered (the fetch loop's back-off
                # while the link was down is at most the bus's reconnect cap, 5 s).
                now = datetime.now(UTC)
                again = late.model_copy(update={"command_id": str(uuid.uuid4()), "replicas_by_gpu_type": {"H100": 2},
                                                "issued_at": now, "deadline": now + timedelta(seconds=60)})
                assert await hub.dispatcher.send([again]) == [again.command_id]
                await eventually(lambda: alpha.executor.ledger.result_of(again.command_id) is not None, timeout_s=15)
                commands_back_s = time.monotonic() - back
            finally:
                await local.close()
            assert alpha.executor.ledger.result_of(late.command_id) is None, "a revoked command was applied"
            assert running(world, "alpha") != 5
            decided = hub.evaluator.evaluations
            await eventually(lambda: hub.evaluator.evaluations > decided, timeout_s=10)  # deciding again
    finally:
        await wan.close()
    print(f"\ntopology: alpha's WAN cut for {cut_for_s:.1f}s: stale on the hub {stale_after_s:.1f}s after the cut; "
          f"after the link came back, alpha's telemetry reached the hub in {telemetry_back_s:.1f}s, the hub's "
          f"heartbeat reached alpha in {heartbeat_back_s:.1f}s, a new command was applied "
          f"{commands_back_s:.1f}s after; reports on alpha's local bus during the cut: "
          f"{len([t for t in heard_locally if cut_at < t < back])}")
