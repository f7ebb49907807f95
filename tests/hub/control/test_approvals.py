"""Approval mode through the evaluator: nothing is sent until an operator approves, then exactly that
decision goes out, journalled first; rejected, expired, superseded and stale decisions send nothing.

Real fleet state, the real planner and dispatcher; the bus and the journal are recorders."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.control.approvals import NotJournalled
from hub.control.changes import moved
from hub.control.dispatch import Dispatcher
from hub.control.tick import Evaluator
from hub.decisions.approvals import NotPending
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetState
from shared.messages import ScaleCommand
from tests.hub.factories import FixedPolicies, node, report, workload

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Bus:
    def __init__(self) -> None:
        self.sent: list[ScaleCommand] = []

    async def publish_command(self, command: ScaleCommand) -> None:
        self.sent.append(command)


class Journal:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.stored: list[tuple[str, int]] = []
        """(decision id, commands already on the bus when it was stored)."""
        self.fail = False

    async def store(self, decisions: list[Any]) -> set[str]:
        if self.fail:
            return set()
        self.stored += [(d.id, len(self.bus.sent)) for d in decisions]
        return {d.id for d in decisions}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def policy(revision: int = 1, **kw: Any) -> Policy:
    return Policy.model_validate({
        "id": "w", "targets": {"workloads": [{"namespace": "inference", "name": "w"}]},
        "signals": [{"metric": "queue_per_replica", "target": 5}], "mode": "approval",
        "bounds": {"min_replicas": 1, "max_replicas": 40}, "panic": {"enabled": False},
        "approval": {"ttl_s": 60}, **kw,
    }).with_revision(revision)


class World:
    def __init__(self, *policies: Policy) -> None:
        self.state = FleetState(moved=moved)
        self.bus, self.clock = Bus(), Clock()
        self.journal = Journal(self.bus)
        self.metrics, self.decisions = HubMetrics(), DecisionLog()
        self.policies = FixedPolicies(*policies)
        dispatcher = Dispatcher(self.bus, self.state, self.decisions, self.metrics, deadline_s=60)  # type: ignore[arg-type]
        self.ev = Evaluator(state=self.state, policies=self.policies, dispatcher=dispatcher,  # type: ignore[arg-type]
                            decisions=self.decisions, metrics=self.metrics, prices={"H100": 12.0}, tick_s=1.0,
                            sweep_s=1000.0, journal=self.journal)  # type: ignore[arg-type]
        self.approvals = self.ev.approvals
        self.approvals.clock = self.clock
        self.seq = 0

    def load(self, waiting: float) -> None:
        self.seq += 1
        self.state.ingest(report("a", [workload("w", waiting=waiting)], [node("H100", 80)], seq=self.seq))

    def outcomes(self) -> dict[str, float]:
        return {o: self.metrics.approvals.labels(o)._value.get()
                for o in ("approved", "rejected", "expired", "superseded")}

    def pending_gauge(self) -> float:
        return self.metrics.approvals_pending._value.get()


async def test_a_decision_waits_for_approval_then_sends_exactly_its_commands_once() -> None:
    w = World(policy())
    w.load(40.0)  # 2 replicas, 20 waiting each: wants 8
    (decision,) = await w.ev.evaluate(tick=True)
    assert decision.mode == "approval" and decision.commands == [] and decision.approval is not None
    assert decision.approval.state == "pending" and decision.approval.expires_at == T0 + timedelta(seconds=60)
    assert w.bus.sent == [] and w.journal.stored == [] and w.pending_gauge() == 1
    assert w.approvals.pending() == [decision]
    assert await w.ev.evaluate(tick=True) == []  # the same recommendation: not news, still nothing sent
    assert w.bus.sent == [] and len(w.approvals.pending()) == 1

    approved = await w.approvals.approve(decision.id, by="alice", comment="go")
    assert approved.id == decision.id and approved.approval is not None
    assert (approved.approval.state, approved.approval.by, approved.approval.comment, approved.approval.at) == (
        "approved", "alice", "go", T0)
    (command,) = w.bus.sent
    assert approved.commands == [command.command_id] and w.journal.stored == [(decision.id, 0)]  # journal first
    assert dict(command.replicas_by_gpu_type) == {"H100": decision.desired_replicas}
    assert command.policy_id == "w" and command.policy_revision == 1
    assert w.decisions.get(decision.id) == approved and w.pending_gauge() == 0
    assert w.outcomes()["approved"] == 1

    assert await w.ev.evaluate(tick=True) == [] and len(w.bus.sent) == 1  # asked already: nothing new waits
    assert w.approvals.pending() == []
    with pytest.raises(NotPending) as e:
        await w.approvals.approve(decision.id, by="bob")
    assert e.value.reason == "approved" and len(w.bus.sent) == 1


async def test_the_approved_change_counts_in_the_behaviours_rate_limits() -> None:
    # At most 2 pods a minute up: the approved 2 -> 4 uses it up, so the next proposal stays at 4.
    limited = {"behavior": {"scale_up": {"stabilization_window_seconds": 0,
                                         "policies": [{"type": "Pods", "value": 2, "period_seconds": 60}]}}}
    async def next_proposal(approve: bool) -> list[int]:
        w = World(policy(**limited))
        w.load(40.0)
        (decision,) = await w.ev.evaluate(tick=True)
        assert decision.desired_replicas == 4
        if approve:
            await w.approvals.approve(decision.id, by="alice")
        w.seq += 1  # the cluster runs 4 now, and the queue grew
        w.state.ingest(report("a", [workload("w", waiting=80.0, variants={"H100": (4, 4)})], [node("H100", 80)],
                              seq=w.seq))
        await w.ev.evaluate(tick=True)
        return [d.desired_replicas for d in w.approvals.pending()]

    assert await next_proposal(approve=True) == []  # the minute's 2 pods are spent: 4 stands
    assert await next_proposal(approve=False) == [6]  # had nobody approved it, 2 more were allowed


async def test_rejected_sends_nothing_and_the_same_recommendation_stays_rejected() -> None:
    w = World(policy())
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    rejected = await w.approvals.reject(decision.id, by="carol", comment="peak is over")
    assert rejected.approval is not None and (rejected.approval.state, rejected.approval.by) == ("rejected", "carol")
    assert w.decisions.get(decision.id) == rejected and w.outcomes()["rejected"] == 1
    assert await w.ev.evaluate(tick=True) == [] and w.bus.sent == []  # not proposed again at once
    w.clock.now += timedelta(seconds=61)
    (again,) = await w.ev.evaluate(tick=True)  # the hold is over: it is asked again
    assert again.id != decision.id and again.approval is not None and again.approval.state == "pending"
    assert w.bus.sent == []
    with pytest.raises(NotPending) as e:
        await w.approvals.approve(decision.id, by="carol")
    assert e.value.reason == "rejected"


async def test_an_unsettled_decision_expires_unsent_and_is_proposed_afresh() -> None:
    w = World(policy())
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    w.clock.now += timedelta(seconds=60)
    with pytest.raises(NotPending) as e:
        await w.approvals.approve(decision.id, by="alice")
    assert e.value.reason == "expired" and w.bus.sent == []
    expired = w.decisions.get(decision.id)
    assert expired is not None and expired.approval is not None and expired.approval.state == "expired"
    assert w.outcomes()["expired"] == 1 and w.pending_gauge() == 0
    (fresh,) = await w.ev.evaluate(tick=True)
    assert fresh.id != decision.id and w.pending_gauge() == 1
    assert fresh.approval is not None and fresh.approval.expires_at == w.clock.now + timedelta(seconds=60)


async def test_a_newer_recommendation_supersedes_and_a_calm_one_withdraws() -> None:
    w = World(policy(behavior={"scale_up": {"stabilization_window_seconds": 0,
                                            "policies": [{"type": "Pods", "value": 100, "period_seconds": 15}]}}))
    w.load(40.0)
    (first,) = await w.ev.evaluate(tick=True)
    w.load(80.0)
    (second,) = await w.ev.evaluate(tick=False)
    assert second.desired_replicas > first.desired_replicas
    old = w.decisions.get(first.id)
    assert old is not None and old.approval is not None
    assert (old.approval.state, old.approval.superseded_by) == ("superseded", second.id)
    with pytest.raises(NotPending) as e:
        await w.approvals.approve(first.id, by="alice")
    assert e.value.reason == "superseded" and w.bus.sent == []
    w.load(10.0)  # 2 replicas, 5 waiting each: on target, nothing to change
    assert await w.ev.evaluate(tick=False) == []
    withdrawn = w.decisions.get(second.id)
    assert withdrawn is not None and withdrawn.approval is not None and withdrawn.approval.state == "superseded"
    assert withdrawn.approval.comment == "the newer recommendation needs no change"
    assert w.outcomes()["superseded"] == 2 and w.approvals.pending() == [] and w.bus.sent == []


async def test_a_policy_change_makes_the_pending_decision_stale() -> None:
    w = World(policy(revision=1))
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    w.policies.policies = [policy(revision=2)]  # changed; the evaluator has not seen it yet
    with pytest.raises(NotPending) as e:
        await w.approvals.approve(decision.id, by="alice")
    assert e.value.reason == "policy_changed" and w.bus.sent == []
    stale = w.decisions.get(decision.id)
    assert stale is not None and stale.approval is not None and "revision 1 -> 2" in (stale.approval.comment or "")


async def test_switching_the_policy_to_enforce_withdraws_and_sends_as_usual() -> None:
    w = World(policy())
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    w.policies.policies = [policy(revision=2, mode="enforce")]
    (enforced,) = await w.ev.evaluate(tick=True)
    assert enforced.mode == "enforce" and len(w.bus.sent) == 1 and w.approvals.pending() == []
    old = w.decisions.get(decision.id)
    assert old is not None and old.approval is not None and old.approval.state == "superseded"
    assert old.approval.comment == "its policy is in enforce mode now"


async def test_an_approval_that_cannot_be_journalled_sends_nothing_and_stays_pending() -> None:
    w = World(policy())
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    w.journal.fail = True
    with pytest.raises(NotJournalled):
        await w.approvals.approve(decision.id, by="alice")
    assert w.bus.sent == [] and w.approvals.pending() == [decision]
    w.journal.fail = False
    await w.approvals.approve(decision.id, by="alice")
    assert len(w.bus.sent) == 1


async def test_unknown_ids_and_enforce_decisions_cannot_be_settled() -> None:
    w = World(policy(mode="enforce"))
    w.load(40.0)
    (enforced,) = await w.ev.evaluate(tick=True)
    with pytest.raises(KeyError):
        await w.approvals.approve("nope", by="alice")
    with pytest.raises(NotPending) as e:
        await w.approvals.reject(enforced.id, by="alice")
    assert e.value.reason == "not_approval"


async def test_an_approval_is_not_held_up_by_a_solve_nor_proposed_again_by_it() -> None:
    w = World(policy())
    w.load(40.0)
    (decision,) = await w.ev.evaluate(tick=True)
    gate, real = threading.Event(), w.ev.planner.plan

    def slow_plan(*args: Any, **kwargs: Any) -> Any:
        gate.wait(10)  # the solve of a big fleet
        return real(*args, **kwargs)

    w.ev.planner.plan = slow_plan  # type: ignore[method-assign]
    evaluation = asyncio.create_task(w.ev.evaluate(tick=True, full=True))
    await asyncio.sleep(0.1)  # the evaluation took its snapshot and is in the planner
    approved = await asyncio.wait_for(w.approvals.approve(decision.id, by="alice"), 3)  # not after the solve
    assert approved.commands and len(w.bus.sent) == 1
    gate.set()
    # It planned on a fleet without the approved command: it must not propose the same change again.
    assert await evaluation == [] and w.approvals.pending() == []
    assert await w.ev.evaluate(tick=True, full=True) == [] and w.approvals.pending() == []
    assert len(w.bus.sent) == 1
