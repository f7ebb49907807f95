from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

from hub.control.dispatch import Dispatcher, cluster_targets
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetState, Intent
from shared import subjects
from shared.errors import BusUnavailable
from shared.messages import CommandResult, ResultReason, ResultStatus, ScaleCommand, WorkloadRef
from tests.hub.factories import T0, node, report, workload

KEY = "inference/llama"
REF = WorkloadRef(namespace="inference", name="llama")


def state_with_applied_intent(replicas_seen: int, seen_at_offset_s: float) -> FleetState:
    """The hub asked for 4 and the spoke applied it at T0+10s; a report sent at T0+offset shows `replicas_seen`."""
    s = FleetState()
    s.record_intent(KEY, "a", Intent("c1", {"H100": 4}, T0, time.monotonic()))
    s.record_result(CommandResult(command_id="c1", cluster_id="a", workload=WorkloadRef(namespace="inference",
                                  name="llama"), status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                                  observed_replicas_by_gpu_type={"H100": 4}, completed_at=T0 + timedelta(seconds=10)))
    w = workload(variants={"H100": (replicas_seen, replicas_seen)})
    s.ingest(report("a", [w], [node("H100", 4)], sent_at=T0 + timedelta(seconds=seen_at_offset_s)), now=1.0)
    return s


def needs(s: FleetState, target: dict[str, int]) -> bool:
    snap = s.snapshot(now=1.0)
    d = Dispatcher(None, s, DecisionLog(), HubMetrics(), deadline_s=60)  # type: ignore[arg-type]
    return d.needs_command(snap, snap.workloads[KEY], "a", target)


def test_an_applied_ask_stands_until_a_report_read_after_it_arrives() -> None:
    # The report predates the result: it cannot show the new count yet, so no second command.
    assert not needs(state_with_applied_intent(1, seen_at_offset_s=5), {"H100": 4})


def test_drift_after_an_applied_command_is_corrected() -> None:
    # A report read after the result shows 1 (someone scaled it by hand): telemetry is the truth.
    s = state_with_applied_intent(1, seen_at_offset_s=20)
    assert s.snapshot(now=1.0).live_intent(KEY, "a") is None
    assert needs(s, {"H100": 4})
    # ...and once telemetry shows what we want, nothing is sent.
    assert not needs(state_with_applied_intent(4, seen_at_offset_s=20), {"H100": 4})


def test_gpu_types_a_cluster_leaves_are_set_to_zero() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"H100": (2, 2), "L4": (1, 1)})], [node("H100", 4)]), now=1.0)
    view = s.snapshot(now=1.0).workloads[KEY]
    assert cluster_targets({("a", "L4"): 3}, view) == {"a": {"H100": 0, "L4": 3}}


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list[ScaleCommand] = []

    async def publish_command(self, command: ScaleCommand) -> None:
        self.sent.append(command)


POLICY = Policy.model_validate({"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                                "bounds": {"min_replicas": 1, "max_replicas": 8},
                                "signals": [{"metric": "queue_per_replica", "target": 2}]})


def _age_intent(s: FleetState, seconds: float) -> None:
    intent = s.intent(KEY, "a")
    assert intent is not None
    s.record_intent(KEY, "a", dataclasses.replace(intent, sent_monotonic=time.monotonic() - seconds))


def _apply_and_drift(s: FleetState, at_s: float) -> None:
    """The spoke applies the hub's latest command, then reports the old count (1) again."""
    intent = s.intent(KEY, "a")
    assert intent is not None
    s.record_result(CommandResult(command_id=intent.command_id, cluster_id="a", workload=REF,
                                  status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                                  completed_at=T0 + timedelta(seconds=at_s)))
    s.ingest(report("a", [workload(variants={"H100": (1, 1)})], [node("H100", 4)],
                    sent_at=T0 + timedelta(seconds=at_s + 5)))


