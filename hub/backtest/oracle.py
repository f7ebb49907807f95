"""The cost oracle: perfect foresight of the load, a cold start of lead; a lower bound, not a policy.

For every window of ``window_s`` it takes the cheapest replicas per GPU type (within capacity) that
serve the window's requests at the SLO (``demand``), and has them ready when the window starts: a
replica the window needs is asked for a cold start before it, and one no window needs any more is
removed when its window ends. A replica that a later window needs again within a cold start is
therefore kept through the gap, which costs no more than buying it again.

It is a bound, not a policy: it knows the future, sizes each window for exactly its own load with
the steady-state capacity model, and pays no reaction delay. What it costs is the least any
controller can spend under this model while serving the SLO, up to the model's approximations; the
replay shows what that capacity actually achieves in the event-driven simulator.
"""

from __future__ import annotations

import math

from hub.backtest.demand import Mix, Supply, Window, cheapest_mix, to_pools, windows
from hub.backtest.scenario import Pool, Scenario
from hub.backtest.schedule import ScheduleController

DEFAULT_WINDOW_S = 60.0


def window_mixes(supply: Supply, window_s: float = DEFAULT_WINDOW_S) -> list[tuple[Window, Mix]]:
    return [(w, cheapest_mix(w.needs, supply)) for w in windows(supply, window_s)]


def oracle_steps(supply: Supply, window_s: float = DEFAULT_WINDOW_S) -> list[tuple[float, dict[Pool, int]]]:
    """(time, placement) steps: each window's mix, asked for a cold start ahead, held to its end."""
    scenario = supply.scenario
    pools = scenario.pools()
    planned = window_mixes(supply, window_s)
    need = [to_pools(m.replicas, pools) for _, m in planned]
    lead = scenario.cold_start_s
    times = sorted({0.0} | {max(0.0, w.start_s - lead) for w, _ in planned} | {w.start_s for w, _ in planned})
    steps: list[tuple[float, dict[Pool, int]]] = []
    for t in times:
        current = min(int(t // window_s), len(need) - 1)
        # The current window, and every later one whose cold-start lead has begun.
        last = min(len(need) - 1, math.floor((t + lead) / window_s))
        relevant = [need[current]] + [need[w] for w in range(current + 1, last + 1) if w * window_s - lead <= t]
        target: dict[Pool, int] = {}
        for placement in relevant:
            for pool, n in placement.items():
                target[pool] = max(target.get(pool, 0), n)
        if not steps or steps[-1][1] != target:
            steps.append((t, target))
    return steps


def oracle(scenario: Scenario, supply: Supply | None = None, window_s: float = DEFAULT_WINDOW_S) -> ScheduleController:
    supply = supply or Supply(scenario)
    return ScheduleController(
        "oracle",
        f"perfect foresight: per {window_s:g} s window the cheapest replicas serving it at the SLO, "
        "ready a cold start ahead (cost lower bound)",
        oracle_steps(supply, window_s),
    )
