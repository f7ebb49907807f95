"""Budgets in the placement problem: each cap as one linear limit over its workloads' replicas.

A ``BudgetCap`` (``offers.py``) becomes one ``Limit`` per GPU cap and one for its USD/h cap:
``sum over covered workloads w and offers o of coefficient(w, o) * n[w, o] <= cap``, where the
coefficient is the replica's GPUs (of the capped type, or of any type for ``"*"``) or its price per
hour. The limits are hard, as the pools are: the MILP carries them as rows (``milp.py``), the greedy
fill as rooms (``greedy.py``), and a placement that breaks one is refused (``violations``).

Before the solve each limit also tightens the bounds of the places it covers (no single place may
exceed the cap alone), and held floors (failover, replicas starting) that a cap cannot hold are
dropped with a note, as the per-cluster maximum does: a hard floor and a hard cap that disagree
would leave no placement at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hub.placement.offers import ALL_TYPES, BudgetCap, Key

EPSILON = 1e-6
"""USD/h: a sum within this of its cap keeps it (prices are floats; the solver's tolerance is finer)."""


@dataclass(frozen=True, slots=True)
class Limit:
    budget: str
    what: str
    """``"H100 GPUs"``, ``"GPUs"`` or ``"USD/h"``: what the cap counts, for notes."""
    cap: float
    members: frozenset[str]
    gpu_type: str | None
    """The type counted; None: every type (a ``"*"`` cap, or USD)."""
    usd: bool = False

    def coefficient(self, key: str, gpus_per_replica: int, gpu_type: str, price: float) -> float:
        """What one replica of workload ``key`` on ``gpu_type`` adds to this limit's sum."""
        if key not in self.members:
            return 0.0
        if self.usd:
            return price
        return float(gpus_per_replica) if self.gpu_type is None or self.gpu_type == gpu_type else 0.0

    def room(self, coefficient: float, left: float) -> int:
        """Replicas of ``coefficient`` each that fit in ``left``."""
        if coefficient <= 0:
            return 1 << 30
        return max(0, math.floor(left / coefficient + EPSILON))


def limits(budgets: Sequence[BudgetCap], keys: Iterable[str]) -> list[Limit]:
    """Every cap of ``budgets`` as a limit over the problem's workloads (``keys``); none that covers none."""
    present = set(keys)
    out = []
    for b in budgets:
        members = frozenset(b.members & present)
        if not members:
            continue
        for cap, n in sorted(b.gpus.items()):
            what = "GPUs" if cap == ALL_TYPES else f"{cap} GPUs"
            out.append(Limit(b.id, what, float(n), members, None if cap == ALL_TYPES else cap))
        if b.cost_per_hour is not None:
            out.append(Limit(b.id, "USD/h", b.cost_per_hour, members, None, usd=True))
    return out


def used(limit: Limit, gpus_per_replica: Mapping[str, int], placements: Mapping[str, Mapping[Key, int]],
         prices: Mapping[str, Mapping[Key, float]]) -> float:
    """The limit's sum over ``placements`` (workload -> place -> replicas)."""
    total = 0.0
    for key in limit.members:
        for (c, t), n in placements.get(key, {}).items():
            if n:
                price = prices.get(key, {}).get((c, t), 0.0)
                total += n * limit.coefficient(key, gpus_per_replica.get(key, 1), t, price)
    return total


def violations(all_limits: Sequence[Limit], gpus_per_replica: Mapping[str, int],
               placements: Mapping[str, Mapping[Key, int]], prices: Mapping[str, Mapping[Key, float]]) -> list[str]:
    out = []
    for lim in all_limits:
        total = used(lim, gpus_per_replica, placements, prices)
        if total > lim.cap + EPSILON:
            out.append(f"budget {lim.budget}: {total:g} {lim.what} placed, cap {lim.cap:g}")
    return out
