import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.messages import ResultReason, ScaleCommand, WorkloadRef
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.backend import ClusterBackend, PermanentApplyError
from spoke.backends.simulated import SimulatedBackend, drive


def two_cluster_world():
    trace = synthetic("constant", duration_s=300, rate_per_s=1.0, seed=2, input_tokens=256, output_tokens=32)
    clusters = [
        ClusterSpec("east", (NodeSpec("east-l4", "L4", 4), NodeSpec("east-h100", "H100", 2))),
        ClusterSpec("west", (NodeSpec("west-l4", "L4", 4),)),
    ]
    workload = WorkloadSpec("llm", "chat", trace, cold_start_s=60, initial_replicas={("east", "L4"): 1})
    return SimWorld(clusters, [workload])


def command(cluster_id, replicas, *, name="chat", gpus_per_replica=1):
    now = datetime.now(UTC)
    return ScaleCommand(
        cluster_id=cluster_id,
        workload=WorkloadRef(namespace="llm", name=name),
        replicas_by_gpu_type=replicas,
        gpus_per_replica=gpus_per_replica,
        policy_id="p",
        issued_at=now,
        deadline=now + timedelta(seconds=30),
    )


def test_backend_satisfies_the_cluster_backend_protocol():
    assert isinstance(SimulatedBackend(two_cluster_world(), "east"), ClusterBackend)


async def test_apply_round_trips_a_scale_command_and_leaves_other_types_alone():
    world = two_cluster_world()
    east = SimulatedBackend(world, "east")
    observed = await east.apply(command("east", {"H100": 2}))
    assert observed == {"H100": 2, "L4": 1}
    [state] = await east.workloads()
    assert (state.desired_replicas, state.ready_replicas) == (3, 1)
    assert {v.gpu_type: v.desired_replicas for v in state.variants} == {"H100": 2, "L4": 1}
    free = {n.node: n.free_gpus for n in await east.inventory()}
    assert free == {"east-l4": 3, "east-h100": 0}


async def test_apply_without_capacity_is_a_permanent_capacity_error_and_changes_nothing():
    world = two_cluster_world()
    east = SimulatedBackend(world, "east")
    with pytest.raises(PermanentApplyError) as info:
        await east.apply(command("east", {"L4": 2, "H100": 3}))
    assert info.value.reason is ResultReason.CAPACITY and not info.value.temporary
    [state] = await east.workloads()
    assert state.desired_replicas == 1


async def test_apply_to_an_unknown_workload_is_not_found():
    east = SimulatedBackend(two_cluster_world(), "east")
    with pytest.raises(PermanentApplyError) as info:
        await east.apply(command("east", {"L4": 1}, name="nope"))
    assert info.value.reason is ResultReason.NOT_FOUND


async def test_apply_with_other_gpus_per_replica_is_invalid():
    east = SimulatedBackend(two_cluster_world(), "east")
    with pytest.raises(PermanentApplyError) as info:
        await east.apply(command("east", {"L4": 1}, gpus_per_replica=2))
    assert info.value.reason is ResultReason.INVALID


async def test_spokes_sharing_a_world_see_each_others_effects_without_stale_copies():
    world = two_cluster_world()
    east, west = SimulatedBackend(world, "east"), SimulatedBackend(world, "west")
    await west.apply(command("west", {"L4": 2}))
    world.advance(120)
    samples_east = await east.samples(await east.workloads())
    samples_west = await west.samples(await west.workloads())
    assert samples_east["llm/chat"].request_rate_per_s is not None
    assert samples_west["llm/chat"].request_rate_per_s is not None
    assert len(samples_west["llm/chat"].gpus) == 2
    [west_state] = await west.workloads()
    assert west_state.ready_replicas == 2


async def test_drive_advances_simulated_time_until_asked():
    world = two_cluster_world()
    stop = asyncio.Event()
    await asyncio.wait_for(drive(world, time_scale=100_000.0, tick_s=0.001, stop=stop, until_s=30.0), 5)
    assert world.now_s == 30.0


async def test_drive_returns_when_stopped():
    world = two_cluster_world()
    stop = asyncio.Event()
    stop.set()
    await drive(world, time_scale=1.0, tick_s=0.01, stop=stop)
    assert world.now_s == 0.0
