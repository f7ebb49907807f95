"""Static peak provisioning: enough replicas for the trace's busiest window, all run long.

Sized with the oracle's arithmetic (``demand``): for every class of request, the need of the
trace's busiest window for it, met by the cheapest replicas of capable GPU types. The fleet is
ready at time 0 and never changes.
"""

from __future__ import annotations

from hub.backtest.demand import Supply, TypeSet, cheapest_mix, to_pools, windows
from hub.backtest.oracle import DEFAULT_WINDOW_S
from hub.backtest.scenario import Pool, Scenario
from hub.backtest.schedule import ScheduleController


def static_fleet(supply: Supply, window_s: float = DEFAULT_WINDOW_S) -> dict[Pool, int]:
    peak: dict[TypeSet, float] = {}
    for w in windows(supply, window_s):
        for u, need in w.needs.items():
            peak[u] = max(peak.get(u, 0.0), need)
    mix = cheapest_mix(peak, supply)
    fleet = to_pools(mix.replicas, supply.scenario.pools())
    if not fleet and supply.types:
        cheapest = min(supply.types, key=lambda t: (supply.price[t], t))
        fleet = to_pools({cheapest: 1}, supply.scenario.pools())  # no requests: one replica, always on
    return fleet


def static_peak(
    scenario: Scenario, supply: Supply | None = None, window_s: float = DEFAULT_WINDOW_S
) -> ScheduleController:
    fleet = static_fleet(supply or Supply(scenario), window_s)
    where = ", ".join(f"{n}x {t} in {c}" for (c, t), n in sorted(fleet.items()))
    return ScheduleController("static-peak", f"fixed for the busiest window: {where}", [(0.0, fleet)])
