"""The exact placement solver: one mixed-integer program per tick, for all workloads at once, in HiGHS.

Within ``time_limit_s``:

1. The LP relaxation (milliseconds) shares the pools out; rounded down and completed by the greedy
   fill, it is the first incumbent, usually within a replica per workload of the optimum.
2. HiGHS's branch and bound starts from it with a relative gap of 0 (the objective is integral, so a
   gap below one unit is a proof) and stops at the time limit.
3. Proved: ``optimal``. Not proved in time: the best incumbent, with its gap (``incumbent``).
   HiGHS with no usable answer (or one that breaks a hard constraint by numerical error): the greedy
   fill on its own (``greedy``). The result says which, and the notes say why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import highspy

from hub.placement.formulation import Formulation, WorkloadForm, formulate, pool_violations, score
from hub.placement.greedy import greedy
from hub.placement.milp import Columns, Model, build, read, read_relaxed, start_vector
from hub.placement.offers import Key, Offer, PlacementProblem, WorkloadDemand
from hub.placement.results import Method, PlacementResult, Solution

DEFAULT_TIME_LIMIT_S = 1.0
"""The hub ticks every second; a placement that takes longer is stale before it is sent."""


def _feasible(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> bool:
    if pool_violations(form, placements):
        return False
    return not any(score(form, wf, placements[wf.demand.key]).violations for wf in form.workloads)


def _objective(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> int:
    return sum(score(form, wf, placements[wf.demand.key]).objective for wf in form.workloads)


def _branch_and_bound(
    form: Formulation,
    model: Model,
    columns: list[Columns],
    start: dict[str, dict[Key, int]] | None,
    deadline: float,
) -> tuple[dict[str, dict[Key, int]] | None, Method, str, float | None]:
    """HiGHS from ``start`` until proof or ``deadline``: the placement (None if unusable), how, a note, the gap."""
    h = model.highs(deadline - time.perf_counter())

    def past_deadline(event: highspy.highs.HighsCallbackEvent) -> None:
        # NB: HiGHS checks its own time limit too seldom in root cut separation (seen: 2.8 s past a
        # 1 s limit at 50 workloads); its interrupt callbacks come more often.
        if time.perf_counter() > deadline:
            event.interrupt()

    h.cbMipInterrupt.subscribe(past_deadline)
    h.cbSimplexInterrupt.subscribe(past_deadline)
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = start_vector(form, columns, len(model.cost), start)
        h.setSolution(solution)
    h.run()
    status = h.getModelStatus()
    why = h.modelStatusToString(status)
    fallback = "the rounded LP" if start is not None else "the greedy fill"
    if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible: HiGHS holds no solution
        return None, "greedy", f"solver had no usable answer ({why}): {fallback} used", None
    placements = read(form, columns, list(h.getSolution().col_value))
    if not _feasible(form, placements):
        return None, "greedy", f"the solver's answer broke a hard constraint (numerical trouble): {fallback} used", None
    if status == highspy.HighsModelStatus.kOptimal:
        return placements, "optimal", "", 0.0
    found = "" if start is None else (
        ", better than the rounded LP" if _objective(form, placements) < _objective(form, start) else
        ", the rounded LP"
    )
    gap = h.getInfo().mip_gap
    return placements, "incumbent", f"solver stopped ({why}) before proving optimality: best found used{found}, " \
        f"gap {gap:.3%}", gap


def solve(problem: PlacementProblem, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Solution:
    """Place every workload of ``problem`` jointly at the least cost per SLO-capable load."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    form = formulate(problem)
    notes: list[str] = []
    model, columns = build(form)
    placements: dict[str, dict[Key, int]] | None = None
    rounded: dict[str, dict[Key, int]] | None = None
    method: Method = "greedy"
    gap: float | None = None
    if not model.cost:  # nothing offered anywhere: the empty placement is the only one
        placements, method, gap = {wf.demand.key: {} for wf in form.workloads}, "optimal", 0.0
    elif time_limit_s <= 0:
        notes.append("no time to solve: greedy fill used")
    else:
        lp = model.highs(time_limit_s, integer=False)
        lp.run()
        if lp.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            rounded = greedy(form, read_relaxed(form, columns, list(lp.getSolution().col_value)))
        placements, method, note, gap = _branch_and_bound(form, model, columns, rounded, deadline)
        notes += [note] if note else []
    if placements is None:
        placements = rounded if rounded is not None else greedy(form)
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
    return Solution(results, method, objective, time.perf_counter() - started, tuple(notes), gap)


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

