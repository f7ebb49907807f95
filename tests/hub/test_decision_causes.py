"""Every cause the engine gives, from real engine runs, and the decision metric's label for it.

Each case drives the real ``Engine`` with crafted cluster reports until the cause occurs, then
builds the hub's ``Decision`` as the evaluator does (the audit attached) and reads the label the
metric would count it under.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.decisions.log import Decision
from hub.metrics import REASON_CLASSES, HubMetrics, reason_class
from hub.policy.advice import WorkloadAdvice
from hub.policy.cause import Cause
from hub.policy.engine import Recommendation
from tests.hub.policy.fleet import Cluster, Fleet, policy
from tests.hub.test_metrics import value

QUEUE = [{"metric": "queue_per_replica", "target": 5}]
NO_WINDOW = {"scale_down": {"stabilization_window_seconds": 0}}
IDLE = {"requests_waiting": 0, "request_rate_per_s": 0.0, "prompt_tokens_per_s": 0.0, "generation_tokens_per_s": 0.0}
ZERO = {"enabled": True, "idle_seconds": 60, "activation_threshold": 0}
RATE = [{"metric": "request_rate_per_replica", "target": 1.0}]
FAST_UP = {"scale_up": {"policies": [{"type": "Pods", "value": 100, "period_seconds": 15}]},
           "scale_down": {"stabilization_window_seconds": 0}}


def signal() -> Recommendation:
    return Fleet([Cluster("a", samples={"requests_waiting": 30})]).evaluate(policy(QUEUE), now=0)


def bounds() -> Recommendation:
    return Fleet([Cluster("a", samples={"requests_waiting": 30})]).evaluate(
        policy(QUEUE, bounds={"min_replicas": 1, "max_replicas": 3}), now=0)


def stabilised() -> Recommendation:
    fleet = Fleet([Cluster("a", desired=4, ready=4, samples={"requests_waiting": 20})])
    fleet.evaluate(policy(QUEUE), now=0)
    fleet.clusters[0].samples = {"requests_waiting": 0}
    return fleet.evaluate(policy(QUEUE), now=10)


def rate_limited() -> Recommendation:
    return Fleet([Cluster("a", samples={"requests_waiting": 100})]).evaluate(
        policy(QUEUE, panic={"enabled": False}), now=0)


def panic() -> Recommendation:
    return Fleet([Cluster("a", samples={"requests_waiting": 100})]).evaluate(policy(QUEUE), now=0)


def forecast() -> Recommendation:
    p = policy(RATE, behavior=FAST_UP, panic={"enabled": False}, prediction={"enabled": True, "horizon_seconds": 180})
    fleet = Fleet([Cluster("a", samples={})])
    rec = None
    for t in range(600):
        r = 0.01 * t
        fleet.clusters[0].samples = {"request_rate_per_s": r, "prompt_tokens_per_s": 100 * r,
                                     "generation_tokens_per_s": 10 * r, "requests_waiting": 0}
        rec = fleet.evaluate(p, now=float(t))
    assert rec is not None
    return rec


def starting() -> Recommendation:
    return Fleet([Cluster("a", desired=4, ready=2, samples={"requests_waiting": 0})]).evaluate(policy(QUEUE), now=0)


def fallback() -> Recommendation:
    p = policy(QUEUE, fallback={"failure_threshold": 2, "replicas": 5})
    fleet = Fleet([Cluster("a", samples={"missing_reasons": {"*": "exporter down"}})])
    fleet.evaluate(p, now=0)
    return fleet.evaluate(p, now=1)


def zero() -> Recommendation:
    p = policy(QUEUE, bounds={"min_replicas": 0, "max_replicas": 10}, scale_to_zero=ZERO, behavior=NO_WINDOW)
    fleet = Fleet([Cluster("a", desired=1, ready=1, samples=IDLE)])
    fleet.evaluate(p, now=0)
    return fleet.evaluate(p, now=60)


def activation() -> Recommendation:
    p = policy(QUEUE, bounds={"min_replicas": 0, "max_replicas": 10}, scale_to_zero=ZERO)
    return Fleet([Cluster("a", desired=0, ready=0, samples={**IDLE, "requests_waiting": 12})]).evaluate(p, now=0)


def missing_data() -> Recommendation:
    return Fleet([Cluster("a", samples={})]).evaluate(policy(QUEUE), now=0)


def partial_missing() -> Recommendation:
    # b has ready replicas but no queue reading; a's says fewer are needed: no scale-down.
    return Fleet([Cluster("a", samples={"requests_waiting": 0}), Cluster("b", samples={})]).evaluate(
        policy(QUEUE), now=0)


def cost_ceiling() -> Recommendation:
    # H100 at $10/h a replica, $35/h at most: 3 replicas, whatever the queue asks.
    return Fleet([Cluster("a", samples={"requests_waiting": 30})]).evaluate(
        policy(QUEUE, bounds={"min_replicas": 1, "max_replicas": 40, "max_cost_per_hour": 35},
               placement={"prices": {"*": {"H100": 10.0}}}), now=0)


def advice() -> Recommendation:
    # GPUs busy (4 by utilisation), queue short (1): bounded advice of 3 is inside every rail.
    p = policy([{"metric": "gpu_utilization", "target": 50}, *QUEUE], panic={"enabled": False},
               advisor={"mode": "bounded", "endpoint": "http://llm:8000/v1"})
    given = WorkloadAdvice(replicas=3, age_s=1.0, policy_id="llama", answered_at="t")
    return Fleet([Cluster("a", samples={"gpu_util": 1.0, "requests_waiting": 2})]).evaluate(
        p, now=0, advice={"inference/llama": given})


CASES: list[tuple[Callable[[], Recommendation], Cause, str | None, str]] = [
    (signal, Cause.SIGNAL, "queue_per_replica", "queue_per_replica"),
    (bounds, Cause.BOUNDS, "queue_per_replica", "bounds"),
    (stabilised, Cause.STABILISED, "queue_per_replica", "stabilisation"),
    (rate_limited, Cause.RATE_LIMITED, "queue_per_replica", "rate_limited"),
    (panic, Cause.PANIC, "queue_per_replica", "panic"),
    (forecast, Cause.FORECAST, "request_rate_per_replica", "forecast"),
    (starting, Cause.STARTING, "queue_per_replica", "starting"),
    (fallback, Cause.FALLBACK, None, "fallback"),
    (zero, Cause.ZERO, "queue_per_replica", "zero"),
    (activation, Cause.ACTIVATION, None, "activation"),
    (missing_data, Cause.MISSING_DATA, None, "missing_data"),
    (partial_missing, Cause.MISSING_DATA, None, "missing_data"),
    (cost_ceiling, Cause.COST_CEILING, "queue_per_replica", "cost_ceiling"),
    (advice, Cause.ADVICE, "gpu_utilization", "advice"),
]


def decision(rec: Recommendation) -> Decision:
    """The hub's decision record for a recommendation, as the evaluator builds it."""
    assert rec.audit is not None
    return Decision(workload=rec.workload_key, policy_id=rec.policy.id, policy_revision=rec.policy.revision,
                    mode=rec.policy.mode, current_replicas=rec.current_replicas,
                    desired_replicas=rec.desired_replicas, reason=rec.reason, inputs=dict(rec.inputs),
                    placement_before={}, placement_after={}, audit=rec.audit.to_json())


