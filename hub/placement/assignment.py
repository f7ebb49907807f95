"""Which replicas serve which request class: the load a placement leaves unserved when demand comes in classes.

With request classes (``hub.policy.classes``) a replica of a GPU type serves only the classes it is
fast enough for, at a throughput that depends on the class (an L4 takes short prompts at twice
the tokens/s of the whole mix, long ones not at all). Whether a placement covers the demand is then
a transportation problem: split each place's replicas between the classes it can serve so that every
class's load is met. Its least unserved load is a small linear program (one column per place and
class, one row per place and per class), solved with HiGHS as the placement MILP is; the MILP itself
carries the same columns and rows (``milp.py``), so both count unserved load alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from hub.placement.offers import Key, LoadClass


@dataclass(frozen=True, slots=True)
class Assignment:
    share: dict[tuple[Key, int], float]
    """(place, class index) -> replicas of that place serving the class (fractional)."""
    unserved: tuple[float, ...]
    """Per class: load no replica serves."""


def assign(classes: Sequence[LoadClass], demand: float, replicas: Mapping[Key, int]) -> Assignment:
    """The split of ``replicas`` between ``classes`` that leaves the least load unserved."""
    loads = [demand * c.share for c in classes]
    cols: list[tuple[Key, int, float]] = [(key, j, thr) for j, c in enumerate(classes)
                                          for key, n in sorted(replicas.items())
                                          if n > 0 and (thr := c.throughput.get(key[1], 0.0)) > 0]
    if not cols:
        return Assignment({}, tuple(loads))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    n_x, n_u = len(cols), len(classes)
    # Columns: x (replicas of a place on a class), then u (unserved load per class, cost 1).
    cost = np.array([0.0] * n_x + [1.0] * n_u)
    h.addVars(n_x + n_u, np.zeros(n_x + n_u), np.full(n_x + n_u, inf))
    h.changeColsCost(n_x + n_u, np.arange(n_x + n_u, dtype=np.int32), cost)
    for j, load in enumerate(loads):
        idx = [i for i, (_, jj, _) in enumerate(cols) if jj == j] + [n_x + j]
        val = [cols[i][2] for i in idx[:-1]] + [1.0]
        h.addRow(load, inf, len(idx), np.array(idx, dtype=np.int32), np.array(val))
    for key in sorted({k for k, _, _ in cols}):
        idx = [i for i, (k, _, _) in enumerate(cols) if k == key]
        h.addRow(-inf, float(replicas[key]), len(idx), np.array(idx, dtype=np.int32), np.ones(len(idx)))
    h.run()
    x = list(h.getSolution().col_value)
    share = {(k, j): x[i] for i, (k, j, _) in enumerate(cols) if x[i] > 1e-9}
    unserved = tuple(max(0.0, x[n_x + j]) for j in range(n_u))
    return Assignment(share, unserved)

