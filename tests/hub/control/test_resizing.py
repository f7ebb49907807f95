"""Which workloads get resized, and how (hub.control.resizing, hub.policy.vertical.changes_due)."""

from __future__ import annotations

from typing import Any

from hub.control.resizing import Resizer
from hub.policy.model import Policy
from hub.policy.vertical import ResourceHistory, changes_due
from hub.state import FleetState
from shared.messages import ContainerUsage, Samples, WorkloadReport
from tests.hub.factories import node, report, workload

GI = 2.0**30
DAY = 86_400.0
KEY = "inference/llama"


def engine(pod: str = "llama-0", **fields: Any) -> ContainerUsage:
    base = {"cpu_request_cores": 8.0, "memory_request_bytes": 64 * GI, "memory_limit_bytes": 64 * GI}
    return ContainerUsage(pod=pod, container="engine", gpu_type="H100", **(base | fields))


def with_containers(w: WorkloadReport, *containers: ContainerUsage) -> WorkloadReport:
    return w.model_copy(update={"samples": Samples(containers=containers)})


def history_of(days: float) -> ResourceHistory:
    """A week-long (or ``days``-long) history: CPU 1-2 cores, memory 6 GiB, one sample a minute."""
    history = ResourceHistory()
    w = workload()
    for minute in range(int(days * 24 * 60)):
        usage = engine(cpu_cores=1.0 + (minute % 10) / 10, memory_bytes=6 * GI)
        history.observe("eu", with_containers(w, usage), minute * 60.0)
    return history


def policy(apply: bool = True, mode: str = "enforce") -> Policy:
    return Policy.model_validate({"id": "p", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                                  "signals": [{"metric": "queue_per_replica", "target": 4}],
                                  "resources": {"apply": apply}, "mode": mode})


def snapshot_with(*clusters: tuple[str, WorkloadReport]) -> Any:
    state = FleetState()
    for cid, w in clusters:
        state.ingest(report(cid, [w], [node("H100", 4)]), now=0.0)
    return state.snapshot(now=0.0)


def test_an_over_provisioned_container_is_due_after_enough_history() -> None:
    recs = history_of(7).recommend(KEY)
    [change] = changes_due(recs, [engine()], "H100")
    rec = recs[0]
    assert change.cpu_request_cores == rec.proposal.cpu_request_cores and change.cpu_request_cores < 3
    assert change.memory_request_bytes is not None and change.memory_request_bytes >= 6 * GI
    assert change.memory_floor_bytes == 6 * GI  # the observed peak travels as the spoke's floor
    assert change.memory_limit_bytes == change.memory_request_bytes  # the old 1:1 ratio kept


def test_with_little_history_the_bounds_are_too_wide_to_move_anything() -> None:
    # VPA's confidence: an hour of samples makes the upper bound ~24 x the p95, far above 8 cores.
    assert changes_due(history_of(1 / 24).recommend(KEY), [engine()], "H100") == ()


def test_a_request_inside_the_bounds_is_left_alone() -> None:
    recs = history_of(7).recommend(KEY)
    rec = recs[0]
    inside = engine(cpu_request_cores=rec.cpu_cores.target, memory_request_bytes=rec.proposal.memory_request_bytes,
                    memory_limit_bytes=rec.proposal.memory_limit_bytes)
    assert changes_due(recs, [inside], "H100") == ()


def test_one_cluster_at_a_time_and_only_when_settled_and_asked() -> None:
    history = history_of(7)
    resizer = Resizer(history, deadline_s=60.0, settle_s=300.0)
    both = snapshot_with(("a", with_containers(workload(), engine())), ("b", with_containers(workload(), engine())))
    view = both.workloads[KEY]
    assert resizer.plan(both, [(policy(apply=False), view, 2)], now=0.0) == []
    assert resizer.plan(both, [(policy(mode="dry-run"), view, 2)], now=0.0) == []
    [(decision, command)] = resizer.plan(both, [(policy(), view, 2)], now=0.0)
    assert command.cluster_id == "a" and command.replicas_by_gpu_type == {} and command.resources
    assert decision.cause == "resources" and decision.commands == [command.command_id]
    assert decision.desired_replicas == decision.current_replicas == 2
    assert decision.audit is not None and decision.audit["resources"]["cluster"] == "a"
    assert resizer.plan(both, [(policy(), view, 2)], now=100.0) == []  # the first one's rollout settles
    [(_, later)] = resizer.plan(both, [(policy(), view, 2)], now=400.0)
    assert later.cluster_id == "a"  # its report still shows the old request: asked again, not b yet
    rolling = snapshot_with(("a", with_containers(workload(variants={"H100": (2, 1)}), engine())))
    assert Resizer(history, deadline_s=60.0).plan(rolling, [(policy(), rolling.workloads[KEY], 2)], now=0.0) == []


def test_a_cluster_already_resized_is_skipped_for_the_next() -> None:
    history = history_of(7)
    rec = history.recommend(KEY)[0]
    done = engine(cpu_request_cores=rec.cpu_cores.target, memory_request_bytes=rec.proposal.memory_request_bytes,
                  memory_limit_bytes=rec.proposal.memory_limit_bytes)
    snap = snapshot_with(("a", with_containers(workload(), done)), ("b", with_containers(workload(), engine())))
    [(_, command)] = Resizer(history, deadline_s=60.0).plan(snap, [(policy(), snap.workloads[KEY], 2)], now=0.0)
    assert command.cluster_id == "b"
