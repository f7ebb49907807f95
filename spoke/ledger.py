"""The command ledger: what this spoke already applied, so commands take effect exactly once.

JetStream delivers at least once: a command whose ack was lost comes back. The ledger remembers the
result of every recent command id (bounded), so a re-delivery re-publishes the same result instead
of applying again, and the issue time of the newest command applied per workload, so an older
command that arrives late cannot undo a newer one. It lives in memory: after a spoke restart only
unacknowledged commands are re-delivered, and applying an absolute replica count twice is harmless.

With sharded hubs (docs/operations.md, "Running several hubs") it also keeps the highest fencing
epoch seen per partition lease: a command with a lower epoch comes from a hub that has since lost
that lease, and is refused. NB: in memory too, so a restarted spoke trusts the first epoch it sees
again; the commands a deposed owner could still have queued are bounded by their deadline.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from shared.messages import CommandResult, Fence

MAX_LEASES = 4_096
"""Leases whose epoch is remembered (a hub's partition count is at most 1,024): a flood of made-up
lease names evicts the oldest, it does not grow the spoke's memory."""


class Ledger:
    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._newest: dict[str, tuple[datetime, str]] = {}
        self._epochs: OrderedDict[str, int] = OrderedDict()

    def fenced_by(self, fence: Fence | None) -> int | None:
        """The higher epoch already seen for the command's lease, if there is one (then it is refused)."""
        if fence is None:
            return None
        seen = self._epochs.get(fence.lease)
        return seen if seen is not None and seen > fence.epoch else None

    def saw(self, fence: Fence | None) -> None:
        """Remember a command's epoch (it passed ``fenced_by``): from now on lower ones are refused."""
        if fence is None:
            return
        if self._epochs.get(fence.lease, 0) < fence.epoch:
            self._epochs[fence.lease] = fence.epoch
        self._epochs.move_to_end(fence.lease)
        while len(self._epochs) > MAX_LEASES:
            self._epochs.popitem(last=False)

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
