"""The exact placement solver: one mixed-integer program per tick, for all workloads at once, in HiGHS.

Variables, per workload ``w`` and offer ``o`` (a GPU type in a cluster):

* ``n[o]`` integer replicas, within the offer's bounds (``hub.placement.formulation``);
* ``r[o]`` integer replicas removed from what runs there (only where something runs): with
  ``n[o] + r[o] >= current[o]``, churn ``|n - current|`` is ``n - current + 2 r`` (linear);
* ``u[w]`` integer reference replicas of unmet demand: ``sum(throughput[o] n[o]) + ref[w] u[w] >=
  demand[w]``, so the problem is always feasible and what does not fit is measured, not dropped;
* ``s[w,c]``, ``t[w]`` integer shortfalls below the soft per-cluster lower bound (spread, minimum)
  and the soft total minimum.

Hard rows: per-cluster maximum, total maximum, and per pool ``sum over w of gpus_per_replica[w]
n[w,o] <= free + held``: the workloads of a tick share the free GPUs, so who gets the cheap ones is
decided by the objective, not by who came first.

HiGHS runs with a time limit and a relative gap of 0. The objective is integral, so a gap below one
unit is a proof. Without a proof in time the best incumbent is used; without an incumbent (or if the
incumbent breaks a hard constraint by numerical error) the greedy fill of ``hub.placement.greedy``.
The result says which.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import highspy
import numpy as np

from hub.placement.formulation import (
    Formulation,
    WorkloadForm,
    formulate,
    pool_violations,
    score,
)
from hub.placement.greedy import greedy
from hub.placement.offers import Key, Offer, PlacementProblem, WorkloadDemand
from hub.placement.results import Method, PlacementResult, Solution

DEFAULT_TIME_LIMIT_S = 1.0
"""The hub ticks every second; a placement that takes longer is stale before it is sent."""


class _Model:
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

    def col(self, cost: int, lower: int, upper: int) -> int:
        self.cost.append(float(cost))
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lower: float, upper: float) -> None:
        self.starts.append(len(self.index))
        for j, a in terms:
            self.index.append(j)
            self.value.append(a)
        self.row_lower.append(lower)
        self.row_upper.append(upper)

    def highs(self, time_limit_s: float) -> highspy.Highs:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 0.5)  # the objective is integral: a gap under 1 is a proof
        n = len(self.cost)
        empty = np.array([], dtype=np.int32)
        h.addCols(n, np.array(self.cost), np.array(self.lower), np.array(self.upper), 0, empty, empty,
                  np.array([], dtype=np.float64))
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                np.full(n, highspy.HighsVarType.kInteger))
        if self.row_lower:
            h.addRows(len(self.row_lower), np.array(self.row_lower), np.array(self.row_upper), len(self.index),
                      np.array(self.starts, dtype=np.int32), np.array(self.index, dtype=np.int32),
                      np.array(self.value))
        return h


def _build(form: Formulation) -> tuple[_Model, list[list[int]]]:
    m = _Model()
    inf = highspy.kHighsInf
    w_ = form.weights
    columns: list[list[int]] = []
    pool_terms: dict[Key, list[tuple[int, float]]] = {}
    for wf in form.workloads:
        w = wf.demand
        cols = [m.col(o.cost + w_.churn, o.lb, o.ub) for o in wf.options]
        columns.append(cols)
        for j, o in zip(cols, wf.options, strict=True):
            if o.current > o.lb:
                r = m.col(2 * w_.churn, 0, o.current)
                m.row([(j, 1.0), (r, 1.0)], o.current, inf)
            if o.offer.key in form.pools:
                pool_terms.setdefault(o.offer.key, []).append((j, float(w.gpus_per_replica)))
        if wf.max_unmet > 0:
            u = m.col(w_.unmet, 0, wf.max_unmet)
            terms = [(j, o.offer.throughput_per_replica) for j, o in zip(cols, wf.options, strict=True)]
            m.row([*terms, (u, w.reference_throughput)], w.demand, inf)
        by_cluster: dict[str, list[int]] = {}
        for j, o in zip(cols, wf.options, strict=True):
            by_cluster.setdefault(o.offer.cluster_id, []).append(j)
        for c, need in wf.cluster_lower.items():
            s = m.col(w_.shortfall, 0, need)
            m.row([*((j, 1.0) for j in by_cluster[c]), (s, 1.0)], need, inf)
        for c, cap in wf.cluster_upper.items():
            if len(by_cluster[c]) > 1:  # one offer: its bound already says it
                m.row([(j, 1.0) for j in by_cluster[c]], -inf, cap)
        if w.min_replicas > 0:
            t = m.col(w_.shortfall, 0, w.min_replicas)
            m.row([*((j, 1.0) for j in cols), (t, 1.0)], w.min_replicas, inf)
        if sum(o.ub for o in wf.options) > wf.max_total:
            m.row([(j, 1.0) for j in cols], -inf, wf.max_total)
    for key, terms in pool_terms.items():
        ubs = sum(m.upper[j] * a for j, a in terms)
        if ubs > form.pools[key]:
            m.row(terms, -inf, form.pools[key])
    return m, columns


def _read(form: Formulation, columns: list[list[int]], values: list[float]) -> dict[str, dict[Key, int]]:
    return {
        wf.demand.key: {o.offer.key: round(values[j]) for j, o in zip(cols, wf.options, strict=True)}
        for wf, cols in zip(form.workloads, columns, strict=True)
    }


def _feasible(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> bool:
    if pool_violations(form, placements):
        return False
    return not any(score(form, wf, placements[wf.demand.key]).violations for wf in form.workloads)


def solve(problem: PlacementProblem, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Solution:
    """Place every workload of ``problem`` jointly at the least cost per SLO-capable load."""
    started = time.perf_counter()
    form = formulate(problem)
    notes: list[str] = []
    model, columns = _build(form)
    placements: dict[str, dict[Key, int]] | None = None
    if not model.cost:  # nothing offered anywhere: the empty placement is the only one
        placements, proved, why = {wf.demand.key: {} for wf in form.workloads}, True, ""
    else:
        h = model.highs(time_limit_s)
        h.run()
        info = h.getInfo()
        proved = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        why = h.modelStatusToString(h.getModelStatus())
        if info.primal_solution_status == 2:  # kSolutionStatusFeasible: HiGHS holds a solution
            placements = _read(form, columns, list(h.getSolution().col_value))
            if not _feasible(form, placements):
                notes.append("the solver's answer broke a hard constraint (numerical trouble)")
                placements = None
            elif not proved:
                notes.append(f"solver stopped ({why}) before proving optimality: best found used, "
                             f"gap {info.mip_gap:.2%}")
    method: Method
    if placements is None:
        method = "greedy"
        notes.append(f"solver had no usable answer ({why}): greedy fill used")
        placements = greedy(form)
    else:
        method = "optimal" if proved else "incumbent"
    results = {}
    objective = 0
    for wf in form.workloads:
        placement = placements[wf.demand.key]
        sc = score(form, wf, placement)
        objective += sc.objective
        results[wf.demand.key] = PlacementResult(
            placement={k: n for k, n in sorted(placement.items()) if n or wf.demand.current.get(k, 0)},
            unplaced=sc.unmet,
            notes=tuple(_notes(wf, placement, sc.unmet)),
            cost_per_hour=sc.cost_per_hour,
            churn=sc.churn,
        )
    return Solution(results, method, objective, time.perf_counter() - started, tuple(notes))


def _notes(wf: WorkloadForm, placement: Mapping[Key, int], unmet: int) -> list[str]:
    out = [f"{n} replicas on {c}/{t} not kept: stale, not allowed or without a price there"
           for (c, t), n in sorted(wf.gone.items())]
    out += wf.notes
    if unmet:
        out.append(f"{unmet} replicas (of the reference throughput) do not fit in free capacity")
    per_cluster: dict[str, int] = {}
    for (c, _), n in placement.items():
        per_cluster[c] = per_cluster.get(c, 0) + n
    for c, need in sorted(wf.cluster_lower.items()):
        if per_cluster.get(c, 0) < need:
            out.append(f"{c} holds {per_cluster.get(c, 0)} of the {need} replicas spread or its minimum asks: no room")
    total = sum(per_cluster.values())
    if total < wf.demand.min_replicas:
        out.append(f"{total} replicas, below the minimum of {wf.demand.min_replicas}: no room")
    return out


def place(
    desired: int,
    current: Mapping[Key, int],
    offers: list[Offer],
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> PlacementResult:
    """One workload on its own: ``desired`` replicas' worth of load over ``offers`` (their own capacity).

    Load is counted in replicas of throughput 1 unless the offers say otherwise. Every offer needs its
    own ``capacity_replicas``: there is no shared pool here.
    """
    demand = WorkloadDemand(key="workload", demand=float(max(desired, 0)), offers=tuple(offers),
                            current=dict(current))
    solution = solve(PlacementProblem((demand,), {}), time_limit_s=time_limit_s)
    result = solution.results["workload"]
    if solution.method != "optimal":
        return PlacementResult(result.placement, result.unplaced, result.notes + solution.notes,
                               result.cost_per_hour, result.churn)
    return result

