"""The placement problem as a mixed-integer program in the arrays HiGHS takes.

Variables, per workload ``w`` and offer ``o`` (a GPU type in a cluster):

* ``n[o]`` integer replicas, within the offer's bounds (``hub.placement.formulation``);
* ``r[o]`` integer replicas removed from what runs there (only where something runs): with
  ``n[o] + r[o] >= current[o]``, churn ``|n - current|`` is ``n - current + 2 r`` (linear);
* ``u[w]`` integer units of unmet demand: ``sum(throughput[o] n[o]) + unit[w] u[w] >= demand[w]``, so
  the problem is always feasible and what does not fit is measured, not dropped;
* with request classes (``assignment.py``) instead: continuous ``x[o,k]``, the replicas of ``o``
  serving class ``k``, with ``sum_k x[o,k] <= n[o]``, and per class ``sum_o throughput[o,k] x[o,k] +
  unit[w] u[w,k] >= share[k] demand[w]``: a replica's time is split between the classes it can serve;
* ``s[w,c]``, ``t[w]`` integer shortfalls below the soft per-cluster lower bound (spread, minimum)
  and the soft total minimum.

Hard rows: per-cluster maximum, total maximum, and per pool ``sum over w of gpus_per_replica[w]
n[w,o] <= free + held``: the workloads of a tick share the free GPUs, so who gets the cheap ones is
decided by the objective, not by who came first. Every variable is integer and every cost an
integer, so the objective is integral: HiGHS proves optimality with any gap below one unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import highspy
import numpy as np

from hub.placement.formulation import LOAD_EPSILON, Formulation, WorkloadForm
from hub.placement.offers import Key


@dataclass(slots=True)
class Columns:
    """Where one workload's variables are."""

    n: list[int]
    r: dict[int, int] = field(default_factory=dict)
    """Option index -> column of replicas removed there."""
    u: int | None = None
    s: dict[str, int] = field(default_factory=dict)
    t: int | None = None
    classes: list[tuple[int, list[int]]] = field(default_factory=list)
    """Column of replicas per throughput class, and the place columns it sums."""
    x: dict[tuple[int, int], int] = field(default_factory=dict)
    """(option index, request class index) -> column of replicas serving that class there."""
    uc: list[int] = field(default_factory=list)
    """Per request class: the column of its unmet units."""


