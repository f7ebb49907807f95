"""One comparison: every policy on its own fresh world over the same scenario, side by side.

The five policies of ``fleetscale simulate``: static peak provisioning, the Kubernetes HPA on GPU
utilisation, KEDA on the queue, Fleetscale (the given policy through the hub's planner), and the
cost oracle. Optionally Fleetscale again with the policy's prediction switched the other way, to
show what prediction adds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.backtest.demand import Supply
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import Controller, run
from hub.backtest.keda import keda_queue
from hub.backtest.kubernetes_hpa import hpa_gpu_utilization
from hub.backtest.oracle import DEFAULT_WINDOW_S, oracle
from hub.backtest.policy import with_prediction
from hub.backtest.results import TIMELINE_BIN_S, PolicyResult, load_by_bin, summarize
from hub.backtest.scenario import Scenario
from hub.backtest.static import static_peak
from hub.policy.model import Policy

FLEETSCALE = "fleetscale"
ORACLE = "oracle"
HPA = "hpa-gpu-util"


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    policy: Policy
    results: tuple[PolicyResult, ...]
    load_per_s: tuple[float, ...]
    wall_s: float
    notes: tuple[str, ...] = field(default=())

    def result(self, name: str) -> PolicyResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        trace = self.scenario.trace
        return {
            "trace": {"name": trace.name, "requests": len(trace), "duration_s": trace.duration_s},
            "slo_ttft_s": self.scenario.slo_ttft_s,
            "cold_start_s": self.scenario.cold_start_s,
            "clusters": {
                f"{cid}/{gpu_type}": n for (cid, gpu_type), n in sorted(self.scenario.pools().items())
            },
            "fleetscale_policy": self.policy.model_dump(mode="json", exclude_defaults=True),
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "load": {"bin_s": TIMELINE_BIN_S, "requests_per_s": list(self.load_per_s)},
            "policies": [r.to_json() for r in self.results],
        }


def controllers(
    scenario: Scenario,
    policies: Sequence[Policy],
    *,
    supply: Supply,
    prediction_variant: bool = False,
    oracle_window_s: float = DEFAULT_WINDOW_S,
) -> list[Controller]:
    main = policies[0]
    fleetscale = [FleetscaleController(scenario, policies, name=FLEETSCALE)]
    if prediction_variant:
        flipped = not main.prediction.enabled
        other = [with_prediction(main, flipped), *policies[1:]]
        name = f"{FLEETSCALE}-prediction-{'on' if flipped else 'off'}"
        desc = f"Fleetscale, policy {main.id!r} with prediction {'on' if flipped else 'off'}, all clusters"
        fleetscale.append(FleetscaleController(scenario, other, name=name, description=desc))
    return [
        static_peak(scenario, supply, oracle_window_s),
        hpa_gpu_utilization(scenario),
        keda_queue(scenario),
        *fleetscale,
        oracle(scenario, supply, oracle_window_s),
    ]


def compare(
    scenario: Scenario,
    policies: Sequence[Policy],
    *,
    prediction_variant: bool = False,
    oracle_window_s: float = DEFAULT_WINDOW_S,
) -> Comparison:
    if not policies:
        raise ValueError("need at least one Fleetscale policy")
    started = time.perf_counter()
    supply = Supply(scenario)
    results = []
    for controller in controllers(
        scenario, policies, supply=supply, prediction_variant=prediction_variant, oracle_window_s=oracle_window_s
    ):
        results.append(summarize(run(scenario, controller), slo_ttft_s=scenario.slo_ttft_s,
                                 duration_s=scenario.duration_s))
    notes = []
    if supply.unservable:
        notes.append(
            f"{supply.unservable} requests cannot get a first token within the SLO on any GPU type, even alone"
        )
    return Comparison(
        scenario=scenario,
        policy=policies[0],
        results=tuple(results),
        load_per_s=load_by_bin(scenario.trace.arrival_s, scenario.duration_s),
        wall_s=time.perf_counter() - started,
        notes=tuple(notes),
    )
