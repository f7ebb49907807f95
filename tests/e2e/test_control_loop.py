"""The whole loop over a real nats-server: simulated spokes report, the hub decides, spokes apply.

Each test runs the real hub and real spoke agents in this process (each with its own NATS
connection) against a private nats-server, on a small simulated world whose clock runs faster than
real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import subjects
from shared.messages import ResultStatus, ScaleCommand, WorkloadRef
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats


def queue_policy(tmp_path: Path, **kw: object) -> Path:
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 8},
              "signals": [{"metric": "queue_per_replica", "target": 2}],
              "behavior": {"scale_down": {"stabilization_window_seconds": 1}},
              # The world runs 8× faster than the hub's clock: Knative's 60 s stable window would
              # hold every scale-down past the test's patience.
              "panic": {"stable_window_seconds": 6}}
    return write_policies(tmp_path / "policies.yaml", policy | kw)


def applied(hub, action: str):  # type: ignore[no-untyped-def]
    return [d for d in hub.decisions.recent(workload=KEY) if d.action == action
            and any(r.status == "applied" for r in d.results.values())]


async def test_load_step_scales_up_then_down_and_spokes_apply_it(nats_server, tmp_path: Path) -> None:
    world = two_cluster_world(low=0.5, high=80.0, step_at=10.0, step_back=60.0)
    async with (
        running_hub(nats_server.url, policy_file=queue_policy(tmp_path)) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)) as alpha,
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)) as beta,
    ):
        ups = await eventually(lambda: applied(hub, "scale_up"), timeout_s=30)
        up = ups[-1]
        assert up.desired_replicas > 1 and up.inputs["queue_per_replica"] > 2
        # Growth goes to the least cost per unit of load: by the profiles' throughput an H100 replica
        # ($12.29/h, 33.9× an L4's decode rate) is cheaper per unit than L4s ($0.805/h each).
        assert up.placement_after.get("alpha/H100", 0) > up.placement_before.get("alpha/H100", 0)
        assert alpha.executor.applied + beta.executor.applied >= 1
        downs = await eventually(lambda: applied(hub, "scale_down"), timeout_s=40)
        assert downs[0].desired_replicas < downs[0].current_replicas
    # The H100 cluster took the growth, and its applied results reached the hub.
    assert hub.metrics.results.labels("alpha", "applied", "applied")._value.get() >= 1


async def test_a_silent_cluster_goes_stale_and_its_share_is_re_placed(nats_server, tmp_path: Path) -> None:
    world = two_cluster_world(low=0.5, high=0.5, initial={("alpha", "H100"): 1, ("beta", "L4"): 1})
    policy = queue_policy(tmp_path, bounds={"min_replicas": 2, "max_replicas": 8},
                          signals=[{"metric": "queue_per_replica", "target": 50}])
    async with (
        running_hub(nats_server.url, policy_file=policy) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as beta,
    ):
        await eventually(lambda: len(hub.state.snapshot().fresh) == 2)
        beta.reporter.paused = True
        await eventually(lambda: hub.state.snapshot().clusters["beta"].stale, timeout_s=5)
        view = hub.state.snapshot().workloads[KEY]
        assert view.stale_clusters == ("beta",) and "beta" not in view.reports
        # min_replicas=2 must now be met by the healthy cluster alone.
        await eventually(lambda: world.workload_states("alpha")[0].desired_replicas == 2, timeout_s=10)
        decision = hub.decisions.latest[KEY]
        assert decision.placement_after == {"alpha/H100": 2}
        assert any("beta" in n for n in decision.notes)


async def test_malformed_telemetry_is_counted_and_dropped_and_the_hub_keeps_going(
    nats_server, tmp_path: Path
) -> None:
    world = two_cluster_world()
    async with (
        running_hub(nats_server.url, policy_file=queue_policy(tmp_path)) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")) as alpha,
    ):
        bad = [b"not json", b"{}", b'{"type": "telemetry", "cluster_id": "Bad Id"}', b"\xff\xfe",
               b'{"protocol_version": 99, "type": "telemetry", "cluster_id": "alpha"}']
        for payload in bad:
            await alpha.bus.nc.publish(subjects.telemetry("alpha"), payload)
        # A valid report for another cluster, sent on alpha's subject, is refused too.
        report = await alpha.reporter.build()
        assert report is not None
        await alpha.bus.publish(subjects.telemetry("alpha"), report.model_copy(update={"cluster_id": "beta"}))
        await eventually(lambda: hub.intake.malformed == len(bad) + 1)
        accepted = hub.intake.accepted
        await eventually(lambda: hub.intake.accepted > accepted + 2)  # still ingesting
        assert "beta" not in hub.state.snapshot().clusters
        assert hub.metrics.malformed.labels("telemetry")._value.get() == len(bad) + 1


async def test_a_duplicate_command_id_is_applied_once(nats_server, tmp_path: Path) -> None:
    world = two_cluster_world(low=0.1, high=0.1)
    async with (
        running_hub(nats_server.url, policy_file=queue_policy(tmp_path, mode="dry-run")) as hub,
        driven(world, time_scale=1.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")) as alpha,
    ):
        now = datetime.now(UTC)
        command = ScaleCommand(cluster_id="alpha", workload=WorkloadRef(namespace=NS, name=NAME),
                               replicas_by_gpu_type={"H100": 3}, policy_id="manual", issued_at=now,
                               deadline=now + timedelta(seconds=30))
        for _ in range(3):
            await hub.bus.publish_command(command)
        # Past JetStream's de-duplication (a new message id), the spoke's ledger still holds.
        await hub.bus.publish_durable(subjects.commands("alpha"), command, msg_id=f"{command.command_id}-again")
        await eventually(lambda: alpha.executor.applied + alpha.executor.duplicates == 2)
        # A barrier rather than a sleep: commands are handled in stream order, so once a later command
        # is applied, any re-delivery of the first would have been handled too.
        barrier = command.model_copy(update={"command_id": f"{command.command_id}-barrier"})
        await hub.bus.publish_command(barrier)
        await eventually(lambda: alpha.executor.applied == 2)
        assert alpha.executor.applied == 2 and alpha.executor.duplicates == 1
        assert world.workload_states("alpha")[0].desired_replicas == 3


async def test_nats_restart_mid_run_both_sides_reconnect_and_the_command_is_delivered(
    nats_server, tmp_path: Path
) -> None:
    world = two_cluster_world(low=0.5, high=80.0, step_at=30.0)
    async with (
        running_hub(nats_server.url, policy_file=queue_policy(tmp_path)) as hub,
        driven(world, time_scale=10.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)) as alpha,
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        await eventually(lambda: len(hub.state.snapshot().fresh) == 2)
        assert not applied(hub, "scale_up")
        nats_server.stop()
        # The load step (at 30 s on the world's clock) happens while the bus is down, and both sides see it down.
        await eventually(lambda: world.now_s > 35 and not hub.bus.connected and not alpha.bus.connected)
        nats_server.start()
        await eventually(lambda: hub.bus.connected and alpha.bus.connected, timeout_s=15)
        ups = await eventually(lambda: applied(hub, "scale_up"), timeout_s=30)
        assert ups[-1].results and all(r.status == ResultStatus.APPLIED.value for r in ups[-1].results.values())
        await eventually(lambda: sum(s.desired_replicas for c in ("alpha", "beta")
                                     for s in world.workload_states(c)) > 1)
