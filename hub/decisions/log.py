"""Decision records: what the hub decided for a workload, why, and what came of it.

Each record follows a decision from inputs to per-signal proposal, to the bounded desired count,
to the placement and the commands sent, and collects the command results as they arrive. It is the
audit trail the API serves. The log is bounded in memory; every change to a record is handed to its
listeners, among them the journal (``hub/decisions/journal.py``), which makes the history durable.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

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

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """The inverse of ``to_json`` (``action`` is derived, so it is ignored); raises ``ValidationError``."""
        return _DECISION.validate_python(data)

    @property
    def clusters(self) -> set[str]:
        """Every cluster this decision placed on, took from, or heard back from."""
        out = {key.split("/", 1)[0] for key in (*self.placement_before, *self.placement_after)}
        out.update(r["cluster_id"] for r in self.results.values() if "cluster_id" in r)
        return out


_DECISION: TypeAdapter[Decision] = TypeAdapter(Decision)


class DecisionLog:
    def __init__(self, size: int = 2000) -> None:
        self._size = size
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        self._by_command: dict[str, str] = {}
        self.latest: dict[str, Decision] = {}
        self.listeners: list[Callable[[Decision], None]] = []
        """Called on every add and every attached result (the live feed, the journal); must not raise or block."""

    def add(self, decision: Decision) -> None:
        self._decisions[decision.id] = decision
        self.latest[decision.workload] = decision
        for cid in decision.commands:
            self._by_command[cid] = decision.id
        while len(self._decisions) > self._size:
            _, old = self._decisions.popitem(last=False)
            for cid in old.commands:
                self._by_command.pop(cid, None)
        for listener in self.listeners:
            listener(decision)

    def restore(self, decisions: Iterable[Decision]) -> None:
        """Add records read back from storage, oldest first, without telling the listeners: they are
        history, not news (the journal would store them again, a live feed would show them as new)."""
        listeners, self.listeners = self.listeners, []
        try:
            for decision in decisions:
                self.add(decision)
        finally:
            self.listeners = listeners

    def attach_result(self, result: CommandResult) -> Decision | None:
        decision_id = self._by_command.get(result.command_id)
        decision = self._decisions.get(decision_id) if decision_id else None
        if decision is not None:
            decision.results[result.command_id] = result.model_dump(mode="json")
            for listener in self.listeners:
                listener(decision)
        return decision

    def recent(
        self,
        *,
        workload: str | None = None,
        limit: int = 100,
        cluster: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Decision]:
        """Newest first; ``since`` is inclusive and ``until`` exclusive (aware datetimes)."""
        out = []
        for d in reversed(self._decisions.values()):
            if workload is not None and d.workload != workload:
                continue
            if since is not None and d.at < since:
                continue
            if until is not None and d.at >= until:
                continue
            if cluster is not None and cluster not in d.clusters:
                continue
            out.append(d)
            if len(out) >= limit:
                break
        return out

    def get(self, decision_id: str) -> Decision | None:
        return self._decisions.get(decision_id)

    def __len__(self) -> int:
        return len(self._decisions)


def placement_json(placement: dict[tuple[str, str], int]) -> dict[str, int]:
    return {f"{c}/{g}": n for (c, g), n in sorted(placement.items())}
