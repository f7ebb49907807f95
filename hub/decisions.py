"""Decision records: what the hub decided for a workload, why, and what came of it.

Each record follows a decision from inputs to per-signal proposal, to the bounded desired count,
to the placement and the commands sent, and collects the command results as they arrive. It is the
audit trail the API serves; the log is bounded in memory (the durable history is a later issue).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.messages import CommandResult


@dataclass
class Decision:
    workload: str
    policy_id: str
    policy_revision: int
    mode: str
    current_replicas: int
    desired_replicas: int
    reason: str
    inputs: dict[str, Any]
    placement_before: dict[str, int]
    placement_after: dict[str, int]
    unplaced: int = 0
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    """The engine's audit record (hub.policy.audit): inputs -> proposals -> clamps -> desired."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def action(self) -> str:
        if self.desired_replicas > self.current_replicas:
            return "scale_up"
        if self.desired_replicas < self.current_replicas:
            return "scale_down"
        return "rebalance" if self.placement_after != self.placement_before else "hold"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "workload": self.workload,
            "policy_id": self.policy_id,
            "policy_revision": self.policy_revision,
            "mode": self.mode,
            "action": self.action,
            "current_replicas": self.current_replicas,
            "desired_replicas": self.desired_replicas,
            "reason": self.reason,
            "inputs": self.inputs,
            "placement_before": self.placement_before,
            "placement_after": self.placement_after,
            "unplaced": self.unplaced,
            "notes": self.notes,
            "commands": self.commands,
            "results": self.results,
            "audit": self.audit,
        }


class DecisionLog:
    def __init__(self, size: int = 2000) -> None:
        self._size = size
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        self._by_command: dict[str, str] = {}
        self.latest: dict[str, Decision] = {}

    def add(self, decision: Decision) -> None:
        self._decisions[decision.id] = decision
        self.latest[decision.workload] = decision
        for cid in decision.commands:
            self._by_command[cid] = decision.id
        while len(self._decisions) > self._size:
            _, old = self._decisions.popitem(last=False)
            for cid in old.commands:
                self._by_command.pop(cid, None)

    def attach_result(self, result: CommandResult) -> Decision | None:
        decision_id = self._by_command.get(result.command_id)
        decision = self._decisions.get(decision_id) if decision_id else None
        if decision is not None:
            decision.results[result.command_id] = result.model_dump(mode="json")
        return decision

    def recent(self, *, workload: str | None = None, limit: int = 100) -> list[Decision]:
        out = [d for d in reversed(self._decisions.values()) if workload is None or d.workload == workload]
        return out[:limit]

    def get(self, decision_id: str) -> Decision | None:
        return self._decisions.get(decision_id)

    def __len__(self) -> int:
        return len(self._decisions)


def placement_json(placement: dict[tuple[str, str], int]) -> dict[str, int]:
    return {f"{c}/{g}": n for (c, g), n in sorted(placement.items())}
