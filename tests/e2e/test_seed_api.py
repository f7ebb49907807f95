"""The seed API end to end: the seed guide's example body, POSTed to a running hub, scales a
simulated workload through a spoke, and the returned id then gives the status in the seed's shape.

Real hub and spoke agents in this process, a private nats-server, and a simulated cluster whose
``default/nginx-deployment`` is loaded hard enough that its GPUs are busy well above the 75 % target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from hub.web.api.seed import AutoscalingResponse
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import running_hub, running_spoke
from tests.e2e.world import driven

pytestmark = pytest.mark.nats

SEED_EXAMPLE = {  # docs/autoscaling_api_guide.md of the seed, less its storage targets (refused with 400)
    "workload_name": "nginx-deployment", "workload_namespace": "default", "workload_type": "Deployment",
    "min_replicas": 2, "max_replicas": 10,
    "target_cpu_percent": 70, "target_memory_percent": 80, "target_gpu_percent": 75,
    "scale_up_policy": {"stabilization_window_seconds": 60, "max_scale_change": 3},
    "scale_down_policy": {"stabilization_window_seconds": 300, "max_scale_change": 2},
}


def nginx_world() -> SimWorld:
    # 40 req/s of 512-in/64-out requests keep two H100 replicas busy all the time (GPU ~100 %).
    trace = synthetic("constant", duration_s=3600, rate_per_s=40.0, input_tokens=512, output_tokens=64, seed=5)
    return SimWorld(
        (ClusterSpec("alpha", (NodeSpec("a-0", "H100", 8), NodeSpec("a-1", "H100", 8))),),
        (WorkloadSpec("default", "nginx-deployment", trace, cold_start_s=2.0,
                      initial_replicas={("alpha", "H100"): 2}),),
    )


async def test_the_seed_example_scales_a_workload_and_reports_in_the_seed_shape(nats_server) -> None:
    world = nginx_world()
    async with (
        running_hub(nats_server.url) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)) as alpha,
        aiohttp.ClientSession(f"http://127.0.0.1:{hub.api_port}") as http,
    ):
        async def busy() -> bool:
            async with http.get("/api/v1/workloads?workload=default/nginx-deployment") as r:
                workloads = (await r.json())["workloads"]
            util = workloads[0]["clusters"]["alpha"]["samples"]["gpu_utilization_ratio"] if workloads else None
            return util is not None and util > 0.8

        # The autoscaler is created on a workload already running hot, as in the seed's story; its
        # first evaluation then already sees the load (a scale-up window of 60 s starts from there).
        await eventually_async(busy, timeout_s=15)
        async with http.post("/api/v1/autoscaling", json=SEED_EXAMPLE) as r:
            created = await r.json()
            assert r.status == 201, created
        autoscaler = created["autoscaling_id"]
        assert created["status"] == "active" and created["message"] == "Autoscaler created successfully"

        async def status() -> dict[str, Any]:
            async with http.get(f"/api/v1/autoscaling/{autoscaler}") as r:
                assert r.status == 200
                return await r.json()

        last: dict[str, Any] = {}

        async def scaled_up() -> bool:
            last.update(await status())
            return last["details"]["scale_up_count"] >= 1

        await eventually_async(scaled_up, timeout_s=30)
        assert alpha.executor.applied >= 1
        assert world.workload_states("alpha")[0].desired_replicas > 2
        AutoscalingResponse.model_validate(last)
        details = last["details"]
        assert set(details) >= {"created_at", "updated_at", "current_replicas", "desired_replicas",
                                "current_cpu_percent", "current_memory_percent", "current_gpu_percent",
                                "last_scale_time", "scale_up_count", "scale_down_count"}
        assert details["current_gpu_percent"] > 75 and details["last_scale_time"] is not None
        # The simulator measures no CPU or memory: null, never 0.
        assert details["current_cpu_percent"] is None and details["current_memory_percent"] is None
        assert 2 < details["desired_replicas"] <= 10
        ups = [d for d in hub.decisions.recent(workload="default/nginx-deployment") if d.action == "scale_up"]
        assert ups and ups[-1].policy_id == autoscaler and "gpu_utilization" in ups[-1].reason

        async with http.get("/api/v1/policies") as r:
            (policy,) = (await r.json())["policies"]
        assert policy["id"] == autoscaler and policy["source"] == "rest"
        async with http.get("/api/v1/autoscaling/metrics") as r:
            metrics = await r.json()
        assert metrics["total_autoscalers"] == 1 and metrics["total_scale_ups"] >= 1
        assert metrics["average_cpu_utilization"] is None


async def eventually_async(check: Callable[[], Awaitable[bool]], *, timeout_s: float) -> None:
    """``eventually`` for an async check: poll it until it is true."""
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.2)
