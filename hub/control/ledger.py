"""The ledger of issued commands: which command ids the hub sent, to which cluster, for which workload.

A result counts only if it answers one of them. Without this check a result for a command id the
hub never sent was counted as applied, and a result could claim any cluster. The ledger is bounded
(``HUB_ISSUED_COMMANDS_KEPT``, the oldest forgotten first); the hub's current intents are checked
as well, so the command a workload waits on is never forgotten.

After a restart the ledger is rebuilt from the decision history (every command is journalled before
it is sent): a restored command is known by its decision's workload and the clusters the decision
placed on or took from, since the record does not say which of them each command went to.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from hub.decisions.log import Decision
from shared.messages import CommandResult


@dataclass(frozen=True, slots=True)
class Issued:
    workload: str
    clusters: frozenset[str]


class IssuedCommands:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._issued: OrderedDict[str, Issued] = OrderedDict()

    def __len__(self) -> int:
        return len(self._issued)

    def add(self, command_id: str, cluster_id: str, workload: str) -> None:
        self._put(command_id, Issued(workload, frozenset((cluster_id,))))

    def restore(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            clusters = frozenset(d.clusters)
            for command_id in d.commands:
                self._put(command_id, Issued(d.workload, clusters))

    def answers(self, result: CommandResult) -> bool:
        """Whether ``result`` answers a command the hub issued to its cluster for its workload."""
        issued = self._issued.get(result.command_id)
        return issued is not None and issued.workload == result.workload.key and result.cluster_id in issued.clusters

    def _put(self, command_id: str, issued: Issued) -> None:
        self._issued[command_id] = issued
        self._issued.move_to_end(command_id)
        while len(self._issued) > self.capacity:
            self._issued.popitem(last=False)
