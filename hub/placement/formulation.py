"""The placement problem as the solver sees it: bounds per place, and one integer objective.

The objective ranks placements lexicographically, by four tiers, each weighted so that the worst case
of every lower tier cannot outweigh one unit of the tier above it:

1. **unmet demand**, in thousandths of the workload's reference replica (``LOAD_RESOLUTION``), so that
   any replica that serves some of the demand left is worth placing, even one of a slow type that
   cannot serve all of it; the same weight for every workload, so under scarcity the solver serves
   as much demand as it can in total, and only then asks which workload the GPUs save most on;
2. **shortfall** below a soft lower bound: spread, per-cluster minimum, total minimum (per replica);
3. **price**, quantised to ``PRICE_RESOLUTION`` USD per replica-hour;
4. **churn**: one per replica added or removed against the current placement.

Integers keep this exact. Price resolution ``PRICE_RESOLUTION`` means any two placements whose costs
differ differ by at least one price quantum, and one quantum is weighted above the most churn any
placement of the problem can have, so churn only breaks ties of equal cost: it never keeps a replica
on a dearer place, and among placements of equal cost it keeps what runs (no reshuffles, Karmada's
"steady" division: add the difference, take from where it costs most).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.placement import budgets
from hub.placement.assignment import Assignment, assign
from hub.placement.budgets import Limit
from hub.placement.offers import Key, Offer, PlacementProblem, WorkloadDemand

PRICE_RESOLUTION = 0.001
"""USD per replica-hour. Prices closer than this are equal to the solver (then churn decides)."""

LOAD_RESOLUTION = 1e-3
"""Unmet demand is counted in this share of a reference replica (less is not worth a replica)."""

LOAD_EPSILON = 1e-9
"""Load is float; a shortfall below this share of one unit of unmet demand is rounding, not demand."""


def quanta(price_per_replica_hour: float) -> int:
    return round(price_per_replica_hour / PRICE_RESOLUTION)


@dataclass(frozen=True, slots=True)
class Weights:
    price_unit: int
    """Objective per price quantum per replica: more than the churn any placement can have."""
    shortfall: int
    """Per replica below a soft lower bound: more than the price and churn of adding that replica."""
    unmet: int
    """Per unit of unmet demand (``WorkloadForm.unit``): more than a replica and its shortfall, since one
    replica of any offer serves at least a unit."""
    churn: int = 1
    """Per replica added or removed."""


@dataclass(slots=True)
class Option:
    """One offer of one workload, with its bounds in this problem."""

    offer: Offer
    lb: int
    ub: int
    current: int
    cost: int = 0
    """Objective per replica: quantised price times ``Weights.price_unit``."""


@dataclass(slots=True)
class WorkloadForm:
    demand: WorkloadDemand
    options: list[Option]
    cluster_lower: dict[str, int]
    """Soft lower bound per cluster that has an offer (spread and per-cluster minimum)."""
    cluster_upper: dict[str, int]
    max_total: int
    """Hard: the policy's maximum, tightened to the most replicas any optimal placement needs."""
    gone: dict[Key, int]
    """Current replicas in places not offered (stale, not allowed, unpriced): they are not kept."""
    notes: list[str] = field(default_factory=list)
    assignments: dict[tuple[tuple[Key, int], ...], Assignment] = field(default_factory=dict, repr=False)
    """Class splits already computed, by placement (``served``)."""
    unit: float = 0.0
    """Load of one unit of unmet demand: a thousandth of a reference replica, or less if some offer
    serves less (so that every replica placed serves at least one unit)."""

    def __post_init__(self) -> None:
        slowest = min((o.offer.throughput_per_replica for o in self.options), default=math.inf)
        by_class = [v for c in self.demand.classes for v in c.throughput.values()]
        self.unit = min(LOAD_RESOLUTION * self.demand.reference_throughput, slowest, *by_class)

    @property
    def max_unmet(self) -> int:
        return self.unmet_units(0.0)

    def unmet_units(self, load: float) -> int:
        """Units of demand that ``load`` leaves unserved, rounded up."""
        return max(0, math.ceil((self.demand.demand - load) / self.unit - LOAD_EPSILON))

    def served(self, placement: Mapping[Key, int]) -> Assignment:
        """How ``placement``'s replicas split between the request classes (``assignment.py``). Kept per
        placement: the score, the start vector and the greedy's checks ask about the same ones."""
        key = tuple(sorted((k, n) for k, n in placement.items() if n))
        hit = self.assignments.get(key)
        if hit is None:
            hit = self.assignments[key] = assign(self.demand.classes, self.demand.demand, placement)
        return hit

    def class_units(self, unserved: tuple[float, ...]) -> int:
        return sum(max(0, math.ceil(u / self.unit - LOAD_EPSILON)) for u in unserved)

    def unplaced(self, units: int) -> int:
        """Unmet units in reference replicas, rounded up."""
        return math.ceil(units * self.unit / self.demand.reference_throughput - LOAD_EPSILON)


