from __future__ import annotations

from hub.policy.engine import Engine
from hub.policy.model import Policy
from hub.state import FleetState
from tests.hub.factories import node, report, workload


def policy(metric: str = "queue_per_replica", target: float = 5, *, window_s: int = 0, max_replicas: int = 20,
           **kw: object) -> Policy:
    return Policy.model_validate({"id": "llama",
                                  "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                                  "signals": [{"metric": metric, "target": target}],
                                  "bounds": {"min_replicas": 1, "max_replicas": max_replicas},
                                  "behavior": {"scale_down": {"stabilization_window_seconds": window_s}}, **kw})


def evaluate(state: FleetState, p: Policy, engine: Engine | None = None, now: float = 100.0):
    recs = (engine or Engine()).evaluate(state.snapshot(now=now), [p])
    assert len(recs) == 1
    return recs[0]


def test_queue_target_tracks_waiting_per_replica() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(waiting=40)], [node("H100", 6)]), now=100.0)
    rec = evaluate(s, policy(target=5))
    assert rec.desired_replicas == 8  # ceil(40 / 5)
    assert rec.inputs["queue_per_replica"] == 20  # 40 waiting over 2 ready replicas


def test_missing_signal_holds_instead_of_scaling_down() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(waiting=None)], [node("H100", 6)]), now=100.0)
    rec = evaluate(s, policy())
    assert rec.desired_replicas == 2 and "missing" in rec.reason


def test_within_tolerance_keeps_current() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(ttft_p95=1.05)], [node("H100", 6)]), now=100.0)
    assert evaluate(s, policy("ttft", 1.0)).desired_replicas == 2


def test_ttft_guard_scales_by_the_latency_ratio_at_most_2x_and_gpu_utilisation_uses_the_hpa_ratio() -> None:
    # Latency is not linear in load: without load telemetry to size with, the guard scales the ready
    # replicas by latency / target, capped at 2x (it was the plain HPA ratio, 6, before the capacity model).
    s = FleetState()
    s.ingest(report("a", [workload(ttft_p95=3.0)], [node("H100", 6)]), now=100.0)
    assert evaluate(s, policy("ttft", 1.0)).desired_replicas == 4  # ceil(2 × min(3.0 / 1.0, 2))
    s2 = FleetState()
    s2.ingest(report("a", [workload(gpu_util=0.35)], [node("H100", 6)]), now=100.0)
    assert evaluate(s2, policy("gpu_utilization", 70)).desired_replicas == 1


def test_no_scale_down_while_replicas_are_starting() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"H100": (4, 2)}, waiting=0)], [node("H100", 6)]), now=100.0)
    rec = evaluate(s, policy())
    assert rec.desired_replicas == 4 and "starting" in rec.reason


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    s = FleetState()
    engine = Engine()
    p = policy(window_s=60)
    s.ingest(report("a", [workload(variants={"H100": (4, 4)}, waiting=20)], [node("H100", 4)]), now=100.0)
    assert evaluate(s, p, engine, now=100.0).desired_replicas == 4
    s.ingest(report("a", [workload(variants={"H100": (4, 4)}, waiting=0)], [node("H100", 4)], seq=1), now=110.0)
    assert evaluate(s, p, engine, now=110.0).desired_replicas == 4  # 4 was recommended 10 s ago
    s.ingest(report("a", [workload(variants={"H100": (4, 4)}, waiting=0)], [node("H100", 4)], seq=2), now=170.0)
    assert evaluate(s, p, engine, now=170.0).desired_replicas == 1  # the window has passed


def test_bounds_clamp_the_recommendation() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(waiting=1000)], [node("H100", 6)]), now=100.0)
    rec = evaluate(s, policy(max_replicas=6))
    assert rec.desired_replicas == 6 and "bounded" in rec.reason


def test_stale_cluster_is_excluded_from_current_replicas() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(waiting=10)], [node("H100", 6)]), now=100.0)
    s.ingest(report("b", [workload(variants={"L4": (3, 3)}, waiting=10)], [node("L4", 5)]), now=90.0)
    snap = s.snapshot(now=100.0)
    assert snap.clusters["b"].stale and not snap.clusters["a"].stale
    view = snap.workloads["inference/llama"]
    assert view.desired_replicas == 2 and view.stale_clusters == ("b",)


def test_a_cluster_without_ready_replicas_does_not_block_the_signal() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(waiting=40)], [node("H100", 6)]), now=100.0)
    s.ingest(report("b", [workload(variants={}, waiting=None)], [node("L4", 8)]), now=100.0)
    assert evaluate(s, policy(target=5)).desired_replicas == 8


def test_partly_missing_signal_may_scale_up_but_not_down() -> None:
    up = FleetState()
    up.ingest(report("a", [workload(waiting=40)], [node("H100", 6)]), now=100.0)
    up.ingest(report("b", [workload(variants={"L4": (1, 1)}, waiting=None)], [node("L4", 8)]), now=100.0)
    assert evaluate(up, policy(target=5)).desired_replicas == 8  # ceil(40 known waiting / 5)
    down = FleetState()
    down.ingest(report("a", [workload(waiting=0)], [node("H100", 6)]), now=100.0)
    down.ingest(report("b", [workload(variants={"L4": (1, 1)}, waiting=None)], [node("L4", 8)]), now=100.0)
    rec = evaluate(down, policy(target=5))
    assert rec.desired_replicas == 3 and "no scale-down" in rec.reason
