"""Priorities: under contention a higher priority's demand is served first, lexicographically.

When the workloads of a solve have more than one ``priority``, the solver (``solver.py``) runs one
stage per priority, highest first, before its usual solve. Stage ``k`` minimises the unmet demand of
the workloads at priority ``k`` alone, subject to every hard constraint and to what the earlier
stages proved: each higher priority's unmet demand at most what its stage reached. The final solve
(unmet demand, shortfall, price, churn, as ``formulation.py`` ranks them) keeps those rows too. So
a higher priority is never left short for a lower one's sake, and among equal priorities nothing
changes.

**Reclaim stops at ``min_replicas``.** A workload below the highest priority keeps, as a hard row in
every stage, as many replicas as it holds now up to its ``min_replicas`` (``protected``): a higher
priority takes only what a lower one holds beyond its minimum. If the current placement itself
could not keep those rows with every other hard constraint (a budget lowered under what runs), the
protection is dropped for that solve and the notes say so.

Each stage's answer is a feasible start for the next (it keeps all the rows so far), so every stage
has an incumbent from its first node, and a stage that runs out of time still bounds the next.
Weights in one objective (a higher priority's unmet units weighted above everything a replica of a
lower one can serve) would need coefficients past 1e15 with a few priorities, where doubles stop
being exact: stages keep every objective's coefficients as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import highspy

from hub.placement.formulation import Formulation
from hub.placement.milp import Columns, Model
from hub.placement.offers import Key


def levels(form: Formulation) -> list[int]:
    """The distinct priorities of the workloads with somewhere to go, highest first."""
    return sorted({wf.demand.priority for wf in form.workloads if wf.options}, reverse=True)


def protected(form: Formulation) -> dict[str, dict[Key, int]]:
    """Per workload below the top priority: held replicas it keeps, up to its ``min_replicas``.

    Taken from where it holds them, within each place's bounds; the most replicas first.
    """
    top = max(levels(form), default=0)
    out: dict[str, dict[Key, int]] = {}
    for wf in form.workloads:
        if wf.demand.priority >= top or wf.demand.min_replicas <= 0:
            continue
        keep: dict[Key, int] = {}
        want = wf.demand.min_replicas
        for o in sorted(wf.options, key=lambda o: (-wf.demand.held.get(o.offer.key, 0), o.offer.key)):
            n = min(max(wf.demand.held.get(o.offer.key, 0), 0), o.ub, want)
            if n > 0:
                keep[o.offer.key] = n
                want -= n
        if keep:
            out[wf.demand.key] = keep
    return out


def witness(form: Formulation, keep: Mapping[str, Mapping[Key, int]]) -> dict[str, dict[Key, int]]:
    """A placement that keeps every hard floor and the protected replicas (each at least its floor)."""
    out = {}
    for wf in form.workloads:
        mine = keep.get(wf.demand.key, {})
        out[wf.demand.key] = {o.offer.key: max(o.lb, mine.get(o.offer.key, 0)) for o in wf.options}
    return out


def protect_rows(m: Model, form: Formulation, columns: list[Columns], keep: Mapping[str, Mapping[Key, int]]) -> None:
    """Each protected workload keeps at least its protected total (anywhere it may run)."""
    for wf, cols in zip(form.workloads, columns, strict=True):
        n = sum(keep.get(wf.demand.key, {}).values())
        if n > 0:
            m.row([(j, 1.0) for j in cols.n], n, highspy.kHighsInf)


def unmet_columns(form: Formulation, columns: list[Columns], level: int) -> list[int]:
    """The columns of unmet demand units of the workloads at ``level``."""
    out: list[int] = []
    for wf, cols in zip(form.workloads, columns, strict=True):
        if wf.demand.priority == level:
            out += [cols.u] if cols.u is not None else []
            out += cols.uc
    return out


def stage_cost(size: int, unmet: list[int]) -> list[float]:
    cost = [0.0] * size
    for j in unmet:
        cost[j] = 1.0
    return cost


def cap_row(m: Model, unmet: list[int], units: int) -> None:
    """The level's unmet units stay at most what its stage reached."""
    if unmet:
        m.row([(j, 1.0) for j in unmet], -highspy.kHighsInf, float(units))


def level_units(form: Formulation, level: int, units: Mapping[str, int]) -> int:
    """Unmet units of the workloads at ``level`` (``units``: per workload, as scored)."""
    return sum(units[wf.demand.key] for wf in form.workloads if wf.demand.priority == level)