@dataclass(slots=True)
class Formulation:
    problem: PlacementProblem
    workloads: list[WorkloadForm]
    pools: dict[Key, int]
    """GPUs each pool can hand out (free plus held by the problem's workloads)."""
    weights: Weights
    limits: list[Limit] = field(default_factory=list)
    """The budgets' caps (``hub.placement.budgets``): hard, as the pools are."""

    def coupled(self) -> set[str]:
        """Workloads under a limit their bounds could break: their placements depend on each other."""
        out: set[str] = set()
        for lim in self.limits:
            reach = sum(o.ub * _coefficient(lim, wf, o) for wf in self.workloads for o in wf.options)
            if reach > lim.cap + budgets.EPSILON:
                out |= lim.members
        return out

    def limit_violations(self, placements: Mapping[str, Mapping[Key, int]]) -> list[str]:
        gpr = {wf.demand.key: wf.demand.gpus_per_replica for wf in self.workloads}
        prices = {wf.demand.key: {o.offer.key: o.offer.price_per_replica_hour for o in wf.options}
                  for wf in self.workloads}
        return budgets.violations(self.limits, gpr, placements, prices)


def _coefficient(lim: Limit, wf: WorkloadForm, o: Option) -> float:
    return lim.coefficient(wf.demand.key, wf.demand.gpus_per_replica, o.offer.gpu_type,
                           o.offer.price_per_replica_hour)


def formulate(problem: PlacementProblem) -> Formulation:
    problem.validate()
    pools = problem.pool_gpus()
    forms = [_workload_form(w, pools) for w in problem.workloads]
    limits = budgets.limits(problem.budgets, (f.demand.key for f in forms))
    for lim in limits:
        _apply_limit(lim, forms)
    churn_bound = sum(sum(o.current for o in f.options) + f.max_total for f in forms)
    price_unit = churn_bound + 1
    max_quanta = max((quanta(o.offer.price_per_replica_hour) for f in forms for o in f.options), default=0)
    shortfall = price_unit * (max_quanta + 1)
    weights = Weights(price_unit=price_unit, shortfall=shortfall, unmet=2 * shortfall)
    for f in forms:
        for o in f.options:
            o.cost = quanta(o.offer.price_per_replica_hour) * price_unit
    return Formulation(problem, forms, pools, weights, limits)


def _apply_limit(lim: Limit, forms: list[WorkloadForm]) -> None:
    """Tighten the covered places' bounds to the cap; drop held floors it cannot hold; say when it cannot
    even hold the covered workloads' minimums."""
    covered = [f for f in forms if f.demand.key in lim.members]
    for f in covered:
        for o in f.options:
            o.ub = min(o.ub, lim.room(_coefficient(lim, f, o), lim.cap))
            o.lb = min(o.lb, o.ub)
    held = sum(o.lb * _coefficient(lim, f, o) for f in covered for o in f.options)
    if held > lim.cap + budgets.EPSILON:
        for f in covered:
            if any(o.lb for o in f.options):
                f.notes.append(f"budget {lim.budget}: replicas held need {held:g} {lim.what}, above its cap of "
                               f"{lim.cap:g}: not held")
            for o in f.options:
                o.lb = 0
    need = sum(f.demand.min_replicas * min((_coefficient(lim, f, o) for o in f.options), default=0.0)
               for f in covered)
    if need > lim.cap + budgets.EPSILON:
        for f in covered:
            if f.demand.min_replicas:
                f.notes.append(f"budget {lim.budget}: its workloads' min_replicas need at least {need:g} "
                               f"{lim.what}, above its cap of {lim.cap:g}: not every minimum can be met")


