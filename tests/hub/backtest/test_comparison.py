import pytest

from hub.backtest.checks import checks
from hub.backtest.comparison import Comparison
from hub.backtest.results import PolicyResult
from hub.backtest.sweep import HPA_QUEUE, HPA_UTIL, KEDA, STATIC


def by_name(c: Comparison) -> dict[str, PolicyResult]:
    return {r.name: r for r in c.results}


def test_every_run_replays_every_request_and_reports_the_whole_run_and_the_scored_window(step_comparison):
    c = step_comparison
    families = {r.family for r in c.results}
    assert families >= {"hindsight", "fleetscale", STATIC, HPA_UTIL, HPA_QUEUE, KEDA}
    assert c.results[0].name == "hindsight"
    for r in c.results:
        assert r.whole.requests == len(c.scenario.trace)
        assert r.scored.from_s == 200 and r.scored.requests < r.whole.requests
        assert 0 <= r.scored.within_slo <= r.scored.attainable <= r.scored.requests
        assert 0 < r.scored.cost_usd < r.whole.cost_usd


def test_every_policy_starts_from_the_same_initial_fleet(step_comparison):
    initial = step_comparison.scenario.initial_fleet()
    assert initial == {("ap-south", "L4"): 1}  # the documented default: one replica of the cheapest type
    for r in step_comparison.results:
        assert r.timeline.replicas_t_s[0] == 0.0
        assert r.timeline.replicas[0] == {"L4": 1}, r.name


def test_the_hindsight_plan_reaches_its_target_in_its_own_replay(step_comparison):
    plan = step_comparison.hindsight
    assert plan.reached and plan.result.scored.attainment >= plan.target == 0.99


def test_no_static_fleet_reaches_the_target_for_less_than_the_hindsight_plan(step_comparison):
    h = step_comparison.hindsight.result.scored
    reaching = [r for r in step_comparison.family(STATIC) if r.scored.attainment >= 0.99]
    assert reaching
    assert all(r.scored.cost_usd >= h.cost_usd for r in reaching)


def test_the_hpa_baseline_scales_up_when_the_load_steps_up(step_comparison):
    [hpa] = step_comparison.family(HPA_UTIL)
    t, replicas = hpa.timeline.replicas_t_s, hpa.timeline.replicas
    before = max(sum(r.values()) for ts, r in zip(t, replicas, strict=True) if 100 <= ts < 300)
    during = max(sum(r.values()) for ts, r in zip(t, replicas, strict=True) if 300 <= ts < 600)
    assert during > before
    assert hpa.whole.scale_events >= 2


def test_gpu_hours_and_cost_are_counted_per_type_at_the_simulator_prices(step_comparison):
    prices = {"H100": 98.32 / 8, "A100": 32.77 / 8, "L4": 0.805}
    for r in step_comparison.results:
        for f in (r.whole, r.scored):
            assert f.cost_usd == pytest.approx(sum(h * prices[t] for t, h in f.gpu_hours_by_type.items()))


def test_the_checks_of_issue_10_are_all_evaluated(step_comparison):
    names = [k.name for k in checks(step_comparison)]
    assert len(names) == 7
    assert any("hindsight" in n for n in names) and any("static" in n for n in names)
    assert any("KEDA" in n for n in names) and any("minute" in n for n in names)
