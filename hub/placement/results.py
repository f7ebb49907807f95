"""What placement answers: replicas per (cluster, GPU type) per workload, and how it got there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hub.state import Placement

Method = Literal["optimal", "incumbent", "greedy"]
"""``optimal``: HiGHS proved it. ``incumbent``: the best HiGHS found before its time limit.
``greedy``: HiGHS had nothing usable, so the documented greedy fill was used."""


@dataclass(frozen=True, slots=True)
class PlacementResult:
    placement: Placement
    """Replicas per place; a place that runs replicas now and gets none is listed with 0."""
    unplaced: int
    """Replicas of the reference throughput whose demand fits nowhere."""
    notes: tuple[str, ...] = ()
    cost_per_hour: float = 0.0
    churn: int = 0
    """Replicas added plus replicas removed, against the current placement."""

    @property
    def total(self) -> int:
        return sum(self.placement.values())


@dataclass(frozen=True, slots=True)
class Solution:
    results: Mapping[str, PlacementResult]
    """Per workload key."""
    method: Method
    objective: int
    """The integer objective of the formulation (see ``hub.placement.formulation``)."""
    solve_s: float
    """Wall time to formulate and solve."""
    notes: tuple[str, ...] = ()
    gap: float | None = 0.0
    """HiGHS's relative gap between the answer and its proven bound: 0 when optimal, None when the
    answer is not HiGHS's (greedy)."""
