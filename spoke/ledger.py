"""The command ledger: what this spoke already applied, so commands take effect exactly once.

JetStream delivers at least once: a command whose ack was lost comes back. The ledger remembers the
result of every recent command id (bounded), so a re-delivery re-publishes the same result instead
of applying again, and the issue time of the newest command applied per workload, so an older
command that arrives late cannot undo a newer one. It lives in memory: after a spoke restart only
unacknowledged commands are re-delivered, and applying an absolute replica count twice is harmless.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from shared.messages import CommandResult


class Ledger:
    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._newest: dict[str, tuple[datetime, str]] = {}

    def result_of(self, command_id: str) -> CommandResult | None:
        return self._results.get(command_id)

    def newest_applied(self, workload_key: str) -> tuple[datetime, str] | None:
        return self._newest.get(workload_key)

    def is_superseded(self, workload_key: str, issued_at: datetime, command_id: str) -> bool:
        newest = self._newest.get(workload_key)
        # Ties on issue time are broken by id, so two hubs' commands still have one order.
        return newest is not None and (issued_at, command_id) < newest

    def record(self, result: CommandResult, *, issued_at: datetime, applied: bool) -> None:
        self._results[result.command_id] = result
        self._results.move_to_end(result.command_id)
        while len(self._results) > self._size:
            self._results.popitem(last=False)
        if applied:
            key = result.workload.key
            mark = (issued_at, result.command_id)
            if key not in self._newest or self._newest[key] < mark:
                self._newest[key] = mark
