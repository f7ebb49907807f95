"""``AIInferenceBudget``: the one budget model behind the REST API, the CRD and budget files.

A budget caps what a team's workloads may hold together, across every cluster: GPUs per GPU type
(``"*"`` for all types together) and/or USD per hour at the prices placement uses. Placement keeps
every budget as a hard constraint (docs/budgets.md). Which workloads a budget covers is a selector
in the terms a policy's ``targets`` use: namespaces, and/or labels on the workload object (with an
optional namespace), so a team is "its namespaces" or "its label" as the fleet is organised.

Field names are snake_case; the CRD's camelCase spellings are accepted as aliases, as for policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Self

from pydantic import Field, model_validator

from hub.policy.model import LabelSelector, Name, PolicyId, Spec

ALL_TYPES = "*"
"""The key of a GPU cap over every type together."""
TOLERANCE = 1e-6
"""USD/h: a sum within this of its cap is at the cap."""
MAX_GPUS = 1_000_000
MAX_COST_PER_HOUR = 1e9


class BudgetSelector(Spec):
    """Which workloads a budget covers: in one of ``namespaces``, or matching ``selector``, or both."""

    namespaces: tuple[Name, ...] = Field(default=(), description="Every workload in these namespaces")
    selector: LabelSelector | None = Field(
        default=None, description="Workloads whose labels match (and, if given, in the selector's namespace)"
    )

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.namespaces and self.selector is None:
            raise ValueError("workloads: give namespaces, a selector, or both")
        return self

    def selects(self, key: str, labels: Mapping[str, str]) -> bool:
        """Whether the workload ``key`` ("ns/name") with ``labels`` is covered (either part suffices)."""
        namespace = key.split("/", 1)[0]
        if namespace in self.namespaces:
            return True
        sel = self.selector
        if sel is None or (sel.namespace is not None and sel.namespace != namespace):
            return False
        return all(labels.get(k) == v for k, v in sel.match_labels.items())


class Caps(Spec):
    """The hard limits. At least one is required; every one given binds."""

    gpus: dict[str, Annotated[int, Field(ge=0, le=MAX_GPUS)]] = Field(
        default_factory=dict,
        description='GPUs the covered workloads may hold, by GPU type; "*" caps all types together',
    )
    cost_per_hour: float | None = Field(
        default=None, ge=0, le=MAX_COST_PER_HOUR,
        description="USD per hour the covered workloads' replicas may cost together, at placement's prices",
    )

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.gpus and self.cost_per_hour is None:
            raise ValueError("caps: give gpus, cost_per_hour, or both")
        for gpu_type in self.gpus:  # (a key constraint would not fit a CRD's structural schema)
            if not 0 < len(gpu_type) <= 64:
                raise ValueError(f"gpus: GPU type {gpu_type[:64]!r} must be 1 to 64 characters")
        return self


class AIInferenceBudget(Spec):
    id: PolicyId
    description: str = Field(default="", max_length=1024)
    team: Annotated[str, Field(max_length=253)] = Field(
        default="", description="Who the budget is for, as the page and metrics show it; empty: the id"
    )
    workloads: BudgetSelector
    caps: Caps
    revision: int = Field(default=0, ge=0, le=2**63 - 1, description="Set by the budget store; 0 for a new budget")

    def with_revision(self, revision: int) -> AIInferenceBudget:
        return self.model_copy(update={"revision": revision})

    @property
    def team_name(self) -> str:
        return self.team or self.id


Budget = AIInferenceBudget
"""The short name used inside the hub."""


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One budget against its caps, in the placement the hub decided (for a dry-run policy: would decide)."""

    budget: Budget
    workloads: tuple[str, ...]
    gpus: dict[str, int]
    """GPUs placed by type, and all types under ``"*"``."""
    cost_per_hour: float
    minimum_gpus: dict[str, int] = field(default_factory=dict)
    """GPUs the workloads' ``min_replicas`` need at least, by capped type (cheapest type they may use)."""
    minimum_cost: float = 0.0

    @property
    def holds_minimums(self) -> bool:
        """Whether the caps leave room for every covered workload's ``min_replicas``."""
        cap = self.budget.caps
        if any(self.minimum_gpus.get(t, 0) > n for t, n in cap.gpus.items()):
            return False
        return cap.cost_per_hour is None or self.minimum_cost <= cap.cost_per_hour + TOLERANCE

    def binding(self) -> list[str]:
        """The caps the placement has reached, as text."""
        cap = self.budget.caps
        out = [f"{n} {'GPUs' if t == ALL_TYPES else t + ' GPUs'}" for t, n in sorted(cap.gpus.items())
               if self.gpus.get(t, 0) >= n]
        if cap.cost_per_hour is not None and self.cost_per_hour >= cap.cost_per_hour - 0.01:
            out.append(f"{cap.cost_per_hour:g} USD/h")
        return out
