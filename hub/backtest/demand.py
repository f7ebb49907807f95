"""Capacity arithmetic shared by the static baselines and the hindsight plan: what a window needs, and
the cheapest replicas per GPU type that provide it.

Capability. A GPU type can serve a request at the SLO only if the prompt's prefill alone, on an
idle replica, takes at most ``CAPABLE_SHARE`` of the SLO (``solo_ttft_s``), leaving the rest for
the step in progress and some waiting. Long prompts on a slow type fail this: they need a faster
type, whatever the load.

Demand. A server of rate ``c`` requests/s that must start every request within ``D`` of arrival
can only do so if, for every interval ``[a, b]``, the arrivals in it are at most ``c (b - a + D)``
(the deadline condition of a fluid server). A window therefore needs ``max count / (length + D)``
over sliding intervals of the lengths in ``INTERVALS_S`` and the whole window, from 1 s (a burst of
hundreds of requests within seconds exists in the code trace) to 5 minutes. The queueing model
(``shared.simulation.capacity``) adds what Poisson-scale variation needs on top.

The condition is taken for every set ``U`` of GPU types: the requests that only types in ``U``
can serve need ``D(U)``, and the replicas of the types in ``U`` must supply it (Hall's condition
for serving each request on a type capable of it). With one class of request this is simply
"enough replicas".

Supply. ``n`` replicas of a type sustain ``n x sustainable_rate(..., replicas=n)`` requests/s of
the token mix of the requests ``U`` covers, over the whole trace (``capacity.py``). The cheapest
counts per type meeting every ``U`` are found exactly by enumeration (a few GPU types).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from hub.backtest.scenario import Pool, Scenario
from shared.simulation.capacity import TokenMix, solo_ttft_s, sustainable_rate

CAPABLE_SHARE = 0.75
"""A type is capable of a request if its solo prefill takes at most this share of the SLO."""

INTERVALS_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)

TypeSet = frozenset[str]


def required_rate(arrivals_s: Sequence[float], *, deadline_s: float, span_s: float) -> float:
    """Requests/s a fluid server needs to meet ``deadline_s`` for these arrivals (sorted) over ``span_s``."""
    n = len(arrivals_s)
    if n == 0:
        return 0.0
    best = n / (span_s + deadline_s)
    for length in INTERVALS_S:
        if length >= span_s:
            break
        most = 0
        j = 0
        for i in range(n):
            end = arrivals_s[i] + length
            while j < n and arrivals_s[j] < end:
                j += 1
            most = max(most, j - i)
        best = max(best, most / (length + deadline_s))
    return best


class Supply:
    """What the scenario's GPU types can serve: per-request capability and pooled rates per class."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        pools = scenario.pools()
        self.capacity: dict[str, int] = {}
        for (_, gpu_type), n in pools.items():
            self.capacity[gpu_type] = self.capacity.get(gpu_type, 0) + n
        self.types = tuple(sorted(self.capacity))
        self.price = {t: scenario.replica_price(t) for t in self.types}
        self._profiles = {t: scenario.profile(t) for t in self.types}
        trace = scenario.trace
        limit = CAPABLE_SHARE * scenario.slo_ttft_s
        solo: dict[str, dict[int, float]] = {t: {} for t in self.types}
        capable: list[TypeSet] = []
        for tokens in trace.input_tokens:
            ok = []
            for t in self.types:
                cache = solo[t]
                if tokens not in cache:
                    cache[tokens] = solo_ttft_s(self._profiles[t], tokens)
                if cache[tokens] <= limit:
                    ok.append(t)
            capable.append(frozenset(ok))
        self.capable: tuple[TypeSet, ...] = tuple(capable)
        """Per request of the trace, the GPU types that can serve it at the SLO."""
        self.unservable = sum(1 for c in capable if not c)
        """Requests no type can serve at the SLO, even alone."""
        # Every set of types U, with the requests only U can serve: their token mix over the trace.
        self.sets: list[TypeSet] = [
            frozenset(u) for k in range(1, len(self.types) + 1) for u in combinations(self.types, k)
        ]
        self.members: dict[TypeSet, list[int]] = {
            u: [i for i, c in enumerate(capable) if c and c <= u] for u in self.sets
        }
        self.mix: dict[TypeSet, TokenMix] = {
            u: TokenMix.of([trace.input_tokens[i] for i in m], [trace.output_tokens[i] for i in m])
            for u, m in self.members.items() if m
        }
        self._rates: dict[tuple[TypeSet, str, int], float] = {}

    def rate(self, types: TypeSet, gpu_type: str, replicas: int) -> float:
        """Requests/s that ``replicas`` replicas of ``gpu_type`` sustain for the requests ``types`` covers."""
        if replicas <= 0 or gpu_type not in types or types not in self.mix:
            return 0.0
        key = (types, gpu_type, replicas)
        if key not in self._rates:
            per = sustainable_rate(
                self._profiles[gpu_type], self.mix[types], slo_ttft_s=self.scenario.slo_ttft_s, replicas=replicas
            )
            self._rates[key] = replicas * per
        return self._rates[key]


