import pytest

from hub.backtest.comparison import Comparison
from hub.backtest.results import PolicyResult


def by_name(c: Comparison) -> dict[str, PolicyResult]:
    return {r.name: r for r in c.results}


def test_all_five_policies_replay_every_request_of_the_trace(step_comparison):
    results = by_name(step_comparison)
    assert list(results) == ["static-peak", "hpa-gpu-util", "keda-queue", "fleetscale", "oracle"]
    for r in results.values():
        assert r.requests == len(step_comparison.scenario.trace)
        assert 0 <= r.within_slo <= r.requests
        assert r.gpu_hours > 0 and r.cost_usd > 0


def test_static_peak_meets_the_slo_at_a_higher_cost_than_the_oracle(step_comparison):
    results = by_name(step_comparison)
    static, oracle = results["static-peak"], results["oracle"]
    assert static.attainment >= 0.99
    assert static.scale_events == 0
    assert static.cost_usd > 1.2 * oracle.cost_usd


def test_the_oracle_is_cheaper_than_every_policy_that_serves_as_well(step_comparison):
    results = by_name(step_comparison)
    oracle = results.pop("oracle")
    assert oracle.attainment >= 0.99
    as_good = [r for r in results.values() if r.attainment >= oracle.attainment]
    assert len(as_good) >= 2  # static peak and at least one autoscaler
    assert all(oracle.cost_usd < r.cost_usd for r in as_good)


def test_the_hpa_baseline_scales_up_when_the_load_steps_up(step_comparison):
    hpa = by_name(step_comparison)["hpa-gpu-util"]
    t, replicas = hpa.timeline.replicas_t_s, hpa.timeline.replicas
    before = max(sum(r.values()) for ts, r in zip(t, replicas, strict=True) if ts < 300)
    during = max(sum(r.values()) for ts, r in zip(t, replicas, strict=True) if 300 <= ts < 600)
    assert during > before
    assert set().union(*replicas) == {"L4"}  # one Deployment, on the cheapest GPU type
    assert hpa.scale_events >= 2


def test_gpu_hours_and_cost_are_counted_per_type_at_the_simulator_prices(step_comparison):
    prices = {"H100": 98.32 / 8, "A100": 32.77 / 8, "L4": 0.805}
    for r in step_comparison.results:
        assert r.cost_usd == pytest.approx(sum(h * prices[t] for t, h in r.gpu_hours_by_type.items()))
