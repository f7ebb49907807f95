"""Where a command stands (``Intent.phase``), and what each reader of the state makes of it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from hub.control.dispatch import Dispatcher
from hub.control.planner import settled
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.state import FleetState, Intent, Phase
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import T0, node, report, workload

KEY = "inference/llama"
ASKED = {"H100": 4}
DONE_AT = T0 + timedelta(seconds=10)


def result(status: ResultStatus, command_id: str = "c1") -> CommandResult:
    reason = {ResultStatus.APPLIED: ResultReason.APPLIED, ResultStatus.REJECTED: ResultReason.CAPACITY,
              ResultStatus.FAILED: ResultReason.BACKEND_ERROR}[status]
    return CommandResult(command_id=command_id, cluster_id="a", workload=WorkloadRef(namespace="inference",
                         name="llama"), status=status, reason=reason, completed_at=DONE_AT)


def state(status: ResultStatus | None, report_offset_s: float | None, *, report_first: bool = False) -> FleetState:
    """The hub asked cluster a for 4 H100 replicas (it runs 2); the answer is ``status`` (None: none yet),
    completed at T0+10s; a report sent at T0+``report_offset_s`` arrives after the result, or before it
    (``report_first``: the result was read late from its stream)."""
    s = FleetState()
    s.ingest(report("a", [workload(variants={"H100": (2, 2)})], [node("H100", 8)], sent_at=T0), now=1.0)
    s.record_intent(KEY, "a", Intent("c1", ASKED, T0, time.monotonic()))

    def ingest() -> None:
        if report_offset_s is not None:
            s.ingest(report("a", [workload(variants={"H100": (2, 2)})], [node("H100", 8)],
                            sent_at=T0 + timedelta(seconds=report_offset_s)), now=1.0)

    if report_first:
        ingest()
    if status is not None:
        assert s.record_result(result(status)) is not None
    if not report_first:
        ingest()
    return s


# (result, report sent at T0+s after it (None: no report since), report read before the result?) -> phase
PHASES = [
    (None, None, False, Phase.IN_FLIGHT),
    (None, 20, False, Phase.IN_FLIGHT),  # a report without an answer says nothing of the command
    (ResultStatus.APPLIED, None, False, Phase.APPLIED_UNSEEN),
    (ResultStatus.APPLIED, 5, False, Phase.APPLIED_UNSEEN),  # started reading before the apply
    (ResultStatus.APPLIED, 10, False, Phase.SEEN),  # read at the very instant: it shows the result
    (ResultStatus.APPLIED, 20, False, Phase.SEEN),
    (ResultStatus.APPLIED, 20, True, Phase.SEEN),  # the report came first, the result later
    (ResultStatus.APPLIED, 5, True, Phase.APPLIED_UNSEEN),
    (ResultStatus.REJECTED, None, False, Phase.REFUSED),
    (ResultStatus.REJECTED, 20, False, Phase.REFUSED),
    (ResultStatus.FAILED, None, False, Phase.REFUSED),
    (ResultStatus.FAILED, 20, False, Phase.REFUSED),
]


@pytest.mark.parametrize(("status", "offset", "report_first", "phase"), PHASES)
def test_the_phase_of_a_command(status: ResultStatus | None, offset: float | None, report_first: bool,
                                phase: Phase) -> None:
    s = state(status, offset, report_first=report_first)
    assert s.snapshot(now=1.0).intents[(KEY, "a")].phase is phase


# phase -> (live_intent kept, counted as current placement, workload unsettled, same target re-sent at once)
READERS = {
    Phase.IN_FLIGHT: (True, True, True, False),
    Phase.APPLIED_UNSEEN: (True, True, True, False),
    Phase.SEEN: (False, False, False, True),  # telemetry is the truth: it shows 2, so 4 is asked again
    Phase.REFUSED: (True, False, False, False),  # paced: not before retry_after_reject_s
}


@pytest.mark.parametrize(("status", "offset", "report_first", "phase"), PHASES)
def test_every_reader_follows_the_phase(status: ResultStatus | None, offset: float | None, report_first: bool,
                                        phase: Phase) -> None:
    snap = state(status, offset, report_first=report_first).snapshot(now=1.0)
    view = snap.workloads[KEY]
    dispatcher = Dispatcher(None, None, DecisionLog(), HubMetrics(), deadline_s=60)  # type: ignore[arg-type]
    live, current, unsettled, resent = READERS[phase]
    assert (snap.live_intent(KEY, "a") is not None) is live
    assert (snap.current_placement(view) == {("a", "H100"): 4}) is current
    assert settled(snap, view) is not unsettled
    assert dispatcher.needs_command(snap, view, "a", ASKED) is resent


def test_a_refused_command_is_asked_again_after_the_pause() -> None:
    snap = state(ResultStatus.REJECTED, None).snapshot(now=1.0)
    view = snap.workloads[KEY]
    paced = Dispatcher(None, None, DecisionLog(), HubMetrics(), deadline_s=60,  # type: ignore[arg-type]
                       retry_after_reject_s=0.0)
    assert paced.needs_command(snap, view, "a", ASKED)


def test_a_new_command_starts_in_flight_and_a_stale_result_changes_nothing() -> None:
    s = state(ResultStatus.APPLIED, 20)
    s.record_intent(KEY, "a", Intent("c2", {"H100": 6}, T0, time.monotonic()))
    assert s.snapshot(now=1.0).intents[(KEY, "a")].phase is Phase.IN_FLIGHT
    assert s.record_result(result(ResultStatus.APPLIED, command_id="c1")) is None  # superseded
    assert s.record_result(result(ResultStatus.APPLIED, command_id="c2")) is not None
    # The latest report (T0+20) was read after c2's result (T0+10): seen at once.
    assert s.snapshot(now=1.0).intents[(KEY, "a")].phase is Phase.SEEN


def test_a_snapshot_of_some_workloads_is_the_whole_snapshot_cut_to_them() -> None:
    """Looked up per key (not a scan of the fleet), with stale clusters and workloads on several clusters."""
    s = FleetState(stale_after_intervals=3.0)
    s.ingest(report("a", [workload("x"), workload("y", variants={"H100": (2, 1)})], [node("H100", 8)], seq=1),
             now=0.0)
    s.ingest(report("b", [workload("y"), workload("z")], [node("L4", 4), node("A100", 2, name="n2")], seq=1),
             now=9.0)
    s.ingest(report("a", [workload("x", waiting=3.0), workload("y", variants={"H100": (2, 2)})], [node("H100", 8)],
                    seq=2), now=2.0)
    whole = s.snapshot(now=10.0)  # a is stale by now
    assert whole.clusters["a"].stale and not whole.clusters["b"].stale
    for only in ([], ["y"], ["x", "z", "nobody/here"], ["inference/x", "inference/y", "inference/z"]):
        some = s.snapshot(now=10.0, only=only)
        assert some.workloads == {k: v for k, v in whole.workloads.items() if k in only}
        assert some.clusters == whole.clusters
    assert whole.clusters["b"].gpu_types == frozenset({"L4", "A100"}) == whole.clusters["b"].free_gpus().keys()