@dataclass(frozen=True, slots=True)
class Window:
    start_s: float
    end_s: float
    requests: int
    needs: Mapping[TypeSet, float]
    """Requests/s the requests only these types can serve need (only sets that need something)."""


def windows(supply: Supply, window_s: float) -> list[Window]:
    """The trace cut into ``window_s`` windows, with each window's needs."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    scenario = supply.scenario
    trace = scenario.trace
    count = max(1, math.ceil(trace.duration_s / window_s))
    out = []
    for w in range(count):
        a, b = w * window_s, (w + 1) * window_s
        lo, hi = bisect_left(trace.arrival_s, a), bisect_left(trace.arrival_s, b)
        if w == count - 1:
            hi = len(trace)  # the last arrival sits exactly at duration_s
        needs: dict[TypeSet, float] = {}
        for u in supply.sets:
            arrivals = [trace.arrival_s[i] for i in range(lo, hi) if supply.capable[i] and supply.capable[i] <= u]
            need = required_rate(arrivals, deadline_s=scenario.slo_ttft_s, span_s=window_s)
            if need > 0:
                needs[u] = need
        out.append(Window(a, b, hi - lo, needs))
    return out


@dataclass(frozen=True, slots=True)
class Mix:
    replicas: dict[str, int]
    """Per GPU type."""
    cost_per_hour: float
    short: bool = False
    """Even every replica of every type does not meet the need."""


def cheapest_mix(needs: Mapping[TypeSet, float], supply: Supply) -> Mix:
    """The cheapest replicas per GPU type meeting every need (exact, by enumeration)."""
    if not needs:
        return Mix({}, 0.0)
    types = list(supply.types)
    cap, price = supply.capacity, supply.price

    def meets(counts: Mapping[str, int]) -> bool:
        return all(sum(supply.rate(u, t, counts.get(t, 0)) for t in u) >= need for u, need in needs.items())

    if not meets(cap):
        return Mix(dict(cap), sum(cap[t] * price[t] for t in types), short=True)
    # Enumerate every type but the one with the most capacity; that one is solved for.
    last = max(types, key=lambda t: (cap[t], t))
    others = [t for t in types if t != last]
    best_cost = math.inf
    best: dict[str, int] = {}
    counts: dict[str, int] = {}

    def least_of_last() -> int | None:
        lo, hi = 0, cap[last]
        counts[last] = hi
        if not meets(counts):
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            counts[last] = mid
            if meets(counts):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def search(i: int, cost: float) -> None:
        nonlocal best_cost, best
        if cost >= best_cost:
            return
        if i == len(others):
            n = least_of_last()
            if n is not None and cost + n * price[last] < best_cost:
                best_cost = cost + n * price[last]
                best = {t: c for t, c in counts.items() if t != last and c} | ({last: n} if n else {})
            counts.pop(last, None)
            return
        t = others[i]
        for n in range(cap[t] + 1):
            if cost + n * price[t] >= best_cost:
                break
            counts[t] = n
            search(i + 1, cost + n * price[t])
        counts.pop(t, None)

    search(0, 0.0)
    return Mix(best, best_cost)


def to_pools(replicas_by_type: Mapping[str, int], pools: Mapping[Pool, int]) -> dict[Pool, int]:
    """Spread per-type counts over that type's pools (cluster order), within each pool's capacity."""
    out: dict[Pool, int] = {}
    for gpu_type, n in replicas_by_type.items():
        for pool in sorted(p for p in pools if p[1] == gpu_type):
            take = min(n, pools[pool])
            if take:
                out[pool] = take
                n -= take
    return out
