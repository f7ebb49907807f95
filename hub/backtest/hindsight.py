"""The hindsight plan: the reference cost, a schedule with perfect foresight that is checked by replay.

For every window of ``window_s`` it takes the cheapest replicas per GPU type (within capacity) that
serve the window's requests at the SLO (``demand``: bursts from 1 s to 5 min, the queueing model
on top), and has them ready when the window starts: asked for a cold start ahead, removed when no
window needs them any more (a replica a later window needs again within a cold start is kept).

That first plan rests on the steady-state capacity model, which can be optimistic at window edges
and in bursts. So the plan is replayed in the same simulator the policies run in, from the same
initial fleet, and wherever a window of the scored span falls short of the attainment target its
demand (and that of the window before, whose backlog it inherits) is raised and the plan replayed
again, until the scored window reaches the target or ``max_rounds`` is spent (then it says so).
The reference cost is that final, replayed plan's, unless a fixed fleet (from the static sweep,
replayed from the same start) reaches the target for less (``cheapest_valid``): perfect foresight
also knows when one fleet held all along is enough. The model-only first plan is kept, labelled as
the capacity model's estimate, never as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hub.backtest.demand import Mix, Supply, cheapest_mix, to_pools, windows
from hub.backtest.harness import Run, run
from hub.backtest.results import PolicyResult, summarize
from hub.backtest.scenario import Pool, Scenario
from hub.backtest.schedule import ScheduleController

DEFAULT_WINDOW_S = 60.0
DEFAULT_TARGET = 0.99
MAX_ROUNDS = 8
RAISE = 1.5
"""Factor on a short window's demand per round (and its square root on the window before)."""

MAX_RAISES = 40
"""Raises in all, counting those that changed no mix (so needed no replay)."""

NAME = "hindsight"


def schedule(
    scenario: Scenario, mixes: Sequence[Mix], window_s: float
) -> list[tuple[float, dict[Pool, int]]]:
    """(time, placement) steps: each window's mix, asked for a cold start ahead, held to its end."""
    pools = scenario.pools()
    return steps([to_pools(m.replicas, pools) for m in mixes], scenario.cold_start_s, window_s)


def steps(need: Sequence[dict[Pool, int]], lead: float, window_s: float) -> list[tuple[float, dict[Pool, int]]]:
    """(time, placement) steps for one placement per window, each asked for ``lead`` ahead of its window."""
    starts = [w * window_s for w in range(len(need))]
    times = sorted({0.0} | {max(0.0, s - lead) for s in starts} | set(starts))
    out: list[tuple[float, dict[Pool, int]]] = []
    for t in times:
        current = min(int(t // window_s), len(need) - 1)
        last = min(len(need) - 1, math.floor((t + lead) / window_s))
        relevant = [need[current]] + [need[w] for w in range(current + 1, last + 1) if w * window_s - lead <= t]
        target: dict[Pool, int] = {}
        for placement in relevant:
            for pool, n in placement.items():
                target[pool] = max(target.get(pool, 0), n)
        if not out or out[-1][1] != target:
            out.append((t, target))
    return out


def short_windows(
    replay: Run, scenario: Scenario, attainable: Sequence[bool], window_s: float, target: float, count: int
) -> list[int]:
    """Windows of the scored span whose attainable requests fell short of ``target`` in ``replay``."""
    trace = scenario.trace
    far = {(trace.input_tokens[i], trace.output_tokens[i]) for i, a in enumerate(attainable) if not a}
    asked = [0] * count
    for t, ok in zip(trace.arrival_s, attainable, strict=True):
        if ok and t >= scenario.scored_from_s:
            asked[min(int(t // window_s), count - 1)] += 1
    served = [0] * count
    limit = math.nextafter(scenario.slo_ttft_s, math.inf)
    for r in replay.completed:
        if r.arrival_s >= scenario.scored_from_s and r.ttft_s < limit and (r.input_tokens, r.output_tokens) not in far:
            served[min(int(r.arrival_s // window_s), count - 1)] += 1
    return [w for w in range(count) if asked[w] and served[w] < target * asked[w]]


@dataclass(frozen=True)
class Hindsight:
    result: PolicyResult
    """The final plan's replay: the reference."""
    model: PolicyResult
    """The first plan's replay, sized by the capacity model alone."""
    rounds: int
    """Replays after the first."""
    reached: bool
    target: float
    windows: PolicyResult | None = None
    """The window plan's replay, when a cheaper valid plan (a fixed fleet) became the reference."""


def cheapest_valid(plan: Hindsight, fixed: Sequence[PolicyResult]) -> Hindsight:
    """The reference: the window plan, or a fixed fleet that reaches the target for less in its replay.

    Perfect foresight includes knowing that one fleet held all along is enough; when a fixed fleet
    (the static sweep's runs, replayed from the same start) reaches the target at a lower scored
    cost than the window plan, that fleet is the cheapest valid plan found, and the reference.
    """
    valid = [r for r in fixed if r.scored.attainment >= plan.target]
    if not valid:
        return plan
    best = min(valid, key=lambda r: (r.scored.cost_usd, r.name))
    current = plan.result.scored.cost_usd if plan.reached else math.inf
    if best.scored.cost_usd >= current:
        return plan
    description = (
        f"perfect foresight: the fixed fleet {best.name} ({best.knob or best.description}) reaches "
        f"{100 * plan.target:g} % in its own replay for less than the per-window plan "
        f"(${plan.result.scored.cost_usd:,.2f} scored, {100 * plan.result.scored.attainment:.2f} %)"
    )
    chosen = replace(best, name=NAME, description=description, family="", knob=f"fixed fleet {best.name}")
    return replace(plan, result=chosen, reached=True, windows=plan.result)


def hindsight(
    scenario: Scenario,
    supply: Supply,
    attainable: Sequence[bool],
    *,
    target: float = DEFAULT_TARGET,
    window_s: float = DEFAULT_WINDOW_S,
    max_rounds: int = MAX_ROUNDS,
) -> Hindsight:
    planned = windows(supply, window_s)
    factor = [1.0] * len(planned)
    model: PolicyResult | None = None
    result: PolicyResult | None = None
    previous: list[Mix] | None = None
    short: list[int] = []
    rounds = 0
    for _ in range(MAX_RAISES):
        mixes = [cheapest_mix({u: n * f for u, n in w.needs.items()}, supply)
                 for w, f in zip(planned, factor, strict=True)]
        if mixes != previous:  # a raise that changes no window's mix needs no replay
            previous = mixes
            description = (
                f"perfect foresight: per {window_s:g} s window the cheapest replicas serving it at the SLO "
                f"(bursts from 1 s), ready a cold start ahead; replayed and raised until {100 * target:g} % "
                f"in its own replay ({rounds} raise{'s' if rounds != 1 else ''})"
            )
            replay = run(scenario, ScheduleController(NAME, description, schedule(scenario, mixes, window_s)))
            result = summarize(replay, scenario, attainable)
            model = model or result
            if result.scored.attainment >= target or rounds >= max_rounds:
                break
            short = short_windows(replay, scenario, attainable, window_s, target, len(planned))
            rounds += 1
        if all(mixes[w].short for w in short):
            break  # every short window already has every GPU there is
        for w in short:
            factor[w] *= RAISE
            if w > 0:
                factor[w - 1] *= math.sqrt(RAISE)
    assert result is not None and model is not None
    return Hindsight(result=result, model=model, rounds=rounds, reached=result.scored.attainment >= target,
                     target=target)
