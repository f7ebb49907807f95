"""The hub's trust rules without a bus: admission, the bounded inbox, the ledger of issued commands."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import generate_latest

from hub.control.admission import Admission
from hub.control.inbox import Inbox
from hub.control.intake import Intake
from hub.control.ledger import IssuedCommands
from hub.decisions.log import Decision
from hub.metrics import HubMetrics
from hub.state import FleetState
from shared import subjects
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import T0, node, report, workload


def intake(state: FleetState | None = None, **admission: object) -> Intake:
    state = state or FleetState()
    rules = Admission(**({"allowed": None, "max_clusters": 3, "max_workloads": 4, "max_clock_skew_s": 30.0,
                          "stale_after_intervals": 3.0} | admission))  # type: ignore[arg-type]
    return Intake(None, state, HubMetrics(), rules, clock=lambda: T0 + timedelta(seconds=1))  # type: ignore[arg-type]


def offer(i: Intake, cluster: str, *, sent_at_s: float = 1.0, workloads: int = 1) -> bool:
    r = report(cluster, [workload(f"w{n}") for n in range(workloads)], [node("H100", 4)],
               sent_at=T0 + timedelta(seconds=sent_at_s))
    return i.accept(subjects.telemetry(cluster), r)


def refused(i: Intake, kind: str, reason: str) -> float:
    return i.metrics.refused.labels(kind, reason)._value.get()


def test_a_report_from_the_future_is_refused_and_counted_never_held() -> None:
    i = intake()
    assert not offer(i, "a", sent_at_s=3600 * 24 * 365 * 70)  # sent_at: 2096
    assert refused(i, "telemetry", "future") == 1
    assert offer(i, "a")  # the correct report that follows is taken
    assert offer(i, "a", sent_at_s=25)  # within the skew window: fine


def test_a_report_already_too_old_to_be_fresh_is_refused() -> None:
    i = intake()
    assert not offer(i, "a", sent_at_s=-40)  # 30 s skew + 3 × 1 s interval
    assert refused(i, "telemetry", "too_old") == 1


def test_out_of_order_reports_are_counted() -> None:
    i = intake()
    assert offer(i, "a", sent_at_s=2)
    assert not offer(i, "a", sent_at_s=1)
    assert refused(i, "telemetry", "out_of_order") == 1


def test_clusters_beyond_the_bound_are_refused_until_one_is_forgotten() -> None:
    i = intake()
    assert all(offer(i, c) for c in ("a", "b", "c"))
    assert not offer(i, "d")
    assert refused(i, "telemetry", "cluster_limit") == 1
    assert offer(i, "a", sent_at_s=2)  # a known cluster keeps reporting
    # "b" and "c" fall silent: after the retention they are forgotten, with their metric series.
    i.retention_s = 10.0
    i.state._reports["b"] = (i.state._reports["b"][0], -100.0)
    i.state._reports["c"] = (i.state._reports["c"][0], -100.0)
    assert b'cluster="b"' in generate_latest(i.metrics.registry)
    assert sorted(i.prune(now=0.0)) == ["b", "c"]
    assert b'cluster="b"' not in generate_latest(i.metrics.registry)
    assert offer(i, "d")
    assert i.state.cluster_count == 2


def test_the_allow_list_admits_only_named_clusters() -> None:
    i = intake(allowed=frozenset({"a"}))
    assert offer(i, "a")
    assert not offer(i, "b")
    assert refused(i, "telemetry", "not_allowed") == 1


def test_workloads_beyond_the_bound_are_cut_from_the_report_and_counted() -> None:
    i = intake()
    assert offer(i, "a", workloads=3)
    assert offer(i, "b", workloads=6)  # w0..w2 are known; w3 fits; w4, w5 do not
    assert i.state.workload_count == 4
    assert refused(i, "workload", "workload_limit") == 2
    kept = i.state.snapshot().clusters["b"].report.workloads
    assert sorted(w.workload.name for w in kept) == ["w0", "w1", "w2", "w3"]


def test_a_mismatched_subject_is_counted_as_malformed() -> None:
    i = intake()
    r = report("a", [], [], sent_at=T0)
    assert not i.accept(subjects.telemetry("b"), r)
    assert i.malformed == 1


def test_the_inbox_keeps_one_slot_per_admitted_cluster_and_bounds_the_rest() -> None:
    drops: list[str] = []
    box = Inbox(admitted=lambda c: c == "good", capacity=3, capacity_bytes=1 << 20, on_drop=drops.append)
    for n in range(100):
        box.put(subjects.telemetry("good"), b"%d" % n)
        box.put(subjects.telemetry(f"forged-{n}"), b"x")
    assert len(box) == 4  # the newest good report and the 3 newest others
    assert drops.count("superseded") == 99 and drops.count("queue_full") == 97
    taken = [box.take() for _ in range(4)]
    assert (subjects.telemetry("good"), b"99") in taken
    assert box.take() is None


def test_the_inbox_bounds_bytes_too() -> None:
    drops: list[str] = []
    box = Inbox(admitted=lambda c: False, capacity=1000, capacity_bytes=1000, on_drop=drops.append)
    for n in range(10):
        box.put(subjects.telemetry(f"c{n}"), b"x" * 300)
    assert len(box) == 3 and drops == ["queue_full"] * 7


REF = WorkloadRef(namespace="inference", name="llama")


def result(command_id: str, cluster: str, name: str = "llama") -> CommandResult:
    return CommandResult(command_id=command_id, cluster_id=cluster, workload=WorkloadRef(namespace="inference",
                         name=name), status=ResultStatus.APPLIED, reason=ResultReason.APPLIED)


def test_the_ledger_knows_which_cluster_and_workload_each_command_went_to() -> None:
    ledger = IssuedCommands(capacity=2)
    ledger.add("c1", "a", "inference/llama")
    assert ledger.answers(result("c1", "a"))
    assert not ledger.answers(result("c1", "b"))  # another cluster
    assert not ledger.answers(result("c1", "a", name="other"))  # another workload
    assert not ledger.answers(result("never-sent", "a"))
    ledger.add("c2", "a", "inference/llama")
    ledger.add("c3", "a", "inference/llama")
    assert not ledger.answers(result("c1", "a"))  # bounded: the oldest is forgotten


def test_the_ledger_is_rebuilt_from_the_decision_history() -> None:
    d = Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="enforce", current_replicas=1,
                 desired_replicas=2, reason="r", inputs={}, placement_before={"a/H100": 1},
                 placement_after={"a/H100": 1, "b/L4": 1}, commands=["c9"])
    ledger = IssuedCommands()
    ledger.restore([d])
    assert ledger.answers(result("c9", "b")) and not ledger.answers(result("c9", "z"))
