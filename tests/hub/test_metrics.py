"""The hub's metrics, read back from the registry's exposition (what Prometheus would scrape)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hub.control.dispatch import Dispatcher
from hub.control.tick import Evaluator
from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import REASON_CLASSES, HubMetrics, reason_class, slo_attainment_estimate
from hub.policy.engine import Engine
from hub.policy.model import Policy
from hub.state import FleetState, Intent
from shared.messages import CommandResult, Percentiles, ResultReason, ResultStatus, Samples, WorkloadRef
from tests.hub.factories import T0, FixedPolicies, node, report, workload

KEY = "inference/llama"
PRICES = {"H100": 12.0, "L4": 0.8}


def samples(metrics: HubMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed (name, labels)."""
    text = generate_latest(metrics.registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: HubMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def names(metrics: HubMetrics, name: str) -> list[dict[str, str]]:
    return [dict(labels) for n, labels in samples(metrics) if n == name]


# --- the SLO attainment estimator ---------------------------------------------------------------------


def test_attainment_is_exact_at_the_reported_percentiles_and_linear_between() -> None:
    ttft = Percentiles(p50_s=0.2, p95_s=0.6, p99_s=1.0)
    assert slo_attainment_estimate(ttft, 0.2) == pytest.approx(0.50)
    assert slo_attainment_estimate(ttft, 0.6) == pytest.approx(0.95)
    assert slo_attainment_estimate(ttft, 0.4) == pytest.approx(0.725)  # halfway between p50 and p95
    assert slo_attainment_estimate(ttft, 0.8) == pytest.approx(0.97)


def test_attainment_beyond_the_highest_percentile_is_a_lower_bound_and_below_p50_starts_at_zero() -> None:
    ttft = Percentiles(p50_s=0.2, p95_s=0.6, p99_s=1.0)
    assert slo_attainment_estimate(ttft, 5.0) == pytest.approx(0.99)  # not 1.0: the last 1 % is unknown
    assert slo_attainment_estimate(ttft, 0.1) == pytest.approx(0.25)
    assert slo_attainment_estimate(Percentiles(p95_s=0.6), 2.0) == pytest.approx(0.95)


def test_attainment_with_missing_or_crossing_percentiles() -> None:
    assert slo_attainment_estimate(Percentiles(), 1.0) is None  # nothing measured: missing, not 0 or 1
    only_p99 = Percentiles(p99_s=2.0)
    assert slo_attainment_estimate(only_p99, 1.0) == pytest.approx(0.495)
    crossing = Percentiles(p50_s=0.5, p95_s=0.4, p99_s=1.0)  # p95 < p50 from different estimators
    assert slo_attainment_estimate(crossing, 0.5) == pytest.approx(0.95)
    assert slo_attainment_estimate(crossing, 0.45) == pytest.approx(0.45)


# --- decisions by action, reason class and mode ---------------------------------------------------------


def policy(*, min_replicas: int = 1, max_replicas: int = 10, window_s: int = 300, ttft_s: float | None = None,
           mode: str = "enforce") -> Policy:
    signal = {"metric": "queue_per_replica", "target": 5} if ttft_s is None else {"metric": "ttft", "target": ttft_s}
    return Policy.model_validate({"mode": mode,
        "id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
        "signals": [signal],
        "bounds": {"min_replicas": min_replicas, "max_replicas": max_replicas},
        "behavior": {"scale_down": {"stabilization_window_seconds": window_s}},
        "scale_to_zero": {"enabled": min_replicas == 0},
    })


def engine_decision(variants: dict[str, tuple[int, int]], waiting: float | None, *, before: float | None = None,
                    **kw: object) -> Decision:
    """A decision carrying the real engine's reason text for this report (after one with ``before`` waiting)."""
    state = FleetState()
    engine = Engine()
    if before is not None:
        state.ingest(report("a", [workload(variants=variants, waiting=before)], [node("H100", 8)]), now=90.0)
        engine.evaluate(state.snapshot(now=90.0), [policy(**kw)])
    state.ingest(report("a", [workload(variants=variants, waiting=waiting)], [node("H100", 8)], seq=1), now=100.0)
    (rec,) = engine.evaluate(state.snapshot(now=100.0), [policy(**kw)])
    return Decision(workload=KEY, policy_id="llama", policy_revision=1, mode=rec.policy.mode,
                    current_replicas=rec.current_replicas, desired_replicas=rec.desired_replicas, reason=rec.reason,
                    inputs={}, placement_before={}, placement_after={},
                    audit=None if rec.audit is None else rec.audit.to_json())


@pytest.mark.parametrize(("variants", "waiting", "kw", "expected"), [
    ({"H100": (2, 2)}, 30.0, {}, "queue_per_replica"),
    ({"H100": (2, 2)}, 30.0, {"max_replicas": 3}, "bounds"),
    ({"H100": (2, 2)}, None, {}, "missing_data"),
    ({"H100": (2, 2)}, None, {"min_replicas": 3}, "bounds"),  # the hold was moved by min_replicas
    ({"H100": (4, 2)}, 0.0, {}, "starting"),
    # The HPA's stabilisation needs a higher recommendation inside the window: 4 was recommended 10 s ago.
    ({"H100": (4, 4)}, 0.0, {"before": 20.0}, "stabilisation"),
])
def test_engine_reasons_fall_into_the_fixed_classes(
    variants: dict[str, tuple[int, int]], waiting: float | None, kw: dict[str, object], expected: str
) -> None:
    assert reason_class(engine_decision(variants, waiting, **kw)) == expected


def test_placement_only_changes_are_rebalance_or_failover_and_unknown_text_is_other() -> None:
    d = Decision(workload=KEY, policy_id="p", policy_revision=1, mode="enforce", current_replicas=2,
                 desired_replicas=2, reason="queue_per_replica=4 vs target 4", inputs={},
                 placement_before={"a/H100": 2}, placement_after={"b/L4": 2})
    assert reason_class(d) == "rebalance"
    d = d.model_copy(update={"notes": ["stale clusters excluded, their share re-placed: a"]})
    assert reason_class(d) == "failover"
    d = d.model_copy(update={"placement_after": d.placement_before,
                             "reason": "a reason nobody wrote a class for: 'x'=3"})
    assert reason_class(d) == "other"


def test_decisions_are_counted_by_action_reason_and_mode_with_bounded_labels() -> None:
    metrics = HubMetrics()
    up = engine_decision({"H100": (2, 2)}, 30.0)
    dry = engine_decision({"H100": (2, 2)}, 30.0, mode="dry-run", max_replicas=3)
    # Not a mode the model accepts, forced past validation: the label still stays bounded.
    odd = engine_decision({"H100": (2, 2)}, 30.0).model_copy(update={"mode": "something-new"})
    for d in (up, dry, odd):
        metrics.count_decision(d)
    assert value(metrics, "fleetscale_hub_decisions_total", action="scale_up", reason="queue_per_replica",
                 mode="enforce") == 1
    assert value(metrics, "fleetscale_hub_decisions_total", action="scale_up", reason="bounds", mode="dry-run") == 1
    for labels in names(metrics, "fleetscale_hub_decisions_total"):
        assert labels["reason"] in REASON_CLASSES and labels["mode"] in ("enforce", "dry-run", "other")


# --- per-workload gauges from the evaluator's tick -------------------------------------------------------


def fleet(ttft: Percentiles) -> FleetState:
    """Cluster a runs 2 H100 replicas and measures TTFT; cluster b runs 1 L4 replica and measures nothing."""
    state = FleetState()
    h100 = workload(variants={"H100": (2, 2)}, gpr=2)
    h100 = h100.model_copy(update={"samples": Samples(requests_waiting=2.0, ttft=ttft, request_rate_per_s=10.0)})
    state.ingest(report("a", [h100], [node("H100", 8)]))
    state.ingest(report("b", [workload(variants={"L4": (1, 1)}, waiting=None, gpr=2)], [node("L4", 8)]))
    return state


def evaluator(state: FleetState, *policies: Policy) -> Evaluator:
    metrics, decisions = HubMetrics(), DecisionLog()
    dispatcher = Dispatcher(None, state, decisions, metrics, deadline_s=60)  # type: ignore[arg-type]  # dry-run sends nothing
    return Evaluator(state=state, policies=FixedPolicies(*policies), dispatcher=dispatcher,  # type: ignore[arg-type]
                     decisions=decisions, metrics=metrics, prices=PRICES, tick_s=1.0)


async def test_a_tick_publishes_replicas_cost_and_slo_gauges_for_each_workload() -> None:
    ttft = Percentiles(p50_s=0.2, p95_s=0.6, p99_s=1.0)
    ev = evaluator(fleet(ttft), policy(mode="dry-run", ttft_s=0.4))
    (decision,) = await ev.tick()
    m = ev.metrics
    # Dry-run: the hub would place more replicas (TTFT 0.6 s against 0.4 s); the clusters run what they ran.
    assert decision.mode == "dry-run" and decision.desired_replicas == 5
    wanted = {(d["cluster"], d["gpu_type"]): value(m, "fleetscale_hub_desired_replicas", **d)
              for d in names(m, "fleetscale_hub_desired_replicas")}
    # Growth goes where load is cheapest: an H100 replica serves ~34x an L4 one (hub.placement.throughput)
    # for 15x its price. The running L4 stays until the new H100s are ready (make before break).
    assert wanted == {("a", "H100"): 4, ("b", "L4"): 1}
    assert value(m, "fleetscale_hub_current_replicas", workload=KEY, cluster="a", gpu_type="H100") == 2
    assert value(m, "fleetscale_hub_ready_replicas", workload=KEY, cluster="b", gpu_type="L4") == 1
    # Cost: replicas x GPUs per replica x USD per GPU-hour.
    assert value(m, "fleetscale_hub_gpu_cost_usd_per_hour", workload=KEY, cluster="a", gpu_type="H100") == 48.0
    assert value(m, "fleetscale_hub_gpu_cost_usd_per_hour", workload=KEY, cluster="b", gpu_type="L4") == 1.6
    assert value(m, "fleetscale_hub_desired_gpu_cost_usd_per_hour", workload=KEY, cluster="a", gpu_type="H100") \
        == pytest.approx(96.0)
    # The SLO view: p95 against the objective, and the estimated attainment.
    assert value(m, "fleetscale_hub_ttft_p95_seconds", workload=KEY, cluster="a") == 0.6
    assert value(m, "fleetscale_hub_ttft_slo_seconds", workload=KEY) == 0.4
    assert value(m, "fleetscale_hub_slo_attainment_ratio", workload=KEY, cluster="a") == pytest.approx(0.725)
    assert value(m, "fleetscale_hub_slo_attainment_ratio", workload=KEY, cluster="b") is None  # b measured nothing
    assert value(m, "fleetscale_hub_request_rate_per_second", workload=KEY, cluster="a") == 10.0
    assert value(m, "fleetscale_hub_policy_info", workload=KEY, policy="llama", mode="dry-run") == 1
    assert value(m, "fleetscale_hub_decisions_total", action="scale_up", reason="ttft_p95", mode="dry-run") == 1


async def test_series_that_leave_the_frame_are_removed_not_left_at_their_last_value() -> None:
    state = fleet(Percentiles(p95_s=0.6))
    ev = evaluator(state, policy(mode="dry-run", ttft_s=0.4))
    await ev.tick()
    assert value(ev.metrics, "fleetscale_hub_current_replicas", workload=KEY, cluster="b", gpu_type="L4") == 1
    # Cluster b's last report arrived long ago (it is stale now), and the policy switches to a queue
    # target, which declares no TTFT objective.
    b = report("b", [workload(variants={"L4": (1, 1)}, waiting=None)], [node("L4", 8)], seq=1)
    state.ingest(b, now=time.monotonic() - 100)
    ev.policies = FixedPolicies(policy(mode="dry-run"))  # type: ignore[assignment]
    revoked: list[str] = []

    async def revoke(clusters: Iterable[str]) -> None:  # this dispatcher has no bus to purge
        revoked.extend(clusters)

    ev.dispatcher.revoke = revoke  # type: ignore[method-assign]
    await ev.tick()
    assert revoked == ["b"]  # b's queued commands are taken back as it is lost
    m = ev.metrics
    assert value(m, "fleetscale_hub_cluster_losses_total", cluster="b") == 1
    assert value(m, "fleetscale_hub_current_replicas", workload=KEY, cluster="b", gpu_type="L4") is None
    assert value(m, "fleetscale_hub_current_replicas", workload=KEY, cluster="a", gpu_type="H100") == 2
    assert names(m, "fleetscale_hub_ttft_slo_seconds") == []
    assert names(m, "fleetscale_hub_slo_attainment_ratio") == []


def test_command_latency_is_labelled_by_cluster() -> None:
    state, metrics = FleetState(), HubMetrics()
    state.record_intent(KEY, "a", Intent("c1", {"H100": 4}, T0, time.monotonic() - 0.3))
    Dispatcher(None, state, DecisionLog(), metrics, deadline_s=60).on_result(CommandResult(  # type: ignore[arg-type]
        command_id="c1", cluster_id="a", workload=WorkloadRef(namespace="inference", name="llama"),
        status=ResultStatus.APPLIED, reason=ResultReason.APPLIED, completed_at=T0 + timedelta(seconds=1)))
    assert value(metrics, "fleetscale_hub_command_latency_seconds_count", cluster="a") == 1
    assert value(metrics, "fleetscale_hub_command_latency_seconds_bucket", cluster="a", le="0.25") == 0
    assert value(metrics, "fleetscale_hub_command_latency_seconds_bucket", cluster="a", le="0.5") == 1
    assert value(metrics, "fleetscale_hub_command_results_total", cluster="a", status="applied", reason="applied") == 1


async def test_exposition_passes_promtool_check_metrics_and_uses_one_prefix() -> None:
    ev = evaluator(fleet(Percentiles(p50_s=0.2, p95_s=0.6)), policy(ttft_s=0.4, mode="dry-run"))
    await ev.tick()
    text = generate_latest(ev.metrics.registry)
    lint = await asyncio.create_subprocess_exec("promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(lint.communicate(text), 30)
    assert lint.returncode == 0, out.decode()
    assert all(f.name.startswith("fleetscale_hub_") for f in text_string_to_metric_families(text.decode()))
    assert value(ev.metrics, "fleetscale_hub_malformed_messages_total", kind="result") == 0  # starts at 0


def test_the_infeasible_rate_is_a_gauge_per_workload_absent_when_unknown_and_forgotten_with_it() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    m = HubMetrics(registry)
    name = "fleetscale_hub_infeasible_requests_per_second"
    m.set_infeasible("inference/rag", 0.25)
    m.set_infeasible("inference/chat", None)
    assert registry.get_sample_value(name, {"workload": "inference/rag"}) == 0.25
    assert registry.get_sample_value(name, {"workload": "inference/chat"}) is None  # not estimated: absent
    m.forget_workloads({"inference/chat"})
    assert registry.get_sample_value(name, {"workload": "inference/rag"}) is None