async def test_a_target_the_cluster_drops_again_and_again_is_re_sent_with_exponential_back_off() -> None:
    s = state_with_applied_intent(1, seen_at_offset_s=20)  # asked 4, applied, and the cluster shows 1
    bus = RecordingBus()
    metrics = HubMetrics()
    d = Dispatcher(bus, s, DecisionLog(), metrics, deadline_s=60,  # type: ignore[arg-type]
                   drift_backoff_base_s=5, drift_backoff_cap_s=300)

    async def tick() -> list[ScaleCommand]:
        snap = s.snapshot(now=1.0)  # (the reports were taken in at "1.0")
        commands = d.commands_for(snap, snap.workloads[KEY], POLICY, {("a", "H100"): 4}, "queue")
        await d.send(commands)
        return commands

    # Before: a new command every tick (23 in 25 s). Now the first re-send waits 5 s...
    assert await tick() == []
    _age_intent(s, 6)
    [first] = await tick()
    assert first.replicas_by_gpu_type == {"H100": 4}
    assert "drift: a applied {'H100': 4} but reports {'H100': 1}; re-sent (attempt 2)" in d.notes[first.command_id]
    assert metrics.drift_resends.labels("a")._value.get() == 1
    # ...the next one 10 s, then 20 s: it doubles while the cluster keeps dropping the target.
    _apply_and_drift(s, 30)
    _age_intent(s, 6)
    assert await tick() == []
    _age_intent(s, 11)
    assert len(await tick()) == 1
    assert s.intent(KEY, "a").attempts == 3  # type: ignore[union-attr]
    _apply_and_drift(s, 60)
    _age_intent(s, 19)
    assert await tick() == []
    _age_intent(s, 21)
    assert len(await tick()) == 1
    assert metrics.drift_resends.labels("a")._value.get() == 3
    assert len(bus.sent) == 3


async def test_a_command_whose_publish_is_not_confirmed_leaves_the_previous_intent_and_stays_in_the_ledger() -> None:
    # Not confirmed may still be delivered (nats-py sends a publish it buffered while reconnecting
    # once the server is back): its result must count. The hub used to forget it, and refuse the
    # result of a command its cluster had applied as "unknown_command".
    class DownBus:
        async def publish_command(self, command: ScaleCommand) -> None:
            raise BusUnavailable("down", delay_s=1.0)

    s = FleetState()
    s.ingest(report("a", [workload(variants={"H100": (1, 1)})], [node("H100", 4)]), now=1.0)
    d = Dispatcher(DownBus(), s, DecisionLog(), HubMetrics(), deadline_s=60)  # type: ignore[arg-type]
    snap = s.snapshot(now=1.0)
    [command] = d.commands_for(snap, snap.workloads[KEY], POLICY, {("a", "H100"): 3}, "queue")
    assert await d.send([command]) == []
    assert s.intent(KEY, "a") is None  # decided again next tick
    assert d.ledger.answers(CommandResult(command_id=command.command_id, cluster_id="a", workload=REF,
                                              status=ResultStatus.APPLIED, reason=ResultReason.APPLIED))


def test_results_are_refused_unless_they_answer_a_command_sent_to_their_subjects_cluster() -> None:
    s = state_with_applied_intent(1, seen_at_offset_s=5)  # the hub's intent: c1 for llama on a
    d = Dispatcher(None, s, DecisionLog(), HubMetrics(), deadline_s=60)  # type: ignore[arg-type]

    def res(command_id: str, cluster: str, **kw: object) -> CommandResult:
        return CommandResult.model_validate({"command_id": command_id, "cluster_id": cluster, "workload": REF,
                                             "status": "applied", "reason": "applied"} | kw)

    assert d.refusal(subjects.results("a"), res("c1", "a")) is None
    assert d.refusal(subjects.results("b"), res("c1", "a")) == "subject_mismatch"
    assert d.refusal(subjects.results("a"), res("never-sent", "a")) == "unknown_command"
    assert d.refusal(subjects.results("b"), res("c1", "b")) == "unknown_command"  # c1 went to a
    future = datetime.now(UTC) + timedelta(days=1)
    assert d.refusal(subjects.results("a"), res("c1", "a", completed_at=future)) == "future"
