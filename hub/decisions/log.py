"""The decision log: the recent decision records in memory, by id, by workload and by command.

Each record (``hub.decisions.model.Decision``) follows a decision from inputs to per-signal proposal,
to the bounded desired count, to the placement and the commands sent, and collects the command
results as they arrive. It is the audit trail the API serves. The log is bounded in memory; every
change to a record (a new frozen record swapped in for the old) is handed to its listeners, among
them the journal (``hub/decisions/journal.py``), which makes the history durable, and the live feed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime

from hub.decisions.model import Decision, placement_json
from shared.messages import CommandResult

__all__ = ["Decision", "DecisionLog", "placement_json"]


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
        """Swap in the record with ``result`` attached (records are frozen) and tell the listeners."""
        decision_id = self._by_command.get(result.command_id)
        decision = self._decisions.get(decision_id) if decision_id else None
        if decision is None:
            return None
        updated = decision.with_result(result)
        self._decisions[updated.id] = updated  # an existing key keeps its place in the order
        if self.latest.get(updated.workload) is decision:
            self.latest[updated.workload] = updated
        for listener in self.listeners:
            listener(updated)
        return updated

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

