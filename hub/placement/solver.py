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

import math
import threading
import time
from collections.abc import Mapping

import highspy
import numpy as np

from hub.placement import priority
from hub.placement.formulation import (
    LOAD_EPSILON,
    Formulation,
    Score,
    WorkloadForm,
    formulate,
    pool_violations,
    score,
)
from hub.placement.greedy import greedy
from hub.placement.milp import Columns, Model, build, read, read_relaxed, start_vector
from hub.placement.offers import Key, Offer, PlacementProblem, WorkloadDemand
from hub.placement.results import Method, PlacementResult, Solution

DEFAULT_TIME_LIMIT_S = 1.0
"""The hub ticks every second; a placement that takes longer is stale before it is sent."""


def _scores(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> dict[str, Score] | None:
    """Every workload's score, or None if the placement breaks a hard constraint."""
    if pool_violations(form, placements) or form.limit_violations(placements):
        return None
    scores = {wf.demand.key: score(form, wf, placements[wf.demand.key]) for wf in form.workloads}
    return None if any(sc.violations for sc in scores.values()) else scores


def _objective(form: Formulation, placements: Mapping[str, Mapping[Key, int]]) -> int:
    return sum(score(form, wf, placements[wf.demand.key]).objective for wf in form.workloads)


GRACE_S = 0.05
"""How long past its deadline the solver waits for HiGHS to stop on its own before walking away."""

_busy_lock = threading.Lock()
_busy: threading.Thread | None = None
"""A HiGHS run left behind at its deadline (still in work it cannot interrupt). One at most: while it
runs, later solves skip branch and bound rather than pile up threads on the CPUs it holds."""


class _Run:
    """One HiGHS branch and bound in a worker thread (HiGHS releases the GIL while it works)."""

    def __init__(self, h: highspy.Highs, deadline: float) -> None:
        self.h = h
        self.deadline = deadline
        self.best: list[float] | None = None
        self.done = threading.Event()
        h.cbMipInterrupt.subscribe(self._interrupt)
        h.cbSimplexInterrupt.subscribe(self._interrupt)
        h.cbMipImprovingSolution.subscribe(self._improved)
        self.thread = threading.Thread(target=self._run, name="placement-highs", daemon=True)

    def _interrupt(self, event: highspy.highs.HighsCallbackEvent) -> None:
        # NB: HiGHS checks its own time limit too seldom in root cut separation; its interrupt
        # callbacks come more often, though not always (hence the worker thread).
        if time.perf_counter() > self.deadline:
            event.interrupt()

    def _improved(self, event: highspy.highs.HighsCallbackEvent) -> None:
        self.best = list(event.data_out.mip_solution)

    def _run(self) -> None:
        try:
            self.h.run()
        finally:
            self.done.set()

    def wait(self) -> bool:
        """Run until done or the deadline (plus ``GRACE_S``); whether HiGHS finished."""
        self.thread.start()
        return self.done.wait(max(self.deadline - time.perf_counter(), 0.0) + GRACE_S)


def _misreported(model: Model, values: list[float], objective: float) -> bool:
    """The objective HiGHS reports is not the one of the values it returns (by more than the gap)."""
    return abs(float(np.dot(model.cost, values)) - objective) > 0.5


def _branch_and_bound(
    form: Formulation,
    model: Model,
    columns: list[Columns],
    start: dict[str, dict[Key, int]] | None,
    deadline: float,
) -> tuple[dict[str, dict[Key, int]] | None, Method, str, float | None]:
    """HiGHS from ``start`` until proof or ``deadline``: the placement (None if unusable), how, a note, the gap."""
    global _busy
    fallback = "the rounded LP" if start is not None else "the greedy fill"
    with _busy_lock:
        if _busy is not None and _busy.is_alive():
            return None, "greedy", f"the previous solve is still stopping: {fallback} used", None
    h = model.highs(deadline - time.perf_counter())
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = start_vector(form, columns, len(model.cost), start)
        h.setSolution(solution)
    run = _Run(h, deadline)
    if not run.wait():
        with _busy_lock:
            _busy = run.thread
        values = run.best
        why = "still working past its time limit"
        gap = None
    else:
        status = h.getModelStatus()
        why = h.modelStatusToString(status)
        info = h.getInfo()
        values = list(h.getSolution().col_value) if info.primal_solution_status == 2 else None
        if values is not None and status == highspy.HighsModelStatus.kOptimal:
            if start is not None and _misreported(model, values, info.objective_function_value):
                # HiGHS 1.16 handed back the start it was given as "optimal", priced 2 where the
                # start costs 4 and the optimum 3 (tests/hub/placement/test_solver_property.py):
                # such an answer proves nothing. Solved again without the start.
                return _branch_and_bound(form, model, columns, None, deadline)
            placements = read(form, columns, values)
            if _scores(form, placements) is not None:
                return placements, "optimal", "", 0.0
        gap = info.mip_gap
    if values is None:
        return None, "greedy", f"solver had no usable answer ({why}): {fallback} used", None
    placements = read(form, columns, values)
    if _scores(form, placements) is None:
        return None, "greedy", f"the solver's answer broke a hard constraint (numerical trouble): {fallback} used", None
    found = "" if start is None else (
        ", better than the rounded LP" if _objective(form, placements) < _objective(form, start) else
        ", the rounded LP"
    )
    proof = "" if gap is None else f", gap {gap:.3%}"
    note = f"solver stopped ({why}) before proving optimality: best found used{found}{proof}"
    return placements, "incumbent", note, gap


def join_background(timeout: float | None = None) -> bool:
    """Wait for a HiGHS run left behind at its deadline; whether none is left (for benchmarks)."""
    with _busy_lock:
        busy = _busy
    if busy is not None:
        busy.join(timeout)
        return not busy.is_alive()
    return True


def _closed_form(wf: WorkloadForm) -> dict[Key, int]:
    """The optimum of a workload with one place that shares no contended pool, without a solver.

    Every replica serves at least a unit of unmet demand while any is left and weighs less than it;
    more replicas never worsen shortfall; and each costs more than any churn saves. So the optimum is
    the fewest replicas that serve the demand and the lower bounds, within the bounds (and, at price 0,
    at least what runs: then only churn counts).
    """
    (o,) = wf.options
    w = wf.demand
    serve = max(0, math.ceil((w.demand - LOAD_EPSILON * wf.unit) / o.offer.throughput_per_replica))
    need = max(o.lb, serve, wf.cluster_lower.get(o.offer.cluster_id, 0), w.min_replicas)
    if o.cost == 0:
        need = max(need, o.current)
    return {o.offer.key: min(o.ub, need)}


def _split(form: Formulation) -> tuple[dict[str, dict[Key, int]], Formulation]:
    """Workloads solved in closed form, and the formulation of the rest (for HiGHS).

    A pool is contended when the workloads' upper bounds there could overfill it; a workload with one
    place in an uncontended pool cannot affect any other, so its closed-form optimum is the joint one.
    At thousands of workloads a tick, that is most of them, and the MILP stays small.
    """
    demand: dict[Key, int] = {}
    for wf in form.workloads:
        for o in wf.options:
            demand[o.offer.key] = demand.get(o.offer.key, 0) + o.ub * wf.demand.gpus_per_replica
    contended = {k for k, n in demand.items() if k in form.pools and n > form.pools[k]}
    coupled = form.coupled()
    closed: dict[str, dict[Key, int]] = {}
    rest = []
    for wf in form.workloads:
        if not wf.options:
            closed[wf.demand.key] = {}
        elif len(wf.options) == 1 and wf.options[0].offer.key not in contended and not wf.demand.classes \
                and wf.demand.key not in coupled:
            closed[wf.demand.key] = _closed_form(wf)
        else:
            rest.append(wf)
    return closed, Formulation(form.problem, rest, form.pools, form.weights, form.limits)


def _prioritise(form: Formulation, model: Model, columns: list[Columns],
                deadline: float) -> tuple[dict[str, dict[Key, int]] | None, list[str]]:
    """With more than one priority: the stages of ``hub.placement.priority``, their rows left in ``model``.

    Returns the last stage's placement (a feasible start for the final solve), or None when there is
    one priority or no stage found one, and notes on what was not done.
    """
    lv = priority.levels(form)
    if len(lv) < 2:
        return None, []
    notes = []
    keep = priority.protected(form)
    start: dict[str, dict[Key, int]] | None = priority.witness(form, keep)
    if keep and _scores(form, start or {}) is None:
        notes.append("priorities: the replicas lower priorities hold up to their min_replicas cannot all be kept "
                     "within the hard constraints: not protected in this solve")
        keep, start = {}, None
    priority.protect_rows(model, form, columns, keep)
    original = model.cost
    try:
        for i, level in enumerate(lv):
            unmet = priority.unmet_columns(form, columns, level)
            if not unmet:
                continue
            model.cost = priority.stage_cost(len(original), unmet)
            now = time.perf_counter()
            found, _, note, _ = _branch_and_bound(form, model, columns, start, now + (deadline - now) / (len(lv) - i))
            if found is None and start is not None:
                # HiGHS reports only the incumbents it finds itself: the start (the previous stage's answer,
                # which keeps every row so far) is the best this stage has, and bounds it.
                notes.append(f"priorities: the stage of priority {level} was not solved in time: the previous "
                             "placement bounds it")
                found = start
            elif found is None:
                notes.append(f"priorities: the stage of priority {level} found nothing ({note}); lower ones not ranked")
                break
            units = {wf.demand.key: score(form, wf, found[wf.demand.key]).unmet_units for wf in form.workloads}
            priority.cap_row(model, unmet, priority.level_units(form, level, units))
            start = found
    finally:
        model.cost = original
    return start, notes


def solve(problem: PlacementProblem, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Solution:
    """Place every workload of ``problem`` jointly at the least cost per SLO-capable load."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    form = formulate(problem)
    notes: list[str] = []
    closed, sub = _split(form)
    placements: dict[str, dict[Key, int]] | None = None
    rounded: dict[str, dict[Key, int]] | None = None
    staged: dict[str, dict[Key, int]] | None = None
    method: Method = "greedy"
    gap: float | None = None
    if not sub.workloads:
        placements, method, gap = {}, "optimal", 0.0
    elif time_limit_s <= 0:
        notes.append("no time to solve: greedy fill used")
    else:
        model, columns = build(sub)
        staged, staged_notes = _prioritise(sub, model, columns, started + time_limit_s / 2)
        notes += staged_notes
        lp = model.highs(max(deadline - time.perf_counter(), 0.0), integer=False)
        lp.run()
        if lp.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            x = np.asarray(lp.getSolution().col_value)
            whole = np.ones(len(x), dtype=bool)
            whole[model.continuous] = False
            if np.all(np.abs(x[whole] - np.round(x[whole])) < 1e-6):
                # An integral LP optimum is the MIP's optimum too (its bound is met): no branching.
                placements, method, gap = read(sub, columns, list(x)), "optimal", 0.0
                if _scores(sub, placements) is None:
                    placements = None
            if placements is None:
                # With priorities the stages' answer keeps their rows; the rounded LP may not.
                rounded = staged if staged is not None else greedy(sub, read_relaxed(sub, columns, list(x)))
        if placements is None:
            placements, method, note, gap = _branch_and_bound(sub, model, columns, rounded or staged, deadline)
            notes += [note] if note else []
    if placements is None:
        placements = rounded if rounded is not None else staged if staged is not None else greedy(sub)
    placements = closed | placements
    scores = _scores(form, placements)
    assert scores is not None, "the greedy fill keeps every hard constraint"
    results = {}
    for wf in form.workloads:
        placement, sc = placements[wf.demand.key], scores[wf.demand.key]
        results[wf.demand.key] = PlacementResult(
            placement={k: n for k, n in sorted(placement.items()) if n or wf.demand.current.get(k, 0)},
            unplaced=sc.unmet,
            notes=tuple(_notes(wf, placement, sc.unmet)),
            cost_per_hour=sc.cost_per_hour,
            churn=sc.churn,
        )
    objective = sum(sc.objective for sc in scores.values())
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