class Model:
    """Columns and rows in the arrays HiGHS takes, built in one pass."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.starts: list[int] = []
        self.index: list[int] = []
        self.value: list[float] = []
        self.continuous: list[int] = []

    def col(self, cost: int, lower: int, upper: float, *, integer: bool = True) -> int:
        self.cost.append(float(cost))
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        if not integer:
            self.continuous.append(len(self.cost) - 1)
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lower: float, upper: float) -> None:
        self.starts.append(len(self.index))
        for j, a in terms:
            self.index.append(j)
            self.value.append(a)
        self.row_lower.append(lower)
        self.row_upper.append(upper)

    def highs(self, time_limit_s: float, *, integer: bool = True) -> highspy.Highs:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(max(time_limit_s, 0.0)))
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 0.5)  # the objective is integral: a gap under 1 is a proof
        n = len(self.cost)
        empty = np.array([], dtype=np.int32)
        h.addCols(n, np.array(self.cost), np.array(self.lower), np.array(self.upper), 0, empty, empty,
                  np.array([], dtype=np.float64))
        if integer:
            kinds = np.full(n, highspy.HighsVarType.kInteger)
            kinds[self.continuous] = highspy.HighsVarType.kContinuous
            h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), kinds)
        if self.row_lower:
            h.addRows(len(self.row_lower), np.array(self.row_lower), np.array(self.row_upper), len(self.index),
                      np.array(self.starts, dtype=np.int32), np.array(self.index, dtype=np.int32),
                      np.array(self.value))
        return h


AGGREGATE_UP_TO = 2000
"""Places (columns) up to which replicas are also counted per throughput class. Measured on
``bench/placement_solve.py``: on one workload of 300 places it cuts proofs from about 1 s to tens of
ms; at 50 workloads (6,000 places) HiGHS's root cut separation on the class rows ran 3-7 s without
checking its time limit or interrupt callbacks, where without them it stops within 0.1 s of it."""


def build(form: Formulation) -> tuple[Model, list[Columns]]:
    m = Model()
    aggregate = sum(len(wf.options) for wf in form.workloads) <= AGGREGATE_UP_TO
    inf = highspy.kHighsInf
    w_ = form.weights
    columns: list[Columns] = []
    pool_terms: dict[Key, list[tuple[int, float]]] = {}
    for wf in form.workloads:
        w = wf.demand
        cols = [m.col(o.cost + w_.churn, o.lb, o.ub) for o in wf.options]
        mine = Columns(cols)
        columns.append(mine)
        for i, (j, o) in enumerate(zip(cols, wf.options, strict=True)):
            if o.current > o.lb:
                mine.r[i] = m.col(2 * w_.churn, 0, o.current)
                m.row([(j, 1.0), (mine.r[i], 1.0)], o.current, inf)
            if o.offer.key in form.pools:
                pool_terms.setdefault(o.offer.key, []).append((j, float(w.gpus_per_replica)))
        if w.classes:
            _class_rows(m, wf, cols, mine, w_.unmet)
        elif wf.max_unmet > 0:
            mine.u = m.col(w_.unmet, 0, wf.max_unmet)
            # Replicas per throughput class (a GPU type, for one workload) as integers of their own:
            # the demand row is then a knapsack over a few classes, which branching and cover cuts
            # close far faster than over every place (see AGGREGATE_UP_TO).
            classes: dict[float, list[tuple[int, int]]] = {}
            for j, o in zip(cols, wf.options, strict=True):
                classes.setdefault(o.offer.throughput_per_replica, []).append((j, o.ub))
            terms: list[tuple[int, float]] = []
            for theta, members in sorted(classes.items()):
                if len(members) == 1 or not aggregate:
                    terms.extend((j, theta) for j, _ in members)
                    continue
                agg = m.col(0, 0, min(sum(ub for _, ub in members), wf.max_total))
                mine.classes.append((agg, [j for j, _ in members]))
                m.row([*((j, 1.0) for j, _ in members), (agg, -1.0)], 0.0, 0.0)
                terms.append((agg, theta))
            m.row([*terms, (mine.u, wf.unit)], w.demand, inf)
        by_cluster: dict[str, list[int]] = {}
        for j, o in zip(cols, wf.options, strict=True):
            by_cluster.setdefault(o.offer.cluster_id, []).append(j)
        for c, need in wf.cluster_lower.items():
            mine.s[c] = m.col(w_.shortfall, 0, need)
            m.row([*((j, 1.0) for j in by_cluster[c]), (mine.s[c], 1.0)], need, inf)
        for c, cap in wf.cluster_upper.items():
            if len(by_cluster[c]) > 1:  # one offer: its bound already says it
                m.row([(j, 1.0) for j in by_cluster[c]], -inf, cap)
        if w.min_replicas > 0:
            mine.t = m.col(w_.shortfall, 0, w.min_replicas)
            m.row([*((j, 1.0) for j in cols), (mine.t, 1.0)], w.min_replicas, inf)
        if sum(o.ub for o in wf.options) > wf.max_total:
            m.row([(j, 1.0) for j in cols], -inf, wf.max_total)
    for key, terms in pool_terms.items():
        ubs = sum(m.upper[j] * a for j, a in terms)
        if ubs > form.pools[key]:
            m.row(terms, -inf, form.pools[key])
    _limit_rows(m, form, columns)
    return m, columns


def _limit_rows(m: Model, form: Formulation, columns: list[Columns]) -> None:
    """One row per budget cap that the covered places' bounds could break."""
    for lim in form.limits:
        terms = []
        for wf, cols in zip(form.workloads, columns, strict=True):
            if wf.demand.key not in lim.members:
                continue
            for j, o in zip(cols.n, wf.options, strict=True):
                a = lim.coefficient(wf.demand.key, wf.demand.gpus_per_replica, o.offer.gpu_type,
                                    o.offer.price_per_replica_hour)
                if a > 0:
                    terms.append((j, a))
        if sum(m.upper[j] * a for j, a in terms) > lim.cap:
            m.row(terms, -highspy.kHighsInf, lim.cap)


