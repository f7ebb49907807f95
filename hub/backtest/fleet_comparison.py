"""A comparison of several workloads sharing one fleet: every policy on its own fresh world, side by side.

Each run replays every workload together (``harness.run_fleet``), so their replicas compete for the
same GPUs. What runs:

* the hindsight plan: perfect foresight per workload, the pools shared (``fleet_hindsight``);
* Fleetscale: one controller, one policy per workload, every workload planned in one solve by the
  hub's planner; and its headroom variants (its frontier);
* each baseline's knob swept, one controller per workload (a static fleet each, an HPA or a KEDA
  ScaledObject on one Deployment each), every workload at the same setting in one replay; then, per
  baseline, each workload at its own best setting (the cheapest reaching that workload's Fleetscale
  attainment, or its best attainment), replayed together as ``<baseline>-per-workload``.

Every policy starts from the same initial fleet (each workload's ``initial_fleet``). The result is
one ``Comparison`` per workload (its requests, its bill) and one for the fleet in total, so the
checks and tables of one workload apply unchanged to each and to the total.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hub.backtest.attainability import attainable
from hub.backtest.comparison import HINDSIGHT, Comparison
from hub.backtest.demand import Supply
from hub.backtest.fleet_hindsight import FleetHindsight, Steps, cheapest_valid_fleet, fleet_hindsight
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import Controller, run_fleet
from hub.backtest.hindsight import DEFAULT_TARGET, DEFAULT_WINDOW_S, Hindsight
from hub.backtest.policy import DEFAULT_POLICY_ID, default_policy, with_headroom, with_request_classes
from hub.backtest.results import PolicyResult, load_by_bin, summarize
from hub.backtest.scenario import FleetScenario, Pool, Scenario, clip_to_context
from hub.backtest.schedule import ScheduleController
from hub.backtest.sweep import (
    BASELINES,
    COARSE,
    FLEETSCALE,
    STATIC,
    Grid,
    best_gpu_type,
    deployment_settings,
    frontier,
    static_fleets,
)
from hub.policy.model import Policy


@dataclass(frozen=True)
class FleetEntry:
    """One setting of one policy for the whole fleet; ``make`` builds fresh controllers (one for all, or one
    per workload) for each replay."""

    family: str
    knob: str
    name: str
    make: Callable[[], list[Controller]]
    fixed: tuple[Steps, ...] = ()
    """A static fleet's schedule per workload (for the hindsight plan's fixed-fleet alternative)."""


@dataclass(frozen=True)
class FleetComparison:
    fleet: FleetScenario
    """As replayed: prompts clipped to the context window."""
    workloads: tuple[Comparison, ...]
    """Per workload: its requests and its bill, every policy."""
    total: Comparison
    """The fleet in total: every request, the whole bill."""
    hindsight: FleetHindsight
    replays: int
    wall_s: float
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.name,
            "workloads": [s.key for s in self.fleet.workloads],
            "replays": self.replays,
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "total": self.total.to_json(),
            "per_workload": {s.key: c.to_json() for s, c in zip(self.fleet.workloads, self.workloads, strict=True)},
        }


def default_policies(fleet: FleetScenario) -> list[Policy]:
    """The embedded default policy for each workload, each with its own id."""
    return [default_policy(s, f"{DEFAULT_POLICY_ID}-{s.name}") for s in fleet.workloads]


def _fleetscale_entries(
    fleet: FleetScenario, policies: Sequence[Policy], grid: Grid, classes_variant: bool
) -> list[FleetEntry]:
    first = fleet.workloads[0]
    ids = ", ".join(p.id for p in policies)

    def make(ps: Sequence[Policy], name: str, description: str) -> Callable[[], list[Controller]]:
        return lambda: [FleetscaleController(first, ps, name=name, description=description)]

    out = [FleetEntry(FLEETSCALE, "policies as given", FLEETSCALE,
                      make(policies, FLEETSCALE, f"Fleetscale, one policy per workload ({ids}), planned together"))]
    out += _classes_entry(first, policies) if classes_variant else []
    own = {s.headroom_percent for p in policies for s in p.signals if s.metric.is_latency}
    if not own:
        return out
    for h in grid.headroom_percent:
        if own == {h}:
            continue
        name = f"{FLEETSCALE}-headroom-{h:g}"
        variant = [with_headroom(p, h) for p in policies]
        out.append(FleetEntry(FLEETSCALE, f"headroom {h:g} %", name,
                              make(variant, name, f"Fleetscale, {h:g} % headroom on every policy's latency signals")))
    return out


def _classes_entry(first: Scenario, policies: Sequence[Policy]) -> list[FleetEntry]:
    """Request classes the other way, shown beside Fleetscale (not on its frontier: a feature, not its knob)."""
    flipped = not policies[0].placement.request_classes
    word = "on" if flipped else "off"
    classes = [with_request_classes(p, flipped) for p in policies]
    name = f"{FLEETSCALE}-classes-{word}"
    description = f"Fleetscale, every policy with request classes and routing rules {word}"
    return [FleetEntry("", f"request classes {word}", name,
                       lambda: [FleetscaleController(first, classes, name=name, description=description)])]


def _static_entries(fleet: FleetScenario, supplies: Sequence[Supply], grid: Grid) -> list[FleetEntry]:
    out = []
    seen: list[list[dict[Pool, int]]] = []
    for f in grid.static_factors:
        fleets = [static_fleets(s, (f,))[0][1] for s in supplies]
        if fleets in seen:  # a larger factor that buys the same fleets: the same replay (as static_fleets skips)
            continue
        seen.append(fleets)
        name = f"static-x{f:g}"
        where = ["; ".join(f"{n}x {t} in {c}" for (c, t), n in sorted(x.items())) for x in fleets]
        plans: tuple[Steps, ...] = tuple([(0.0, x)] for x in fleets)

        def make(name: str = name, where: list[str] = where, plans: tuple[Steps, ...] = plans) -> list[Controller]:
            return [ScheduleController(name, f"fixed from time 0 (cold-starting): {w}", p)
                    for w, p in zip(where, plans, strict=True)]

        out.append(FleetEntry(STATIC, f"busiest window x{f:g}", name, make, fixed=plans))
    return out


def _deployment_entries(fleet: FleetScenario, types: Sequence[Sequence[str]], grid: Grid) -> list[FleetEntry]:
    """HPA and KEDA, one Deployment per workload; ``types`` per setting, the GPU type of each workload."""
    out = []

    def each(per: Sequence[str], build: Callable[[Scenario, str], Controller]) -> Callable[[], list[Controller]]:
        return lambda: [build(s, t) for s, t in zip(fleet.workloads, per, strict=True)]

    for per in types:
        label = per[0] if len(set(per)) == 1 else "best type each"
        for family, knob, name, build in deployment_settings(grid, label):
            out.append(FleetEntry(family, knob, name, each(per, build)))
    return out


@dataclass
class _Runs:
    """Every replay's results, per workload and in total, in the order run."""

    fleet: FleetScenario
    attainable: list[tuple[bool, ...]]
    merged_ok: tuple[bool, ...]
    parts: list[tuple[PolicyResult, ...]] = field(default_factory=list)
    totals: list[PolicyResult] = field(default_factory=list)

    def replay(self, entry: FleetEntry) -> tuple[tuple[PolicyResult, ...], PolicyResult]:
        out = run_fleet(self.fleet, entry.make())
        parts = tuple(
            replace(summarize(r, s, ok), family=entry.family, knob=entry.knob)
            for r, s, ok in zip(out.workloads, self.fleet.workloads, self.attainable, strict=True)
        )
        total = replace(summarize(out.total, self.fleet.merged(), self.merged_ok), name=entry.name,
                        family=entry.family, knob=entry.knob)
        self.parts.append(parts)
        self.totals.append(total)
        return parts, total


