"""Approvals: decisions of ``mode: approval`` policies wait here for an operator, then go out as usual.

The evaluator proposes a decision that would send commands (``propose``) instead of sending them;
the API approves or rejects it by id (``approve``, ``reject``). Approval sends exactly that
decision's placement through the ordinary path: the commands are built by the dispatcher against
the fleet as it is now (so nothing already running or already asked is sent again, and each command
gets a fresh deadline), the approved record naming them is journalled first, and only then are they
published. The spoke checks them as any other command.

It never re-plans: the count and placement were decided by the engine and the placement solver,
within the policy's bounds and the behaviour's rate limits, when the decision was made. So a
decision may only be approved while it is the workload's latest recommendation under the same
policy revision: one that expired, was superseded, or whose policy changed answers ``NotPending``
and nothing is sent. Once sent, the engine's rate limits count the change (``take_applied``).

``lock`` serialises an approval with the evaluator's bookkeeping and decisions (not its solve), and
``approved_since`` tells an evaluation that planned before an approval was sent to leave that
workload to the next one: it would otherwise propose the approved change again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.control.dispatch import Dispatcher
from hub.decisions.approvals import ApprovalBook, NotPending, Recommendation
from hub.decisions.journal import DecisionJournal
from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore
from hub.policy.model import Policy
from hub.state import FleetState, Placement
from shared.messages import RoutingRule, ScaleCommand

logger = logging.getLogger(__name__)


class NotJournalled(Exception):
    """The approved record could not be stored, so nothing was sent; the decision is still pending: retry."""


@dataclass(frozen=True, slots=True)
class Applied:
    """An approved change, for the engine's rate-limit memory (``Engine.record_applied``)."""

    workload: str
    policy: Policy
    current: int
    desired: int
    at: float
    """Monotonic time, as the engine's evaluations read it."""


def placement_of(decision: Decision) -> Placement:
    """A record's ``placement_after`` keyed back by ``(cluster, gpu_type)``."""
    out: Placement = {}
    for key, n in decision.placement_after.items():
        cluster, _, gpu_type = key.partition("/")
        out[(cluster, gpu_type)] = n
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)