def _class_rows(m: Model, wf: WorkloadForm, cols: list[int], mine: Columns, unmet_weight: int) -> None:
    """The request classes' rows: each place's replicas split between the classes it serves."""
    inf = highspy.kHighsInf
    w = wf.demand
    by_option: dict[int, list[int]] = {}
    for k, c in enumerate(w.classes):
        load = w.demand * c.share
        terms: list[tuple[int, float]] = []
        for i, o in enumerate(wf.options):
            thr = c.throughput.get(o.offer.gpu_type, 0.0)
            if thr > 0 and o.ub > 0:
                mine.x[(i, k)] = j = m.col(0, 0, o.ub, integer=False)
                by_option.setdefault(i, []).append(j)
                terms.append((j, thr))
        u = m.col(unmet_weight, 0, max(0, math.ceil(load / wf.unit - LOAD_EPSILON)))
        mine.uc.append(u)
        m.row([*terms, (u, wf.unit)], load, inf)
    for i, xs in by_option.items():
        m.row([(cols[i], 1.0), *((j, -1.0) for j in xs)], 0.0, inf)


def read(form: Formulation, columns: list[Columns], values: list[float]) -> dict[str, dict[Key, int]]:
    """Replicas per place from an integer answer's column vector."""
    return {wf.demand.key: {o.offer.key: round(values[j]) for j, o in zip(cols.n, wf.options, strict=True)}
            for wf, cols in zip(form.workloads, columns, strict=True)}


def read_relaxed(form: Formulation, columns: list[Columns], values: list[float]) -> dict[str, dict[Key, float]]:
    """Fractional replicas per place from the LP relaxation's column vector."""
    return {wf.demand.key: {o.offer.key: values[j] for j, o in zip(cols.n, wf.options, strict=True)}
            for wf, cols in zip(form.workloads, columns, strict=True)}


def start_vector(form: Formulation, columns: list[Columns], size: int,
                 placements: Mapping[str, Mapping[Key, int]]) -> list[float]:
    """A full, consistent column vector for a placement: HiGHS takes it as its first incumbent."""
    x = [0.0] * size
    for wf, cols in zip(form.workloads, columns, strict=True):
        placement = placements[wf.demand.key]
        per_cluster: dict[str, int] = {}
        load = 0.0
        for i, (j, o) in enumerate(zip(cols.n, wf.options, strict=True)):
            n = placement.get(o.offer.key, 0)
            x[j] = n
            load += n * o.offer.throughput_per_replica
            per_cluster[o.offer.cluster_id] = per_cluster.get(o.offer.cluster_id, 0) + n
            if i in cols.r:
                x[cols.r[i]] = max(0, o.current - n)
        if cols.u is not None:
            x[cols.u] = wf.unmet_units(load)
        if cols.uc:
            served = wf.served(placement)
            index = {o.offer.key: i for i, o in enumerate(wf.options)}
            for (key, k), v in served.share.items():
                x[cols.x[(index[key], k)]] = v
            for k, u in enumerate(served.unserved):
                x[cols.uc[k]] = wf.class_units((u,))
        for agg, members in cols.classes:
            x[agg] = sum(x[j] for j in members)
        for c, j in cols.s.items():
            x[j] = max(0, wf.cluster_lower[c] - per_cluster.get(c, 0))
        if cols.t is not None:
            x[cols.t] = max(0, wf.demand.min_replicas - sum(per_cluster.values()))
    return x