def _workload_form(w: WorkloadDemand, pools: Mapping[Key, int]) -> WorkloadForm:
    notes: list[str] = []
    offered = {o.key for o in w.offers}
    gone = {k: n for k, n in w.current.items() if n > 0 and k not in offered}
    clusters = sorted({o.cluster_id for o in w.offers})
    lower = {c: max(w.spread, w.cluster_min.get(c, 0)) for c in clusters}
    lower = {c: n for c, n in lower.items() if n > 0}
    for c, n in sorted(w.cluster_min.items()):
        if n > 0 and c not in clusters:
            notes.append(f"minimum of {n} on {c} cannot be met: no offer there (stale, not allowed or full)")
    upper = {c: max(w.cluster_max[c], 0) for c in clusters if c in w.cluster_max}
    floors = {o.key: min(max(w.floor.get(o.key, 0), 0), max(w.held.get(o.key, 0), 0)) for o in w.offers}
    if w.offers:
        fastest = max(o.throughput_per_replica for o in w.offers)
        slowest = min(o.throughput_per_replica for o in w.offers)
        # Some optimal placement has at most this many replicas: past what runs (or is held), every
        # replica of an optimal placement is needed by a lower bound or by demand, and demand never
        # needs more than (demand + fastest) / slowest of them, or one could go. Bounding the total
        # keeps the churn bound, and with it every weight, small enough for exact integer arithmetic.
        useful = (sum(lower.values()) + w.min_replicas + math.ceil((w.demand + fastest) / slowest)
                  + sum(max(w.current.get(o.key, 0), floors[o.key]) for o in w.offers))
        # With classes a replica serves one class's share at that class's (smaller) throughput.
        useful += sum(math.ceil(w.demand * c.share / min(c.throughput.values())) + 1
                      for c in w.classes if c.throughput)
    else:
        useful = 0
    max_total = useful if w.max_replicas is None else min(w.max_replicas, useful)
    options = []
    for o in w.offers:
        ub = max_total
        if o.key in pools:
            ub = min(ub, pools[o.key] // w.gpus_per_replica)
        if o.capacity_replicas is not None:
            ub = min(ub, o.capacity_replicas)
        if o.cluster_id in upper:
            ub = min(ub, upper[o.cluster_id])
        options.append(Option(o, min(floors[o.key], ub), ub, max(w.current.get(o.key, 0), 0)))
    for c, cap in upper.items():
        held = [opt for opt in options if opt.offer.cluster_id == c and opt.lb]
        if sum(opt.lb for opt in held) > cap:
            notes.append(f"replicas held on {c} exceed its maximum of {cap}: not held")
            for opt in held:
                opt.lb = 0
    if sum(opt.lb for opt in options) > max_total:
        notes.append(f"replicas held exceed the maximum of {max_total}: not held")
        for opt in options:
            opt.lb = 0
    return WorkloadForm(w, options, lower, upper, max_total, gone, notes)


@dataclass(frozen=True, slots=True)
class Score:
    """How one workload's placement fares against its part of the problem."""

    unmet: int
    """Reference replicas of demand not served, rounded up."""
    unmet_units: int
    """The same in units of ``WorkloadForm.unit``, as the objective counts it."""
    shortfall: int
    churn: int
    cost_per_hour: float
    objective: int
    violations: tuple[str, ...]
    """Hard constraints broken (empty for any placement the solver or the greedy returns)."""


def score(form: Formulation, wf: WorkloadForm, placement: Mapping[Key, int]) -> Score:
    w = wf.demand
    weights = form.weights
    violations = []
    by_key = {o.offer.key: o for o in wf.options}
    for k, n in placement.items():
        if n and k not in by_key:
            violations.append(f"{k} is not offered")
    load = 0.0
    cost = 0.0
    objective = 0
    per_cluster: dict[str, int] = {}
    for o in wf.options:
        n = placement.get(o.offer.key, 0)
        if not o.lb <= n <= o.ub:
            violations.append(f"{o.offer.key}: {n} outside [{o.lb}, {o.ub}]")
        load += n * o.offer.throughput_per_replica
        cost += n * o.offer.price_per_replica_hour
        objective += n * o.cost
        per_cluster[o.offer.cluster_id] = per_cluster.get(o.offer.cluster_id, 0) + n
    for c, cap in wf.cluster_upper.items():
        if per_cluster.get(c, 0) > cap:
            violations.append(f"{c}: {per_cluster[c]} above its maximum {cap}")
    total = sum(per_cluster.values())
    if total > wf.max_total:
        violations.append(f"total {total} above {wf.max_total}")
    units = wf.class_units(wf.served(placement).unserved) if w.classes else wf.unmet_units(load)
    shortfall = sum(max(0, n - per_cluster.get(c, 0)) for c, n in wf.cluster_lower.items())
    shortfall += max(0, w.min_replicas - total)
    churn = sum(abs(placement.get(o.offer.key, 0) - o.current) for o in wf.options)
    objective += units * weights.unmet + shortfall * weights.shortfall + churn * weights.churn
    return Score(wf.unplaced(units), units, shortfall, churn, cost, objective, tuple(violations))


def pool_violations(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> list[str]:
    used: dict[Key, int] = {}
    for wf in form.workloads:
        for k, n in placements.get(wf.demand.key, {}).items():
            if k in form.pools:
                used[k] = used.get(k, 0) + n * wf.demand.gpus_per_replica
    return [f"{k}: {n} GPUs placed, {form.pools[k]} available" for k, n in sorted(used.items()) if n > form.pools[k]]
