"""The decision record: what the hub decided for a workload, why, and what came of it.

One pydantic model for the whole path: the evaluator (``hub.control.tick``) makes a ``Decision`` from
the planner's output, and the in-memory log, the journal (JetStream), the API
(``/api/v1/decisions``, ``/api/v1/workloads``' ``last_decision``), the live feed and the page carry
that very model. Its JSON is the model's own (``model_dump_json``, or ``model_dump(mode="json")``
for a dict; ``action`` is a computed field, derived from the counts and placements), the OpenAPI
schema is generated from it, and the journal reads its stored JSON back with
``model_validate_json``: no mirror model, no hand-written serialiser.

A record is frozen. It changes twice in its life, each time into a new record: the evaluator keeps
only the commands that went out (``with_commands``), and each command result is attached as it
arrives (``with_result``); the log swaps the new record in and tells its listeners. So a record the
journal or the feed holds never changes under them while they serialise it.

Inbound JSON tolerates unknown fields (``extra="ignore"``): the stored history of an older hub, with
its ``action`` key, reads back into this model, and one written by a newer hub is not lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from hub.policy.model import Mode
from shared.messages import CommandResult

Action = Literal["scale_up", "scale_down", "rebalance", "hold"]
ApprovalState = Literal["pending", "approved", "rejected", "expired", "superseded"]
"""pending: waits for an operator; the four others are outcomes (``fleetscale_hub_approvals_total``)."""


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _now() -> datetime:
    return datetime.now(UTC)


class Approval(BaseModel):
    """Where a decision of an ``approval`` policy stands: pending, then who settled it, when, and how."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: ApprovalState
    expires_at: AwareDatetime = Field(description="A pending decision not settled by then expires unapplied")
    by: str | None = Field(default=None, description="Who approved or rejected it (the API's authenticated caller)")
    at: AwareDatetime | None = Field(default=None, description="When it left pending")
    comment: str | None = Field(default=None, description="The approver's comment, or why it was superseded")
    superseded_by: str | None = Field(default=None, description="The newer decision that replaced it")

    def settled(self, state: ApprovalState, *, at: datetime, by: str | None = None, comment: str | None = None,
                superseded_by: str | None = None) -> Approval:
        return self.model_copy(update={"state": state, "at": at, "by": by, "comment": comment,
                                       "superseded_by": superseded_by})


class Decision(BaseModel):
    """One decision: inputs → per-signal proposals → bounded desired count → placement → commands and results."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(default_factory=_new_id, description="Also the decision's subject token in the journal")
    at: AwareDatetime = Field(default_factory=_now, description="When the hub decided")
    workload: str = Field(description="namespace/name")
    policy_id: str
    policy_revision: int
    mode: Mode = Field(description="dry-run: recorded, no command sent; approval: sent once an operator approves")
    current_replicas: int = Field(description="The workload's spec.replicas as the engine read it, over fresh clusters")
    desired_replicas: int
    reason: str = Field(description="Why, for people")
    cause: str | None = Field(default=None, description="Which stage of the engine decided the count")
    deciding_signal: str | None = Field(default=None, description="The signal whose proposal decided, if one did")
    inputs: dict[str, Any] = Field(description="The signals' values the engine read, by name")
    placement_before: dict[str, int] = Field(description='Replicas by "cluster/gpu_type" before')
    placement_after: dict[str, int] = Field(description='Replicas by "cluster/gpu_type" decided')
    unplaced: int = Field(default=0, description="Replicas wanted that no offered GPU could take")
    notes: list[str] = Field(default_factory=list, description="Placement's notes: failover, make before break...")
    routing: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The plan's routing rules by prompt-length class (docs/routing.md); empty without request classes")
    commands: list[str] = Field(default_factory=list, description="Ids of the commands sent for it")
    results: dict[str, CommandResult] = Field(
        default_factory=dict, description="Command id -> what became of it; grows as results arrive")
    audit: dict[str, Any] | None = Field(
        default=None, description="The engine's audit record (hub.policy.audit): inputs -> proposals -> clamps")
    approval: Approval | None = Field(
        default=None, description="approval mode: pending, or who approved or rejected it and when (docs/approvals.md)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def action(self) -> Action:
        if self.desired_replicas > self.current_replicas:
            return "scale_up"
        if self.desired_replicas < self.current_replicas:
            return "scale_down"
        return "rebalance" if self.placement_after != self.placement_before else "hold"

    @property
    def clusters(self) -> set[str]:
        """Every cluster this decision placed on, took from, or heard back from."""
        out = {key.split("/", 1)[0] for key in (*self.placement_before, *self.placement_after)}
        out.update(r.cluster_id for r in self.results.values())
        return out

    def with_commands(self, command_ids: Iterable[str]) -> Decision:
        """This record with only these commands (those that were published)."""
        return self.model_copy(update={"commands": list(command_ids)})

    def with_approval(self, approval: Approval) -> Decision:
        return self.model_copy(update={"approval": approval})

    def with_result(self, result: CommandResult) -> Decision:
        """This record with ``result`` attached (a later result for the same command replaces it)."""
        return self.model_copy(update={"results": {**self.results, result.command_id: result}})


def placement_json(placement: dict[tuple[str, str], int]) -> dict[str, int]:
    """A placement keyed ``(cluster, gpu_type)`` as records and views show it: ``"cluster/gpu_type"``, sorted."""
    return {f"{c}/{g}": n for (c, g), n in sorted(placement.items())}