@pytest.mark.parametrize(("run", "cause", "deciding", "label"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_cause_from_a_real_engine_run_gets_its_own_label(
    run: Callable[[], Recommendation], cause: Cause, deciding: str | None, label: str
) -> None:
    rec = run()
    assert rec.cause is cause, rec.reason
    assert rec.deciding_signal == deciding
    doc = rec.audit.to_json() if rec.audit else {}
    assert doc["cause"] == cause.value and doc["deciding_signal"] == deciding
    assert label in REASON_CLASSES
    assert reason_class(decision(rec)) == label


def test_every_cause_has_a_label_and_the_counter_uses_it() -> None:
    assert {reason_class(decision(run())) for run, *_ in CASES} >= {
        "queue_per_replica", "bounds", "stabilisation", "rate_limited", "panic", "forecast", "starting", "fallback",
        "zero", "activation", "missing_data"}
    metrics = HubMetrics()
    metrics.count_decision(decision(panic()))
    assert value(metrics, "fleetscale_hub_decisions_total", action="scale_up", reason="panic", mode="enforce") == 1


def test_the_text_of_a_rate_limit_no_longer_decides_its_label() -> None:
    # The old text rules read "queue_per_replica=100 ... rate-limited to 6" as the queue signal.
    d = decision(rate_limited())
    assert d.reason.startswith("queue_per_replica=") and reason_class(d) == "rate_limited"
