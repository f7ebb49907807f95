"""Vertical recommendations end to end: simulated containers -> spokes -> real NATS -> hub -> API, audit, page."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from shared.simulation.sampling import POD_CPU_REQUEST_CORES, POD_MEMORY_REQUEST_BYTES
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.test_page import Browser, browser  # noqa: F401  (the fixture)
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats


async def test_recommendations_reach_the_api_the_audit_and_the_page(
    nats_server, tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    from playwright.async_api import expect

    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 3},
              "signals": [{"metric": "queue_per_replica", "target": 4}]}
    world = two_cluster_world()  # a step at 20 s: a scale-up decision after the first samples
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        await eventually(lambda: hub.resources.recommend(KEY), timeout_s=20)
        base = f"http://127.0.0.1:{hub.api_port}/api/v1"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/workloads/{NS}/{NAME}/resources") as r:
                assert r.status == 200
                body = await r.json()
            async with session.get(f"{base}/workloads/{NS}/nobody/resources") as r:
                assert r.status == 404 and (await r.json())["error"] == "workload not found"
        assert body["workload"] == KEY and body["policy_id"] == "llama" and body["apply"] is False
        engine = next(c for c in body["containers"] if c["gpu_type"] == "H100")
        assert engine["container"] == "engine" and engine["samples"] >= 1
        # The simulated engine uses a core or two against a request of 8: the target says so.
        assert 0 < engine["cpu_cores"]["target"] < POD_CPU_REQUEST_CORES
        assert engine["current"]["cpu_request_cores"] == POD_CPU_REQUEST_CORES
        assert engine["current"]["memory_request_bytes"] == POD_MEMORY_REQUEST_BYTES
        assert engine["proposal"]["memory_request_bytes"] >= engine["memory_bytes"]["peak"] > 0
        assert engine["gpu_memory_bytes"]["target"] > 0
        # A decision made after the first samples carries them in its audit.
        decision = await eventually(
            lambda: next((d for d in hub.decisions.recent(workload=KEY) if d.audit and "resources" in d.audit), None),
            timeout_s=20)
        assert decision.audit["resources"]["apply"] is False
        target = hub.metrics.registry.get_sample_value(
            "fleetscale_hub_resource_target",
            {"workload": KEY, "gpu_type": "H100", "container": "engine", "resource": "cpu_cores"})
        assert target is not None and 0 < target < POD_CPU_REQUEST_CORES
        assert {c["container"] for c in decision.audit["resources"]["containers"]} == {"engine"}
        page = browser.page
        await page.goto(f"http://127.0.0.1:{hub.api_port}/")
        line = page.locator(f'[data-resources="{KEY}"]')
        await expect(line).to_contain_text("resources (recommended)")
        await expect(line).to_contain_text("engine on H100: CPU")
    assert browser.errors == []


async def test_a_policy_that_applies_resizes_the_containers_once_through_the_spoke(
    nats_server, tmp_path: Path
) -> None:
    from hub.policy.vertical import VerticalSettings
    from shared.messages import ContainerResources

    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 1},
              "signals": [{"metric": "queue_per_replica", "target": 1000}], "resources": {"apply": True}}
    world = two_cluster_world(low=1.0, high=1.0)
    alpha = SimulatedBackend(world, "alpha", window_s=5.0)
    # A template that asks less memory than VPA's minimum: below the lower bound from the first samples.
    alpha.set_container_resources(KEY, ContainerResources(
        gpu_type="H100", container="engine", cpu_request_cores=0.5, memory_request_bytes=100 * 2**20,
        memory_limit_bytes=200 * 2**20))
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy),
                    resize_settle_s=3600) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", alpha),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        hub.resources.settings = VerticalSettings(sample_interval_s=0.2)  # seconds, not VPA's minute
        decision = await eventually(
            lambda: next((d for d in hub.decisions.recent(workload=KEY) if d.cause == "resources" and d.results),
                         None), timeout_s=20)
        [result] = decision.results.values()
        assert result.status.value == "applied" and result.cluster_id == "alpha"
        change = decision.audit["resources"]["changes"][0]
        assert decision.desired_replicas == decision.current_replicas  # replicas untouched
        assert change["container"] == "engine" and change["gpu_type"] == "H100"
        assert change["memory_request_bytes"] >= change["memory_floor_bytes"] > 100 * 2**20
        # The spoke's reports now carry the new template, and no second resize follows (settle time).
        reported = await eventually(lambda: next(
            (c for c in hub.state.snapshot().workloads[KEY].reports["alpha"].samples.containers
             if c.memory_request_bytes == change["memory_request_bytes"]), None), timeout_s=10)
        assert reported.memory_limit_bytes == change["memory_limit_bytes"]
        assert len([d for d in hub.decisions.recent(workload=KEY) if d.cause == "resources"]) == 1
        assert hub.metrics.registry.get_sample_value("fleetscale_hub_resizes_total", {"cluster": "alpha"}) == 1
        assert hub.metrics.registry.get_sample_value(
            "fleetscale_hub_decisions_total", {"action": "hold", "reason": "resources", "mode": "enforce"}) == 1
