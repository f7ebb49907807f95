from __future__ import annotations

import time
from datetime import timedelta

from hub.control.dispatch import Dispatcher, cluster_targets
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.state import FleetState, Intent
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import T0, node, report, workload

KEY = "inference/llama"


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
