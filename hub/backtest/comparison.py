"""One comparison: every policy on its own fresh world over the same scenario, side by side.

What runs: the hindsight plan (the reference cost, valid in its own replay), Fleetscale with the
given policy and its headroom sweep, and every baseline's sweep (static fleets, HPA on GPU
utilisation, HPA on queue per replica, KEDA on the queue; ``sweep``). Optionally Fleetscale again
with the policy's prediction switched the other way. Before anything runs, prompts are clipped to
the model's context window and every request is classed attainable or not (``attainability``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hub.backtest.attainability import attainable
from hub.backtest.demand import Supply
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import run
from hub.backtest.hindsight import DEFAULT_TARGET, DEFAULT_WINDOW_S, Hindsight, cheapest_valid, hindsight
from hub.backtest.policy import with_prediction
from hub.backtest.results import TIMELINE_BIN_S, PolicyResult, load_by_bin, summarize
from hub.backtest.scenario import Scenario, clip_to_context
from hub.backtest.sweep import (
    COARSE,
    FLEETSCALE,
    STATIC,
    Entry,
    Grid,
    baseline_entries,
    best_gpu_type,
    fleetscale_entries,
)
from hub.policy.model import Policy

HINDSIGHT = "hindsight"


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    """As replayed: prompts clipped to the context window."""
    policy: Policy
    results: tuple[PolicyResult, ...]
    """The hindsight plan first, then Fleetscale's runs, then the baselines' sweeps."""
    hindsight: Hindsight
    grid: Grid
    clipped: int
    """Requests whose prompt was clipped to the model's context window."""
    baseline_gpu_type: str
    """The GPU type the coarse grid gives one-type baselines (every type in the fine grid)."""
    load_per_s: tuple[float, ...]
    wall_s: float
    notes: tuple[str, ...] = field(default=())

    def result(self, name: str) -> PolicyResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def family(self, family: str) -> list[PolicyResult]:
        return [r for r in self.results if r.family == family]

    @property
    def fleetscale(self) -> PolicyResult:
        return self.result(FLEETSCALE)

    def to_json(self) -> dict[str, Any]:
        trace = self.scenario.trace
        first = self.results[0]
        return {
            "trace": {"name": trace.name, "requests": len(trace), "duration_s": trace.duration_s,
                      "clipped_to_context": self.clipped, "context_tokens": self.scenario.context_tokens},
            "slo_ttft_s": self.scenario.slo_ttft_s,
            "cold_start_s": self.scenario.cold_start_s,
            "scored_from_s": self.scenario.scored_from_s,
            "initial_fleet": {f"{c}/{t}": n for (c, t), n in sorted(self.scenario.initial_fleet().items())},
            "flow_control": None if self.scenario.flow_control is None else {
                "queue_depth": self.scenario.flow_control.queue_depth,
                "kv_cache_ratio": self.scenario.flow_control.kv_cache_ratio,
            },
            "requests": {"whole_run": {"total": first.whole.requests, "unattainable": first.whole.unattainable},
                         "scored_window": {"total": first.scored.requests, "unattainable": first.scored.unattainable}},
            "clusters": {
                f"{cid}/{gpu_type}": n for (cid, gpu_type), n in sorted(self.scenario.pools().items())
            },
            "fleetscale_policy": self.policy.model_dump(mode="json", exclude_defaults=True),
            "grid": self.grid.name,
            "baseline_gpu_type": self.baseline_gpu_type,
            "hindsight": {"target": self.hindsight.target, "reached": self.hindsight.reached,
                          "raises": self.hindsight.rounds,
                          "capacity_model_plan": self.hindsight.model.to_json()},
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "load": {"bin_s": TIMELINE_BIN_S, "requests_per_s": list(self.load_per_s)},
            "policies": [r.to_json() for r in self.results],
        }


def _run(scenario: Scenario, entry: Entry, ok: Sequence[bool]) -> PolicyResult:
    result = summarize(run(scenario, entry.controller), scenario, ok)
    return replace(result, family=entry.family, knob=entry.knob)


def compare(
    scenario: Scenario,
    policies: Sequence[Policy],
    *,
    grid: Grid = COARSE,
    target: float = DEFAULT_TARGET,
    window_s: float = DEFAULT_WINDOW_S,
    prediction_variant: bool = False,
    progress: Callable[[str, str], None] | None = None,
) -> Comparison:
    """Every policy on the scenario; ``progress(event, name)`` hears "start" and "done" per run."""
    if not policies:
        raise ValueError("need at least one Fleetscale policy")
    started = time.perf_counter()
    trace, clipped = clip_to_context(scenario.trace, scenario.context_tokens)
    scenario = replace(scenario, trace=trace)
    ok = attainable(scenario)
    supply = Supply(scenario)
    tell = progress or (lambda event, name: None)
    tell("start", HINDSIGHT)
    windowed = hindsight(scenario, supply, ok, target=target, window_s=window_s)
    tell("done", HINDSIGHT)
    entries = fleetscale_entries(scenario, policies, grid)
    if prediction_variant:
        main = policies[0]
        flipped = not main.prediction.enabled
        name = f"{FLEETSCALE}-prediction-{'on' if flipped else 'off'}"
        desc = f"Fleetscale, policy {main.id!r} with prediction {'on' if flipped else 'off'}, all clusters"
        controller = FleetscaleController(scenario, [with_prediction(main, flipped), *policies[1:]], name=name,
                                          description=desc)
        entries.append(Entry("", f"prediction {'on' if flipped else 'off'}", controller))
    entries += baseline_entries(scenario, supply, ok, grid)
    runs = []
    for e in entries:
        name = e.controller.name
        tell("start", name)
        runs.append(_run(scenario, e, ok))
        tell("done", name)
    plan = cheapest_valid(windowed, [r for r in runs if r.family == STATIC])
    results = [replace(plan.result, family=HINDSIGHT, knob=plan.result.knob or f"{plan.rounds} raises")]
    if plan.windows is not None:
        results.append(replace(plan.windows, name=f"{HINDSIGHT}-windows", family=f"{HINDSIGHT}-windows",
                               knob=f"{plan.rounds} raises"))
    results += runs
    notes = []
    if clipped:
        notes.append(f"{clipped} requests were longer than the {scenario.context_tokens:,}-token context window; "
                     "their prompts were clipped to fit")
    if not plan.reached:
        notes.append(f"the hindsight plan did not reach {100 * target:g} % in its own replay after {plan.rounds} "
                     f"raises ({100 * plan.result.scored.attainment:.2f} %); it is not a valid reference")
    return Comparison(
        scenario=scenario,
        policy=policies[0],
        results=tuple(results),
        hindsight=plan,
        grid=grid,
        clipped=clipped,
        baseline_gpu_type="every type" if grid.every_gpu_type else best_gpu_type(supply, ok),
        load_per_s=load_by_bin(scenario.trace.arrival_s, scenario.duration_s),
        wall_s=time.perf_counter() - started,
        notes=tuple(notes),
    )
