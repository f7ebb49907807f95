"""Two teams under one binding budget, over a real nats-server: the real hub places within the cap,
the higher priority gets the room, and the API and /metrics show spend against budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import driven

pytestmark = pytest.mark.nats

CAP = 6


def world() -> SimWorld:
    def busy(seed: int) -> Any:
        return synthetic("step", duration_s=3600.0, rate_per_s=60.0, step_at_s=3000.0, step_rate_per_s=60.0,
                         input_tokens=512, output_tokens=64, seed=seed)
    return SimWorld(
        (ClusterSpec("alpha", tuple(NodeSpec(f"a-{i}", "H100", 8) for i in range(2))),),
        (WorkloadSpec("team-a", "chat", busy(1), cold_start_s=1.0, initial_replicas={("alpha", "H100"): 1}),
         WorkloadSpec("team-b", "batch", busy(2), cold_start_s=1.0, initial_replicas={("alpha", "H100"): 3})),
    )


def policy(namespace: str, name: str, priority: int) -> dict[str, Any]:
    return {"id": name, "targets": {"workloads": [{"namespace": namespace, "name": name}]},
            "bounds": {"min_replicas": 1, "max_replicas": 12}, "priority": priority,
            "signals": [{"metric": "queue_per_replica", "target": 1}],
            "behavior": {"scale_down": {"stabilization_window_seconds": 1}},
            "panic": {"stable_window_seconds": 6}}


def desired(sim: SimWorld) -> dict[str, int]:
    return {w.ref.key: w.desired_replicas for w in sim.workload_states("alpha")}


async def test_two_teams_under_a_binding_budget_are_placed_within_it_by_priority(nats_server: Any,
                                                                                 tmp_path: Path) -> None:
    sim = world()
    policies = write_policies(tmp_path / "policies.yaml", policy("team-a", "chat", 10), policy("team-b", "batch", 0))
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({"budgets": [{
        "id": "gpu-pool", "team": "inference", "workloads": {"namespaces": ["team-a", "team-b"]},
        "caps": {"gpus": {"*": CAP}}}]}))
    seen: list[dict[str, int]] = []

    def settled() -> bool:
        now = desired(sim)
        seen.append(now)
        return now == {"team-a/chat": CAP - 1, "team-b/batch": 1}

    async with (
        running_hub(nats_server.url, policy_file=policies, budget_file=budgets) as hub,
        driven(sim, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(sim, "alpha", window_s=3.0)),
    ):
        # 16 H100s are free, and both teams' queues ask for more than the cap: the cap holds, the
        # higher priority takes it, the lower one keeps its minimum.
        await eventually(settled, timeout_s=40)
        assert all(sum(s.values()) <= max(CAP, 4) for s in seen), seen  # 4: what ran before the first decision
        causes = {d.cause for d in hub.decisions.recent(limit=200)}
        assert "priority" in causes or "budget" in causes
        base = f"http://127.0.0.1:{hub.api_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/v1/budgets/gpu-pool") as r:
                body = await r.json()
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
        assert body["source"] == "file" and body["use"]["gpus"]["*"] == CAP
        assert body["use"]["workloads"] == ["team-a/chat", "team-b/batch"]
        assert f'fleetscale_hub_budget_gpus{{budget="gpu-pool",gpu_type="*",team="inference"}} {CAP}.0' in metrics
        assert f'fleetscale_hub_budget_cap_gpus{{budget="gpu-pool",gpu_type="*",team="inference"}} {CAP}.0' \
            in metrics
