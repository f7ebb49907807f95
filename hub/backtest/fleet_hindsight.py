"""The hindsight plan of several workloads sharing a fleet: perfect foresight per workload, pools shared.

Each workload gets what ``hindsight`` gives one: per window the cheapest replicas per GPU type that
serve its requests at the SLO (``demand``), ready a cold start ahead. The workloads share the
clusters' GPUs, so in a window where their plans together ask for more of a GPU type than there is
(``shared_mixes``), the window is re-planned workload by workload, each within what the ones before
left, in every order, and the cheapest assignment leaving no workload short is kept: a valid
assignment (every replica has a GPU), though not proven the cheapest one. Replicas are spread over
the pools of their type in cluster order, each workload within the pools the ones before left
(``shared_pools``).

The plans are replayed together, on one world from the same initial fleet as every policy, and
every workload below the target in its own scored window has its short windows raised (as in
``hindsight``) and the whole fleet replayed again, until every workload reaches the target or the
rounds run out (then it says so). Perfect foresight also knows when a fixed fleet is enough: a
workload whose fixed fleet from the static sweep reaches the target for less than its window plan
takes it, and that combination is replayed; it is the reference if every workload still reaches the
target and the fleet costs less (``cheapest_valid_fleet``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations

from hub.backtest.demand import Mix, Supply, TypeSet, cheapest_mix, to_pools, windows
from hub.backtest.harness import FleetRun, run_fleet
from hub.backtest.hindsight import MAX_RAISES, MAX_ROUNDS, NAME, RAISE, short_windows, steps
from hub.backtest.results import PolicyResult, summarize
from hub.backtest.scenario import FleetScenario, Pool
from hub.backtest.schedule import ScheduleController

Steps = list[tuple[float, dict[Pool, int]]]


ORDERS_TRIED = 4
"""Up to this many workloads, every order of re-planning is tried in a window that collides."""


def shared_mixes(needs: Sequence[Mapping[TypeSet, float]], supplies: Sequence[Supply]) -> list[Mix]:
    """One window's mixes, one per workload, that fit the fleet's GPUs together.

    Each workload's cheapest mix alone when they fit together. Otherwise the workloads are re-planned
    one after another, each within the replicas the ones before left, in every order (up to
    ``ORDERS_TRIED`` workloads; beyond, costliest first), and the cheapest assignment that leaves
    no workload short is taken (the one leaving the fewest short, if none does).
    """
    mixes = [cheapest_mix(n, s) for n, s in zip(needs, supplies, strict=True)]
    capacity = supplies[0].capacity
    if all(sum(m.replicas.get(t, 0) for m in mixes) <= n for t, n in capacity.items()):
        return mixes
    costliest = sorted(range(len(mixes)), key=lambda i: (-mixes[i].cost_per_hour, i))
    orders = permutations(costliest) if len(mixes) <= ORDERS_TRIED else [tuple(costliest)]
    best: list[Mix] | None = None
    for order in orders:
        left = dict(capacity)
        out = list(mixes)
        for i in order:
            within = copy.copy(supplies[i])  # shares the rate cache; only the capacity differs
            within.capacity = dict(left)
            out[i] = cheapest_mix(needs[i], within)
            for t, n in out[i].replicas.items():
                left[t] -= n
        if best is None or _rank(out) < _rank(best):
            best = out
    assert best is not None
    return best


def _rank(mixes: Sequence[Mix]) -> tuple[int, float]:
    return sum(m.short for m in mixes), sum(m.cost_per_hour for m in mixes)


def shared_pools(replicas: Sequence[Mapping[str, int]], pools: Mapping[Pool, int]) -> list[dict[Pool, int]]:
    """Per-type counts of each workload spread over that type's pools (cluster order), within what is left."""
    left = dict(pools)
    out = []
    for by_type in replicas:
        placed = to_pools(by_type, left)
        for pool, n in placed.items():
            left[pool] -= n
        out.append(placed)
    return out


def fleet_schedules(fleet: FleetScenario, mixes: Sequence[Sequence[Mix]], window_s: float) -> list[Steps]:
    """Each workload's (time, placement) steps, the pools of each window shared among them."""
    count = len(mixes[0])
    per_window = [shared_pools([m[w].replicas for m in mixes], fleet.workloads[0].pools()) for w in range(count)]
    return [
        steps([per_window[w][i] for w in range(count)], s.cold_start_s, window_s)
        for i, s in enumerate(fleet.workloads)
    ]


@dataclass(frozen=True)
class FleetHindsight:
    results: tuple[PolicyResult, ...]
    """Each workload's part of the reference replay."""
    total: PolicyResult
    """The reference replay, the fleet's totals."""
    model: tuple[PolicyResult, ...]
    """Each workload's part of the first replay (sized by the capacity model alone)."""
    model_total: PolicyResult
    rounds: int
    reached: bool
    """Every workload reached the target in its own scored window."""
    target: float
    schedules: tuple[Steps, ...]
    """What each workload's plan asks for, and when."""
    windows: tuple[tuple[PolicyResult, ...], PolicyResult] | None = None
    """The window plan's replay (per workload, total), when a combination with fixed fleets became the reference."""


