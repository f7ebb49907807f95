"""Measured start times over a real nats-server: a simulated cluster's cold starts reach the hub,
which plans its forecast with them instead of the policy's shorter horizon."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven

pytestmark = pytest.mark.nats

COLD_START_S = 40.0


def step_world() -> SimWorld:
    # A step once the hub's forecaster has seen a 30 s step of its own clock (800 simulated s at 20x):
    # the hub records a decision when the count changes, and this one carries a forecast.
    trace = synthetic("step", duration_s=3600.0, rate_per_s=2.0, step_at_s=800.0, step_rate_per_s=60.0,
                      input_tokens=512, output_tokens=64, seed=5)
    return SimWorld(
        (ClusterSpec("alpha", (NodeSpec("a-0", "H100", 8),)),),
        (WorkloadSpec(NS, NAME, trace, cold_start_s=COLD_START_S, initial_replicas={("alpha", "H100"): 1}),),
    )


def forecast_of(decision) -> dict | None:  # type: ignore[no-untyped-def]
    return next((p for p in (decision.audit or {}).get("proposals", []) if p["method"] == "forecast"), None)


async def test_a_measured_cold_start_reaches_the_hub_and_sets_the_forecast_horizon(
    nats_server, tmp_path: Path
) -> None:
    world = step_world()
    world.set_replicas("alpha", NS, NAME, "H100", 2)  # one replica cold-starts at once
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 8},
              "signals": [{"metric": "request_rate_per_replica", "target": 20}],
              "prediction": {"enabled": True, "horizon_seconds": 5}}
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub,
        driven(world, time_scale=20.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
    ):
        def measured():  # type: ignore[no-untyped-def]
            decision = hub.decisions.latest.get(KEY)
            if decision is None or "alpha/H100" not in (decision.audit or {}).get("starts", {}):
                return None
            return decision if forecast_of(decision) is not None else None

        decision = await eventually(measured, timeout_s=90)
    # The spoke reported the replica's start as the world ran it; the hub estimates from it ...
    # (more starts may have been measured by then under load: every one took the world's 40 s)
    measured_start = decision.audit["starts"]["alpha/H100"]
    assert measured_start["start_s"] == COLD_START_S and measured_start["tiers"] == {"cold": COLD_START_S}
    assert measured_start["starts"] >= 1
    # ... and looks that far ahead, not the policy's 5 s.
    forecast = forecast_of(decision)
    assert forecast["detail"]["horizon_s"] == COLD_START_S
    assert forecast["detail"]["horizon_from"] == "measured start 40s on alpha/H100 (policy horizon_seconds 5)"
    report = hub.state.snapshot().workloads[KEY].reports["alpha"]
    [(tier, recent)] = [(s.tier, s.recent_s) for v in report.variants for s in v.starts]
    assert tier == "cold" and set(recent) == {COLD_START_S}
