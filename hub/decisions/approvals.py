"""The approval book: which decisions of ``approval`` policies wait for an operator, and what became of them.

Pure state over decision records (``hub.decisions.model.Decision`` with its ``approval`` field); the
clock is passed in, nothing here does I/O. ``hub.control.approvals`` wraps it with the log, the
journal, the dispatcher and the metrics.

* At most one decision per workload is pending. A newer recommendation that differs (another count,
  another placement, routing, or policy revision) supersedes it: the old record is settled
  ``superseded`` naming the new one, and the new one is pending. The same recommendation again is not
  news: the pending one stays, with its own expiry.
* A pending decision that nobody settles before ``expires_at`` is settled ``expired``.
* A rejected recommendation is not proposed again while the same one keeps coming, for as long as a
  pending decision would have lived (the policy's ``approval.ttl_s``); a different one is proposed at
  once. Otherwise a rejection would come straight back on the next evaluation.
* Settling takes the decision out of the book at once, so an approval that is being dispatched can
  no longer be superseded under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from hub.decisions.model import Approval, ApprovalState, Decision

StaleReason = Literal["expired", "superseded", "approved", "rejected", "policy_changed", "not_approval"]
"""Why a decision cannot be approved or rejected: settled already (the first four), its policy changed
since it was decided (``policy_changed``), or it never waited for approval (``not_approval``)."""


class NotPending(Exception):
    """The decision exists but can no longer be approved or rejected; ``reason`` says why."""

    def __init__(self, decision: Decision, reason: StaleReason) -> None:
        super().__init__(f"decision {decision.id} is {reason}")
        self.decision = decision
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Rejected:
    decision: Decision
    until: datetime


Recommendation = tuple[str, int, int, dict[str, int], list[dict[str, Any]]]
"""What a decision asks for: policy id and revision, desired count, placement after, routing."""


def recommendation(d: Decision) -> Recommendation:
    return d.policy_id, d.policy_revision, d.desired_replicas, d.placement_after, d.routing


class ApprovalBook:
    def __init__(self) -> None:
        self._pending: dict[str, Decision] = {}
        """Workload -> its pending decision."""
        self._ids: dict[str, str] = {}
        """Pending decision id -> its workload."""
        self._rejected: dict[str, _Rejected] = {}
        """Workload -> its last rejected decision, while it still holds back the same recommendation."""

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[Decision]:
        """Every pending decision, oldest first."""
        return sorted(self._pending.values(), key=lambda d: d.at)

    def pending_for(self, workload: str) -> Decision | None:
        return self._pending.get(workload)

    def get(self, decision_id: str) -> Decision | None:
        workload = self._ids.get(decision_id)
        return None if workload is None else self._pending.get(workload)

    def known(self, workload: str, asked: Recommendation, *, now: datetime) -> bool:
        """Whether ``asked`` is not news: the workload's pending decision, or a rejection still holding
        it back. (The evaluator asks before it builds a record that ``propose`` would drop.)"""
        current = self._pending.get(workload)
        if current is not None and recommendation(current) == asked:
            return True
        rejected = self._rejected.get(workload)
        return rejected is not None and now < rejected.until and recommendation(rejected.decision) == asked

    def propose(self, draft: Decision, *, ttl_s: float, now: datetime) -> list[Decision]:
        """Make ``draft`` pending; the records that changed, oldest first ([] when it is not news).

        The list is the superseded pending record (if any), then the new pending one."""
        workload = draft.workload
        if self.known(workload, recommendation(draft), now=now):
            return []
        self._rejected.pop(workload, None)  # a different recommendation, or the hold is over
        current = self._pending.get(workload)
        new = draft.with_approval(Approval(state="pending", expires_at=now + timedelta(seconds=ttl_s)))
        out = []
        if current is not None:
            out.append(self._settle(current, "superseded", now, comment="a newer recommendation replaced it",
                                    superseded_by=new.id))
        self._pending[workload] = new
        self._ids[new.id] = workload
        return [*out, new]

    def withdraw(self, workload: str, *, why: str, now: datetime) -> Decision | None:
        """Supersede the workload's pending decision with no successor (the newer recommendation needs
        no change, or its policy left approval mode); the settled record, or None."""
        current = self._pending.get(workload)
        if current is None:
            return None
        return self._settle(current, "superseded", now, comment=why)

    def expire(self, now: datetime) -> list[Decision]:
        """Settle every pending decision whose time is up as ``expired``; the settled records."""
        due = [d for d in self._pending.values() if d.approval is not None and d.approval.expires_at <= now]
        return [self._settle(d, "expired", now) for d in due]

    def take(self, decision_id: str, *, known: Decision | None = None) -> Decision:
        """The pending decision ``decision_id``, checked to be still approvable now.

        ``known``: its record from the log, to say why it is not pending (``NotPending``); a decision
        found in neither raises ``KeyError``. Call ``expire`` first, so one whose time is up says so."""
        decision = self.get(decision_id)
        if decision is None:
            if known is None:
                raise KeyError(decision_id)
            if known.approval is None:
                raise NotPending(known, "not_approval")
            state = known.approval.state
            # A record still saying pending that the book does not hold was left behind (a restart
            # that could not read it back): a newer evaluation has replaced it.
            raise NotPending(known, "superseded" if state == "pending" else state)
        return decision

    def settle(self, decision: Decision, state: ApprovalState, *, now: datetime, by: str | None = None,
               comment: str | None = None, hold_s: float = 0.0) -> Decision:
        """Settle a pending decision (approved, rejected, or superseded because its policy changed).

        A rejection holds the same recommendation back for ``hold_s``."""
        settled = self._settle(decision, state, now, by=by, comment=comment)
        if state == "rejected":
            self._rejected[decision.workload] = _Rejected(settled, now + timedelta(seconds=hold_s))
        return settled

    def restore(self, decisions: Iterable[Decision], *, now: datetime) -> list[Decision]:
        """Take back the pending decisions of a history read at start, oldest first; the records settled
        meanwhile (expired, or superseded by a newer pending one of the same workload)."""
        out: list[Decision] = []
        for d in sorted(decisions, key=lambda d: d.at):
            if d.approval is None or d.approval.state != "pending":
                continue
            current = self._pending.get(d.workload)
            if current is not None:
                out.append(self._settle(current, "superseded", now, comment="a newer recommendation replaced it",
                                        superseded_by=d.id))
            self._pending[d.workload] = d
            self._ids[d.id] = d.workload
        return out + self.expire(now)

    def _settle(self, decision: Decision, state: ApprovalState, now: datetime, *, by: str | None = None,
                comment: str | None = None, superseded_by: str | None = None) -> Decision:
        if self._pending.get(decision.workload) is decision:
            del self._pending[decision.workload]
        self._ids.pop(decision.id, None)
        assert decision.approval is not None, "only approval decisions are in the book"
        return decision.with_approval(decision.approval.settled(state, at=now, by=by, comment=comment,
                                                                superseded_by=superseded_by))
