"""Measured start times in the engine: the estimate per place, and the forecast's horizon."""

from __future__ import annotations

import pytest

from hub.policy.starts import START_PERCENTILE, horizon_s, percentile, start_estimates
from hub.state import WorkloadView
from shared.messages import StartTier, StartTimes, VariantStatus, WorkloadRef, WorkloadReport
from tests.hub.policy.fleet import Cluster, Fleet, policy
from tests.hub.policy.test_engine_overrides import FAST_UP, RATE


def starts(tier: StartTier, *durations: float) -> StartTimes:
    return StartTimes(tier=tier, recent_s=durations, count=len(durations))


def view(**by_cluster: tuple[StartTimes, ...]) -> WorkloadView:
    reports = {
        cid: WorkloadReport(workload=WorkloadRef(namespace="inference", name="llama"), desired_replicas=1,
                            ready_replicas=1,
                            variants=(VariantStatus(gpu_type="L4", desired_replicas=1, ready_replicas=1, starts=s),))
        for cid, s in by_cluster.items()
    }
    return WorkloadView("inference/llama", reports)


def test_nearest_rank_percentile() -> None:
    assert percentile([5.0], 0.9) == 5.0
    assert percentile(range(1, 11), 0.9) == 9  # nine of ten at or below
    assert percentile([1.0, 100.0], 0.9) == 100.0
    with pytest.raises(ValueError):
        percentile([], 0.9)


def test_a_new_replica_is_estimated_over_cold_and_cached_starts_and_woken_ones_are_only_shown() -> None:
    cold = starts(StartTier.COLD, *[200.0] * 2)
    cached = starts(StartTier.CACHED, *[60.0] * 8)
    woken = starts(StartTier.WOKEN, 4.0)
    est = start_estimates(view(east=(cold, cached, woken), west=(woken,)))
    assert list(est) == [("east", "L4")]  # west only woke engines: no new-replica estimate there
    e = est["east", "L4"]
    # Ten starts, two of them cold: the 90th percentile is a cold one.
    assert (e.seconds, e.starts) == (200.0, 10)
    assert e.tiers == {"cold": 200.0, "cached": 60.0, "woken": 4.0}
    assert e.to_json() == {"start_s": 200.0, "starts": 10, "tiers": {"cold": 200.0, "cached": 60.0, "woken": 4.0}}
    assert START_PERCENTILE == 0.9


def test_the_horizon_is_the_configured_one_unless_a_measured_start_is_longer() -> None:
    assert horizon_s(180, {}) == 180 and isinstance(horizon_s(180, {}), int)
    short = start_estimates(view(east=(starts(StartTier.COLD, 90.0),)))
    assert horizon_s(180, short) == 180
    slow = start_estimates(view(east=(starts(StartTier.COLD, 90.0),), west=(starts(StartTier.COLD, 420.0),)))
    assert horizon_s(180, slow) == 420.0


def run(p, rates: list[float], measured: tuple[StartTimes, ...] = ()):
    fleet = Fleet([Cluster("a", samples={}, starts=measured)])
    rec = None
    for t, r in enumerate(rates):
        fleet.clusters[0].samples = {"request_rate_per_s": r, "prompt_tokens_per_s": 100 * r,
                                     "generation_tokens_per_s": 10 * r, "requests_waiting": 0}
        rec = fleet.evaluate(p, now=float(t))
    assert rec is not None
    return rec


def test_a_measured_start_longer_than_the_horizon_makes_the_forecast_look_that_far_ahead() -> None:
    p = policy(RATE, behavior=FAST_UP, panic={"enabled": False}, prediction={"enabled": True, "horizon_seconds": 30})
    rising = [0.01 * t for t in range(600)]
    configured = run(p, rising)
    measured = run(p, rising, (starts(StartTier.COLD, 300.0, 280.0), starts(StartTier.CACHED, 40.0)))

    def forecast(rec):
        return next(x for x in rec.audit.proposals if x.method == "forecast")

    assert forecast(configured).detail["horizon_s"] == 30 and "horizon_from" not in forecast(configured).detail
    assert configured.audit.starts == {} and configured.starts == {}
    assert forecast(measured).detail["horizon_s"] == 300.0
    assert forecast(measured).detail["horizon_from"] == "measured start 300s on a/H100 (policy horizon_seconds 30)"
    # Five minutes of a rise of 0.6 req/s per minute ahead, not half a minute.
    assert forecast(measured).replicas > forecast(configured).replicas
    assert measured.desired_replicas > configured.desired_replicas
    assert measured.audit.to_json()["starts"] == {
        "a/H100": {"start_s": 300.0, "starts": 3, "tiers": {"cold": 300.0, "cached": 40.0}}}


def test_without_prediction_measured_starts_change_no_count() -> None:
    p = policy(RATE, behavior=FAST_UP, panic={"enabled": False})
    rising = [0.01 * t for t in range(300)]
    plain, measured = run(p, rising), run(p, rising, (starts(StartTier.COLD, 900.0),))
    assert plain.desired_replicas == measured.desired_replicas
    assert plain.audit.proposals == measured.audit.proposals and plain.audit.clamps == measured.audit.clamps
    assert measured.audit.starts["a/H100"]["start_s"] == 900.0
