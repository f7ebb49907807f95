"""Panic mode, KEDA's fallback, scale to zero and activation, and prediction, through the engine."""

from __future__ import annotations

from tests.hub.policy.fleet import Cluster, Fleet, policy

QUEUE = [{"metric": "queue_per_replica", "target": 5}]
NO_WINDOW = {"scale_down": {"stabilization_window_seconds": 0}}
FAST_UP = {"scale_up": {"policies": [{"type": "Pods", "value": 100, "period_seconds": 15}]},
           "scale_down": {"stabilization_window_seconds": 0}}


def test_panic_jumps_to_the_bursts_proposal_past_the_rate_limit() -> None:
    burst = {"requests_waiting": 100}
    assert Fleet([Cluster("a", samples=burst)]).evaluate(policy(QUEUE, panic={"enabled": False}), now=0) \
        .desired_replicas == 6  # the HPA's default rate: 2 + 4
    rec = Fleet([Cluster("a", samples=burst)]).evaluate(policy(QUEUE), now=0)
    assert rec.desired_replicas == 20 and rec.audit.panic["entered"]
    assert [c.stage for c in rec.audit.clamps] == ["rate-limited", "panic"]


def test_panic_needs_twice_the_ready_capacity() -> None:
    rec = Fleet([Cluster("a", samples={"requests_waiting": 15})]).evaluate(policy(QUEUE), now=0)
    assert rec.desired_replicas == 3 and not rec.audit.panic["panicking"]  # 1.5x is not a burst


def test_no_scale_down_while_panicking_and_back_to_normal_after_a_calm_stable_window() -> None:
    p = policy(QUEUE, behavior=NO_WINDOW)
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 100})])
    fleet.follow(fleet.evaluate(p, now=0))
    fleet.clusters[0].samples = {"requests_waiting": 0}
    held = fleet.evaluate(p, now=30)
    assert held.desired_replicas == 20 and held.audit.panic["panicking"] and "panic" in held.reason
    assert fleet.evaluate(p, now=59).desired_replicas == 20
    calm = fleet.evaluate(p, now=61)
    assert calm.audit.panic["left"] and calm.desired_replicas < 20


def test_fallback_after_n_evaluations_without_any_signal_and_never_down() -> None:
    p = policy(QUEUE, fallback={"failure_threshold": 3, "replicas": 5})
    fleet = Fleet([Cluster("a", samples={"missing_reasons": {"*": "exporter down"}})])
    assert [fleet.evaluate(p, now=t).desired_replicas for t in range(3)] == [2, 2, 5]
    rec = fleet.evaluate(p, now=3)
    assert rec.desired_replicas == 5 and "fallback" in rec.reason
    assert rec.audit.proposals[-1].method == "fallback"
    big = Fleet([Cluster("a", desired=8, ready=8, samples={})])
    assert [big.evaluate(p, now=t).desired_replicas for t in range(4)] == [8, 8, 8, 8]
    fleet.clusters[0].samples = {"requests_waiting": 10}  # a signal is back: the count resets
    fleet.evaluate(p, now=4)
    fleet.clusters[0].samples = {}
    assert fleet.evaluate(p, now=5).desired_replicas == 2  # one failure again, not four: no fallback yet
    assert fleet.engine._memory["inference/llama"].failures == 1


def test_without_fallback_every_signal_missing_holds() -> None:
    fleet = Fleet([Cluster("a", samples={})])
    recs = [fleet.evaluate(policy(QUEUE), now=t) for t in range(6)]
    assert {r.desired_replicas for r in recs} == {2} and "missing" in recs[-1].reason


IDLE = {"requests_waiting": 0, "request_rate_per_s": 0.0, "prompt_tokens_per_s": 0.0, "generation_tokens_per_s": 0.0}
ZERO = {"enabled": True, "idle_seconds": 60, "activation_threshold": 0}


def test_scale_to_zero_only_after_the_idle_period() -> None:
    p = policy(QUEUE, bounds={"min_replicas": 0, "max_replicas": 10}, scale_to_zero=ZERO, behavior=NO_WINDOW)
    fleet = Fleet([Cluster("a", samples=IDLE)])
    first = fleet.evaluate(p, now=0)
    assert first.desired_replicas == 1  # the HPA's proposal is 0; zero waits for the idle period
    fleet.follow(first)
    assert fleet.evaluate(p, now=59).desired_replicas == 1
    gone = fleet.evaluate(p, now=60)
    assert gone.desired_replicas == 0 and "idle" in gone.reason
    busy = Fleet([Cluster("a", samples=IDLE)])
    busy.evaluate(p, now=0)
    busy.clusters[0].samples = {**IDLE, "request_rate_per_s": 0.1}
    busy.evaluate(p, now=30)  # a request: the idle clock starts again
    busy.clusters[0].samples = IDLE
    assert busy.evaluate(p, now=61).desired_replicas == 1


