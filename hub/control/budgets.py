"""Budgets in the planner: which workloads each covers, the caps placement keeps, and how each fares.

Pure; no I/O. The planner turns each ``Budget`` into a ``BudgetCap`` over the workloads of the plan
it selects (by namespace or labels, as the workload object reports them), hands them to the joint
solve, and reads back, per budget, the GPUs and USD/h of the placement against its caps
(``BudgetUse``: the metrics and the page show it). A workload the solve placed short because of a
budget, or that lost replicas to a higher priority, gets that cause on its plan (``placement_cause``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from hub.placement import ALL_TYPES, BudgetCap, PlacementResult, WorkloadDemand
from hub.policy.budget import TOLERANCE, Budget, BudgetUse
from hub.policy.cause import Cause
from hub.state import Placement, WorkloadView


def covered(budget: Budget, views: Iterable[WorkloadView]) -> frozenset[str]:
    return frozenset(v.key for v in views if budget.workloads.selects(v.key, v.labels))


def caps(budgets: Sequence[Budget], views: Sequence[WorkloadView]) -> tuple[BudgetCap, ...]:
    """The budgets as placement's hard caps over the workloads of this plan."""
    return tuple(BudgetCap(b.id, covered(b, views), dict(b.caps.gpus), b.caps.cost_per_hour) for b in budgets)


def usage(budgets: Sequence[Budget], members: Mapping[str, frozenset[str]],
          demands: Mapping[str, WorkloadDemand], placements: Mapping[str, Placement]) -> list[BudgetUse]:
    out = []
    for b in budgets:
        keys = sorted(members.get(b.id, frozenset()))
        gpus: dict[str, int] = {}
        usd = 0.0
        need: dict[str, int] = {}
        need_usd = 0.0
        for key in keys:
            d = demands.get(key)
            if d is None:
                continue
            price = {o.key: o.price_per_replica_hour for o in d.offers}
            for (c, t), n in placements.get(key, {}).items():
                for k in (t, ALL_TYPES):
                    gpus[k] = gpus.get(k, 0) + n * d.gpus_per_replica
                usd += n * price.get((c, t), 0.0)
            for t in b.caps.gpus:
                fit = [d.gpus_per_replica if t in (ALL_TYPES, o.gpu_type) else 0 for o in d.offers]
                need[t] = need.get(t, 0) + d.min_replicas * min(fit, default=0)
            need_usd += d.min_replicas * min((o.price_per_replica_hour for o in d.offers), default=0.0)
        out.append(BudgetUse(b, tuple(keys), gpus, usd, need, need_usd))
    return out


def placement_cause(demand: WorkloadDemand, result: PlacementResult, uses: Sequence[BudgetUse],
                    top_priority: int) -> tuple[Cause | None, str | None]:
    """Why the placement holds fewer replicas than the workload needs, when a budget or a priority did it."""
    if result.unplaced <= 0:
        return None, None
    held = sum(n for k, n in demand.held.items() if k in {o.key for o in demand.offers})
    if demand.priority < top_priority and result.total < held:
        return Cause.PRIORITY, (f"reclaimed for higher priority: {held - result.total} of its {held} replicas "
                                f"given up (priority {demand.priority}, floor min_replicas {demand.min_replicas})")
    mine = [u for u in uses if demand.key in u.workloads and u.binding()]
    if mine:
        caps_hit = "; ".join(f"budget {u.budget.id} at its cap of {', '.join(u.binding())}" for u in mine)
        return Cause.BUDGET, f"{caps_hit}: {result.unplaced} replicas of demand not placed"
    return None, None


class Slack:
    """What each budget has left under its caps after the placement: make before break keeps a moving
    workload's old replicas only while they fit in it (the caps are hard for what is asked, too)."""

    def __init__(self, uses: Sequence[BudgetUse]) -> None:
        self.uses = list(uses)
        self.gpus = {(u.budget.id, t): n - u.gpus.get(t, 0) for u in uses for t, n in u.budget.caps.gpus.items()}
        self.usd = {u.budget.id: u.budget.caps.cost_per_hour - u.cost_per_hour
                    for u in uses if u.budget.caps.cost_per_hour is not None}

    def take(self, demand: WorkloadDemand, extra: Placement) -> str | None:
        """Reserve room for ``extra`` replicas of ``demand``; None if it fits, else the budget that has none."""
        price = {o.key: o.price_per_replica_hour for o in demand.offers}
        gpus: dict[tuple[str, str], int] = {}
        usd: dict[str, float] = {}
        for u in self.uses:
            if demand.key not in u.workloads:
                continue
            for (c, t), n in extra.items():
                for cap in u.budget.caps.gpus:
                    if cap in (t, ALL_TYPES):
                        gpus[(u.budget.id, cap)] = gpus.get((u.budget.id, cap), 0) + n * demand.gpus_per_replica
                if u.budget.id in self.usd:
                    usd[u.budget.id] = usd.get(u.budget.id, 0.0) + n * price.get((c, t), 0.0)
        short = [k[0] for k, n in gpus.items() if n > self.gpus[k]]
        short += [b for b, v in usd.items() if v > self.usd[b] + TOLERANCE]
        if short:
            return short[0]
        for k, n in gpus.items():
            self.gpus[k] -= n
        for b, v in usd.items():
            self.usd[b] -= v
        return None