def _per_workload_best(entries: Sequence[FleetEntry], runs: _Runs, levels: Sequence[float]) -> FleetEntry | None:
    """Per baseline family: each workload at the setting the frontier picks at its level, as one entry
    (None when every workload picks the same setting: that replay exists already)."""
    family = entries[0].family
    ran = [k for k, total in enumerate(runs.totals) if total.family == family]  # ``entries``' replays, in order
    picks = []
    for i, level in enumerate(levels):
        mine = [runs.parts[k][i] for k in ran]
        pick, _ = frontier(mine, level)
        picks.append(next(j for j, r in enumerate(mine) if r is pick))
    if len(set(picks)) == 1:
        return None
    chosen = [entries[j] for j in picks]
    knob = "; ".join(f"{s.name}: {e.knob}" for s, e in zip(runs.fleet.workloads, chosen, strict=True))

    def make() -> list[Controller]:
        return [e.make()[i] for i, e in enumerate(chosen)]

    return FleetEntry(family, knob, f"{family}-per-workload", make)


def _clipped(fleet: FleetScenario) -> tuple[FleetScenario, list[int]]:
    out, counts = [], []
    for s in fleet.workloads:
        trace, n = clip_to_context(s.trace, s.context_tokens)
        out.append(replace(s, trace=trace))
        counts.append(n)
    return FleetScenario(fleet.name, tuple(out)), counts