def test_from_zero_the_load_above_the_activation_threshold_wakes_the_workload() -> None:
    p = policy(QUEUE, bounds={"min_replicas": 0, "max_replicas": 10}, scale_to_zero=ZERO)
    asleep = Fleet([Cluster("a", desired=0, ready=0, samples=IDLE)])
    assert asleep.evaluate(p, now=0).desired_replicas == 0
    woken = Fleet([Cluster("a", desired=0, ready=0, samples={**IDLE, "requests_waiting": 12})])
    rec = woken.evaluate(p, now=0)
    assert rec.desired_replicas == 3 and rec.audit.proposals[-1].method == "activation"  # ceil(12 / 5)
    high = {**ZERO, "activation_threshold": 20}
    p_high = policy(QUEUE, bounds={"min_replicas": 0, "max_replicas": 10}, scale_to_zero=high)
    assert Fleet([Cluster("a", desired=0, ready=0, samples={**IDLE, "requests_waiting": 12})]) \
        .evaluate(p_high, now=0).desired_replicas == 0
    trickle = Fleet([Cluster("a", desired=0, ready=0, samples={**IDLE, "request_rate_per_s": 0.2})])
    assert trickle.evaluate(p, now=0).desired_replicas == 1  # a request arriving is enough at threshold 0


def run(p, rates: list[float]):
    fleet = Fleet([Cluster("a", samples={})])
    rec = None
    for t, r in enumerate(rates):
        fleet.clusters[0].samples = {"request_rate_per_s": r, "prompt_tokens_per_s": 100 * r,
                                     "generation_tokens_per_s": 10 * r, "requests_waiting": 0}
        rec = fleet.evaluate(p, now=float(t))
    return rec


RATE = [{"metric": "request_rate_per_replica", "target": 1.0}]


def test_the_forecast_scales_up_ahead_of_a_rising_load() -> None:
    rising = [0.01 * t for t in range(600)]
    reactive = run(policy(RATE, behavior=FAST_UP, panic={"enabled": False}), rising)
    ahead = run(policy(RATE, behavior=FAST_UP, panic={"enabled": False},
                       prediction={"enabled": True, "horizon_seconds": 180}), rising)
    assert reactive.desired_replicas == 6  # ceil(5.99 req/s / 1 per replica)
    assert ahead.desired_replicas > reactive.desired_replicas
    assert ahead.audit.clamps[0].stage == "forecast" and ahead.audit.clamps[0].before == 6
    assert any(p.method == "forecast" for p in ahead.audit.proposals)


def test_the_forecast_never_scales_down() -> None:
    jump = [1.0] * 600 + [10.0] * 5  # the reactive path sees the jump before the forecast's next step
    reactive = run(policy(RATE, behavior=FAST_UP, panic={"enabled": False}), jump)
    ahead = run(policy(RATE, behavior=FAST_UP, panic={"enabled": False},
                       prediction={"enabled": True, "horizon_seconds": 180}), jump)
    forecast = [p.replicas for p in ahead.audit.proposals if p.method == "forecast"]
    assert forecast == [1] and reactive.desired_replicas == 10  # the forecast is far lower...
    assert ahead.desired_replicas == 10 and not any(c.stage == "forecast" for c in ahead.audit.clamps)


def test_replicas_still_starting_are_not_a_burst() -> None:
    # 4 asked, 2 ready, the queue at target: the HPA holds 4, which is 2x the ready replicas; the load
    # itself (10 waiting / 5) needs 2, so this is no panic.
    rec = Fleet([Cluster("a", desired=4, ready=2, samples={"requests_waiting": 10})]).evaluate(policy(QUEUE), now=0)
    assert rec.desired_replicas == 4 and not rec.audit.panic["panicking"] and rec.audit.panic["ratio"] == 1.0


def test_from_zero_below_the_minimum_the_queue_decides_how_many() -> None:
    rec = Fleet([Cluster("a", desired=0, ready=0, samples={"requests_waiting": 20})]).evaluate(policy(QUEUE), now=0)
    assert rec.desired_replicas == 4 and rec.audit.clamps[0].reason == "BelowMinReplicas"  # ceil(20 / 5)
    assert Fleet([Cluster("a", desired=0, ready=0, samples={"requests_waiting": 0})]) \
        .evaluate(policy(QUEUE), now=0).desired_replicas == 1