def _summaries(
    replay: FleetRun, fleet: FleetScenario, attainable: Sequence[Sequence[bool]], merged_ok: Sequence[bool]
) -> tuple[tuple[PolicyResult, ...], PolicyResult]:
    parts = tuple(summarize(r, s, ok) for r, s, ok in zip(replay.workloads, fleet.workloads, attainable, strict=True))
    return parts, summarize(replay.total, fleet.merged(), merged_ok)


def _replay(fleet: FleetScenario, schedules: Sequence[Steps], description: str) -> FleetRun:
    controllers = [ScheduleController(NAME, description, sched) for sched in schedules]
    return run_fleet(fleet, controllers)


def fleet_hindsight(
    fleet: FleetScenario,
    supplies: Sequence[Supply],
    attainable: Sequence[Sequence[bool]],
    merged_ok: Sequence[bool],
    *,
    target: float,
    window_s: float,
    max_rounds: int = MAX_ROUNDS,
) -> FleetHindsight:
    planned = [windows(s, window_s) for s in supplies]
    count = len(planned[0])
    factor = [[1.0] * count for _ in planned]
    first: tuple[tuple[PolicyResult, ...], PolicyResult] | None = None
    last: tuple[tuple[PolicyResult, ...], PolicyResult] | None = None
    previous: list[list[Mix]] | None = None
    schedules: list[Steps] = []
    short: dict[int, list[int]] = {}
    rounds = 0
    for _ in range(MAX_RAISES):
        by_window = [
            shared_mixes([{u: n * factor[i][w] for u, n in planned[i][w].needs.items()} for i in range(len(planned))],
                         supplies)
            for w in range(count)
        ]
        mixes = [[by_window[w][i] for w in range(count)] for i in range(len(planned))]
        if mixes != previous:  # a raise that changes no window's mix needs no replay
            previous = mixes
            description = (
                f"perfect foresight per workload: per {window_s:g} s window the cheapest replicas serving it at the "
                f"SLO (bursts from 1 s), the GPU pools shared, ready a cold start ahead; replayed and raised "
                f"until each workload reaches {100 * target:g} % in its own replay "
                f"({rounds} raise{'s' if rounds != 1 else ''})"
            )
            schedules = fleet_schedules(fleet, mixes, window_s)
            replay = _replay(fleet, schedules, description)
            last = _summaries(replay, fleet, attainable, merged_ok)
            first = first or last
            below = [i for i, r in enumerate(last[0]) if r.scored.attainment < target]
            if not below or rounds >= max_rounds:
                break
            short = {i: short_windows(replay.workloads[i], fleet.workloads[i], attainable[i], window_s, target, count)
                     for i in below}
            rounds += 1
        if all(mixes[i][w].short for i, ws in short.items() for w in ws):
            break  # every short window already has every GPU there is
        for i, ws in short.items():
            for w in ws:
                factor[i][w] *= RAISE
                if w > 0:
                    factor[i][w - 1] *= math.sqrt(RAISE)
    assert first is not None and last is not None
    return FleetHindsight(
        results=last[0], total=last[1], model=first[0], model_total=first[1], rounds=rounds,
        reached=all(r.scored.attainment >= target for r in last[0]), target=target, schedules=tuple(schedules),
    )


def cheapest_valid_fleet(
    plan: FleetHindsight,
    fleet: FleetScenario,
    fixed: Sequence[Sequence[tuple[PolicyResult, Steps]]],
    attainable: Sequence[Sequence[bool]],
    merged_ok: Sequence[bool],
) -> FleetHindsight:
    """The reference: the window plan, or the combination where each workload whose fixed fleet (its part
    of a static sweep's replay, with that fleet's schedule) reaches the target for less than its window
    plan takes that fleet, if that combination, replayed, still has every workload at the target and
    costs the fleet less."""
    chosen: list[Steps] = []
    names: list[str] = []
    for i, options in enumerate(fixed):
        valid = [(r, st) for r, st in options if r.scored.attainment >= plan.target]
        own = plan.results[i].scored.cost_usd if plan.results[i].scored.attainment >= plan.target else math.inf
        best = min(valid, key=lambda v: (v[0].scored.cost_usd, v[0].name), default=None)
        if best is not None and best[0].scored.cost_usd < own:
            chosen.append(best[1])
            names.append(f"{fleet.workloads[i].name}: fixed fleet {best[0].name}")
        else:
            chosen.append(plan.schedules[i])
    if not names:
        return plan
    description = (
        "perfect foresight per workload, the GPU pools shared: each workload's per-window plan, or the fixed fleet "
        f"that reaches {100 * plan.target:g} % for less ({'; '.join(names)}); replayed together"
    )
    parts, total = _summaries(_replay(fleet, chosen, description), fleet, attainable, merged_ok)
    if any(r.scored.attainment < plan.target for r in parts):
        return plan
    if plan.reached and total.scored.cost_usd >= plan.total.scored.cost_usd:
        return plan
    return FleetHindsight(
        results=parts, total=total, model=plan.model, model_total=plan.model_total, rounds=plan.rounds,
        reached=True, target=plan.target, schedules=tuple(chosen), windows=(plan.results, plan.total),
    )
