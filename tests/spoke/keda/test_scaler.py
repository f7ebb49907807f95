"""The KEDA external scaler, called by a real gRPC client generated from the proto by protoc.

The client runs as its own process (as KEDA's operator would be), with stubs that ``grpc_tools.protoc``
generates from ``spoke/keda/externalscaler.proto`` into the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc_tools import protoc

from spoke.backends.simulated import SimulatedBackend
from spoke.keda.scaler import METRIC, PROTO, serve
from spoke.keda.targets import KedaTargets
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

CLIENT = Path(__file__).with_name("keda_client.py")
META = {"workload": KEY, "gpuType": "H100"}


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keda-stubs")
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={out}", f"--grpc_python_out={out}",
                        str(PROTO)])
    assert code == 0, "protoc failed to generate the client stubs"
    return out


async def client(stubs: Path, port: int, *calls: tuple[str, dict[str, str]]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CLIENT), str(stubs), f"127.0.0.1:{port}", json.dumps(calls),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def call(stubs: Path, port: int, *calls: tuple[str, dict[str, str]]) -> list[dict[str, object]]:
    proc = await client(stubs, port, *calls)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


@pytest.fixture
async def scaler() -> AsyncIterator[tuple[KedaTargets, int]]:
    targets = KedaTargets()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(targets, "127.0.0.1", 0, on_bound=bound.set_result))
    try:
        yield targets, await asyncio.wait_for(bound, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_metrics_are_the_hubs_target_and_missing_until_the_hub_sends_one(
    stubs: Path, scaler: tuple[KedaTargets, int]
) -> None:
    targets, port = scaler
    spec, before, active_before = await call(stubs, port, ("GetMetricSpec", META), ("GetMetrics", META),
                                             ("IsActive", META))
    assert spec == {"specs": [[METRIC, 1, 1.0]]}
    assert before["code"] == "UNAVAILABLE" and "no target from the Fleetscale hub yet" in str(before["details"])
    assert active_before["code"] == "UNAVAILABLE"

    await targets.set(KEY, {"H100": 3, "L4": 2})
    h100, total, active = await call(stubs, port, ("GetMetrics", META), ("GetMetrics", {"workload": KEY}),
                                     ("IsActive", META))
    assert h100 == {"values": [[METRIC, 3, 3.0]]}
    assert total == {"values": [[METRIC, 5, 5.0]]}  # no gpuType: every GPU type of the workload
    assert active == {"result": True}

    await targets.set(KEY, {"H100": 0})  # a type absent from a command keeps its count (L4 2)
    zero, l4 = await call(stubs, port, ("IsActive", META), ("GetMetrics", {"workload": KEY, "gpuType": "L4"}))
    assert zero == {"result": False} and l4 == {"values": [[METRIC, 2, 2.0]]}


async def test_bad_trigger_metadata_is_invalid_argument_naming_the_field(
    stubs: Path, scaler: tuple[KedaTargets, int]
) -> None:
    _, port = scaler
    for meta in ({}, {"workload": "no-slash"}, {"workload": "a/b/c"}):
        spec, metrics = await call(stubs, port, ("GetMetricSpec", meta), ("GetMetrics", meta))
        assert spec["code"] == metrics["code"] == "INVALID_ARGUMENT"
        assert "'workload' must be namespace/name" in str(spec["details"])


async def test_stream_is_active_sends_the_state_then_each_change(stubs: Path, scaler: tuple[KedaTargets, int]) -> None:
    targets, port = scaler
    await targets.set(KEY, {"H100": 2})
    proc = await client(stubs, port, ("StreamIsActive:2", META))
    assert proc.stdout is not None
    first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
    assert first == {"stream": True}
    await targets.set(KEY, {"H100": 4})  # still active: no message
    await targets.set(KEY, {"H100": 0})
    second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
    assert second == {"stream": False}
    await asyncio.wait_for(proc.wait(), 20)


@pytest.mark.nats
async def test_a_spoke_in_keda_mode_serves_the_hubs_decision_and_writes_no_scale(
    nats_server, stubs: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 6},
              "signals": [{"metric": "queue_per_replica", "target": 2}]}
    world = two_cluster_world(low=0.5, high=60.0, step_at=3.0)
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0),
                      actuator="keda", keda_scaler_host="127.0.0.1", keda_scaler_port=0) as alpha,
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        ups = await eventually(
            lambda: [d for d in hub.decisions.recent(workload=KEY)
                     if d.placement_after.get("alpha/H100", 0) > 1
                     and any(r.status == "applied" and r.cluster_id == "alpha" for r in d.results.values())],
            timeout_s=30,
        )
        assert alpha.keda_port is not None and alpha.keda_targets is not None
        wanted = alpha.keda_targets.replicas(KEY, "H100")
        assert wanted is not None and wanted >= ups[0].placement_after["alpha/H100"] > 1
        (got,) = await call(stubs, alpha.keda_port, ("GetMetrics", META))
        assert got == {"values": [[METRIC, wanted, float(wanted)]]}
        # KEDA is the actuator: the spoke handed the count over and left the cluster's replicas alone.
        (status,) = world.workload_states("alpha")
        assert status.desired_replicas == 1


async def test_the_keda_actuator_refuses_resources_and_leaves_the_targets_alone() -> None:
    from datetime import UTC, datetime, timedelta

    import pytest as _pytest

    from shared.messages import ContainerResources, ScaleCommand, WorkloadRef
    from spoke.backend import PermanentApplyError
    from spoke.keda.actuator import KedaActuator
    from spoke.keda.targets import KedaTargets

    targets = KedaTargets()
    await targets.set("llm/chat", {"H100": 3})
    now = datetime.now(UTC)
    command = ScaleCommand(cluster_id="c", workload=WorkloadRef(namespace="llm", name="chat"), replicas_by_gpu_type={},
                           policy_id="p", issued_at=now, deadline=now + timedelta(minutes=1),
                           resources=(ContainerResources(gpu_type="H100", container="engine", cpu_request_cores=1.0),))
    with _pytest.raises(PermanentApplyError, match="does not apply container resources"):
        await KedaActuator(None, targets).apply(command)  # type: ignore[arg-type]
    assert targets.replicas("llm/chat") == 3