def compare_fleet(
    fleet: FleetScenario,
    policies: Sequence[Policy] | None = None,
    *,
    grid: Grid = COARSE,
    target: float = DEFAULT_TARGET,
    window_s: float = DEFAULT_WINDOW_S,
    progress: Callable[[str, str], None] | None = None,
    classes_variant: bool = True,
) -> FleetComparison:
    """Every policy on the fleet; ``progress(event, name)`` hears "start" and "done" per replay.

    ``classes_variant`` also runs Fleetscale with request classes the other way (as for one workload);
    with three workloads and classes on, that replay costs more than all the others together.
    """
    started = time.perf_counter()
    fleet, clipped = _clipped(fleet)
    policies = list(policies) if policies is not None else default_policies(fleet)
    if not policies:
        raise ValueError("need at least one Fleetscale policy")
    merged = fleet.merged()
    runs = _Runs(fleet, [attainable(s) for s in fleet.workloads], attainable(merged))
    supplies = [Supply(s) for s in fleet.workloads]
    tell = progress or (lambda event, name: None)
    tell("start", HINDSIGHT)
    windowed = fleet_hindsight(fleet, supplies, runs.attainable, runs.merged_ok, target=target, window_s=window_s)
    tell("done", HINDSIGHT)
    best = [best_gpu_type(s, ok) for s, ok in zip(supplies, runs.attainable, strict=True)]
    types = [[t] * len(best) for t in supplies[0].types] if grid.every_gpu_type else [best]
    entries = _fleetscale_entries(fleet, policies, grid, classes_variant) + _static_entries(fleet, supplies, grid)
    entries += _deployment_entries(fleet, types, grid)
    for e in entries:
        tell("start", e.name)
        runs.replay(e)
        tell("done", e.name)
    levels = [p.scored.attainment for p in runs.parts[0]]  # Fleetscale's, per workload
    extra = 0
    for family in BASELINES:
        composed = _per_workload_best([e for e in entries if e.family == family], runs, levels)
        if composed is not None:
            tell("start", composed.name)
            runs.replay(composed)
            tell("done", composed.name)
            extra += 1
    fixed = [[(runs.parts[k][i], e.fixed[i]) for k, e in enumerate(entries) if e.fixed]
             for i in range(len(fleet.workloads))]
    plan = cheapest_valid_fleet(windowed, fleet, fixed, runs.attainable, runs.merged_ok)
    notes = [f"{s.key}: {n} requests were longer than the {s.context_tokens:,}-token context window; their prompts "
             "were clipped to fit" for s, n in zip(fleet.workloads, clipped, strict=True) if n]
    if not plan.reached:
        short = [s.key for s, r in zip(fleet.workloads, plan.results, strict=True) if r.scored.attainment < target]
        notes.append(f"the hindsight plan did not reach {100 * target:g} % for {', '.join(short)} in its own replay "
                     f"after {plan.rounds} raises; it is not a valid reference")
    wall = time.perf_counter() - started
    replays = 1 + plan.rounds + len(entries) + extra + (1 if plan.windows is not None else 0)
    views = tuple(
        _view(fleet, i, plan, runs, policies[min(i, len(policies) - 1)], grid, clipped[i], best[i], wall, notes)
        for i in range(len(fleet.workloads))
    )
    total = _view(fleet, None, plan, runs, policies[0], grid, sum(clipped),
                  ", ".join(f"{s.name} {t}" for s, t in zip(fleet.workloads, best, strict=True)), wall, notes)
    return FleetComparison(fleet, views, total, plan, replays, wall, tuple(notes))


def _view(
    fleet: FleetScenario, i: int | None, plan: FleetHindsight, runs: _Runs, policy: Policy, grid: Grid,
    clipped: int, gpu_type: str, wall_s: float, notes: Sequence[str],
) -> Comparison:
    """One workload's comparison (``i``), or the fleet's in total (None)."""
    target = plan.target
    if i is None:
        scenario = fleet.merged()
        reference, model, reached = plan.total, plan.model_total, plan.reached
        windows = plan.windows[1] if plan.windows is not None else None
        results = list(runs.totals)  # the per-workload-best replays are in the fleet's view only
    else:
        scenario = fleet.workloads[i]
        reference, model = plan.results[i], plan.model[i]
        reached = reference.scored.attainment >= target
        windows = plan.windows[0][i] if plan.windows is not None else None
        results = [parts[i] for parts, total in zip(runs.parts, runs.totals, strict=True)
                   if not total.name.endswith("-per-workload")]
    knob = f"{plan.rounds} raises"
    head = [replace(reference, name=HINDSIGHT, family=HINDSIGHT, knob=knob if windows is None else "fixed fleets")]
    if windows is not None:
        head.append(replace(windows, name=f"{HINDSIGHT}-windows", family=f"{HINDSIGHT}-windows", knob=knob))
    hindsight = Hindsight(result=head[0], model=model, rounds=plan.rounds, reached=reached, target=target,
                          windows=windows)
    return Comparison(
        scenario=scenario, policy=policy, results=tuple(head + results), hindsight=hindsight, grid=grid,
        clipped=clipped, baseline_gpu_type=gpu_type,
        load_per_s=load_by_bin(scenario.trace.arrival_s, scenario.duration_s), wall_s=wall_s, notes=tuple(notes),
    )