class Approvals:
    def __init__(
        self,
        *,
        state: FleetState,
        policies: PolicyStore,
        dispatcher: Dispatcher | None,
        decisions: DecisionLog,
        metrics: HubMetrics,
        journal: DecisionJournal | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.state = state
        self.policies = policies
        self.dispatcher = dispatcher
        """None only for an API without an evaluator (tests): nothing is ever proposed there."""
        self.decisions = decisions
        self.metrics = metrics
        self.journal = journal
        self.clock = clock
        self.book = ApprovalBook()
        self.lock = asyncio.Lock()
        self._applied: list[Applied] = []
        self._approved_at: dict[str, float] = {}
        """Workload -> when (monotonic) its last approval was sent, until an evaluation planned after it."""

    # --- the evaluator's side (called with ``lock`` held) ------------------------------------------

    def propose(self, draft: Decision, policy: Policy) -> Decision | None:
        """Make ``draft`` the workload's pending decision; the new record for the evaluator to log, or
        None when it is the same recommendation as the pending (or recently rejected) one."""
        records = self.book.propose(draft, ttl_s=policy.approval.ttl_s, now=self.clock())
        if not records:
            return None
        self._log(records[:-1])  # sets the pending gauge, the new draft already in the book
        return records[-1]

    def known(self, workload: str, asked: Recommendation) -> bool:
        """Whether the recommendation is the one already waiting (or rejected and held back)."""
        return self.book.known(workload, asked, now=self.clock())

    def withdraw(self, workload: str, why: str) -> None:
        """The workload's newer recommendation needs no approval (no change, a failover sent at once, or
        its policy left approval mode): its pending decision, if any, is superseded."""
        settled = self.book.withdraw(workload, why=why, now=self.clock())
        if settled is not None:
            self._log([settled])

    def expire(self) -> set[str]:
        """Expire what is due; the workloads whose pending decision expired (to be planned again)."""
        expired = self.book.expire(self.clock())
        self._log(expired)
        return {d.workload for d in expired}

    def approved_since(self, workload: str, planned_at: float) -> bool:
        """Whether the workload was approved at or after ``planned_at`` (monotonic): an evaluation that
        planned before it would propose the approved change again."""
        at = self._approved_at.get(workload)
        if at is not None and at < planned_at:
            del self._approved_at[workload]  # every later evaluation planned after it too
            return False
        return at is not None

    def take_applied(self) -> list[Applied]:
        out, self._applied = self._applied, []
        return out

    def restore(self) -> None:
        """At start, after the history is read back: its pending decisions wait again (or expire)."""
        self._log(self.book.restore(self.decisions.recent(limit=max(len(self.decisions), 1)), now=self.clock()))
        if len(self.book):
            logger.info("%d decisions read back still wait for approval", len(self.book))

    # --- the operator's side -------------------------------------------------------------------------

    def pending(self) -> list[Decision]:
        return self.book.pending()

    async def approve(self, decision_id: str, *, by: str | None, comment: str | None = None) -> Decision:
        """Send the pending decision's commands. Raises ``KeyError`` (no such decision), ``NotPending``
        (why it cannot be approved any more) or ``NotJournalled`` (nothing sent; it stays pending)."""
        async with self.lock:
            now = self.clock()
            decision = self._take(decision_id, now)
            policy = self._policy_of(decision, now)
            commands = self._commands(decision, policy)
            assert decision.approval is not None
            approved = decision.with_approval(decision.approval.settled("approved", at=now, by=by, comment=comment))
            approved = approved.model_copy(update={
                "commands": [c.command_id for c in commands], "notes": [*approved.notes, *self._notes(commands)]})
            await self._journal(approved, commands)
            self.book.settle(decision, "approved", now=now, by=by, comment=comment)
            self._log([approved])
            approved = await self._send(approved, commands)
            self._approved_at[decision.workload] = time.monotonic()
            if commands:
                self._applied.append(Applied(decision.workload, policy, decision.current_replicas,
                                             decision.desired_replicas, time.monotonic()))
            logger.info("decision %s for %s approved by %s: %d commands", decision.id, decision.workload, by,
                        len(commands))
            return approved

    async def reject(self, decision_id: str, *, by: str | None, comment: str | None = None) -> Decision:
        """Settle the pending decision as rejected: nothing is sent, and the same recommendation is not
        proposed again for the policy's ``approval.ttl_s``."""
        async with self.lock:
            now = self.clock()
            decision = self._take(decision_id, now)
            policy = self.policies.get(decision.policy_id)
            hold_s = policy.approval.ttl_s if policy is not None else 0.0
            rejected = self.book.settle(decision, "rejected", now=now, by=by, comment=comment, hold_s=hold_s)
            self._log([rejected])
            logger.info("decision %s for %s rejected by %s", decision.id, decision.workload, by)
            return rejected

    def _take(self, decision_id: str, now: datetime) -> Decision:
        self._log(self.book.expire(now))  # one whose time is up expires now, whoever asks first
        return self.book.take(decision_id, known=self.decisions.get(decision_id))

    def _notes(self, commands: list[ScaleCommand]) -> list[str]:
        if not commands or self.dispatcher is None:
            return ["approved: nothing to send, the clusters already run or were already asked for this placement"]
        return [n for c in commands if (n := self.dispatcher.notes.pop(c.command_id, None))]

    def _policy_of(self, decision: Decision, now: datetime) -> Policy:
        """The decision's policy, still at the revision and in the mode it was decided under."""
        policy = self.policies.get(decision.policy_id)
        if policy is None or policy.revision != decision.policy_revision or policy.mode != "approval":
            why = ("its policy was deleted" if policy is None else
                   f"its policy changed since (revision {decision.policy_revision} -> {policy.revision}, "
                   f"mode {policy.mode})")
            settled = self.book.settle(decision, "superseded", now=now, comment=why)
            self._log([settled])
            raise NotPending(settled, "policy_changed")
        return policy

    def _commands(self, decision: Decision, policy: Policy) -> list[ScaleCommand]:
        snapshot = self.state.snapshot(only={decision.workload})
        view = snapshot.workloads.get(decision.workload)
        if view is None or self.dispatcher is None:
            return []  # no fresh cluster reports it: nothing can be asked
        routing = tuple(RoutingRule.model_validate(r) for r in decision.routing)
        return self.dispatcher.commands_for(snapshot, view, policy, placement_of(decision), decision.reason, routing)

    async def _journal(self, approved: Decision, commands: list[ScaleCommand]) -> None:
        """Store the approved record before any of its commands goes out (as the evaluator does)."""
        if self.journal is None or not commands:
            return
        if approved.id not in await self.journal.store([approved]):
            assert self.dispatcher is not None  # (commands were built by it)
            for c in commands:
                self.dispatcher.withdraw(c.command_id)
            raise NotJournalled(f"decision {approved.id} could not be stored; nothing was sent; retry")

    async def _send(self, approved: Decision, commands: list[ScaleCommand]) -> Decision:
        if not commands or self.dispatcher is None:
            return approved
        sent = set(await self.dispatcher.send(commands))
        unconfirmed = [c for c in approved.commands if c not in sent]
        if not unconfirmed:
            return approved
        noted = approved.model_copy(update={"notes": [*approved.notes, (
            f"not confirmed by NATS (bus unavailable), so they may or may not be delivered: "
            f"{', '.join(unconfirmed)}")]})
        self.decisions.add(noted)
        return noted

    def _log(self, records: Iterable[Decision]) -> None:
        for record in records:
            self.decisions.add(record)
            if record.approval is not None and record.approval.state != "pending":
                self.metrics.approvals.labels(record.approval.state).inc()
        self._gauge()

    def _gauge(self) -> None:
        self.metrics.approvals_pending.set(len(self.book))
