import pytest

from hub.backtest.harness import Run
from hub.backtest.results import load_by_bin, summarize
from hub.backtest.scenario import Scenario
from shared.simulation import CompletedRequest, from_requests


def finished(arrival_s: float, ttft_s: float, input_tokens: int = 10) -> CompletedRequest:
    return CompletedRequest(workload="a/b", cluster_id="c", gpu_type="L4", arrival_s=arrival_s, ttft_s=ttft_s,
                            e2e_s=ttft_s + 1, itl_s=0.05, input_tokens=input_tokens, output_tokens=20)


def scenario_of(run: Run, slo_ttft_s: float = 2.0, **kw) -> Scenario:
    rows = [(a, 10, 20) for a in run.arrivals_s]
    return Scenario(from_requests("t", rows, duration_s=100.0), slo_ttft_s=slo_ttft_s, **kw)


def a_run(ttfts: list[float], unfinished: int) -> Run:
    arrivals = tuple(float(i) for i in range(len(ttfts) + unfinished))
    return Run(name="p", description="", requests=len(arrivals),
               completed=[finished(a, t) for a, t in zip(arrivals, ttfts, strict=False)], arrivals_s=arrivals,
               gpu_seconds={("c", "L4"): 7200.0, ("d", "H100"): 1800.0}, cost_usd=1.0, scale_events=3)


def test_unfinished_requests_are_slo_misses_and_percentiles_that_reach_them_are_unknown():
    run = a_run([0.5] * 90 + [3.0] * 5, unfinished=5)
    result = summarize(run, scenario_of(run)).whole
    assert result.within_slo == 90
    assert result.attainment == pytest.approx(0.9)
    assert result.unfinished == 5
    assert result.ttft_p50_s == pytest.approx(0.5)
    assert result.ttft_p95_s is None  # rank 94.05 interpolates towards the 96th value: an unfinished request
    assert result.ttft_p99_s is None


def test_percentiles_follow_numpys_linear_rule_when_everything_finished():
    run = a_run([float(i) for i in range(1, 101)], unfinished=0)
    result = summarize(run, scenario_of(run, slo_ttft_s=50.0)).whole
    assert result.ttft_p50_s == pytest.approx(50.5)
    assert result.ttft_p95_s == pytest.approx(95.05)
    assert result.ttft_p99_s == pytest.approx(99.01)
    assert result.within_slo == 50  # TTFT exactly at the SLO counts as within


def test_gpu_hours_are_summed_per_type():
    run = a_run([0.1], unfinished=0)
    result = summarize(run, scenario_of(run)).whole
    assert result.gpu_hours_by_type == {"H100": 0.5, "L4": 2.0}
    assert result.gpu_hours == 2.5


def test_load_is_requests_per_second_per_bin_with_a_partial_last_bin():
    assert load_by_bin([0.0, 1.0, 59.0, 60.0, 61.0, 89.0], 90.0, 60.0) == pytest.approx((3 / 60, 3 / 30))


def test_attainment_counts_only_attainable_requests_and_counts_the_others_apart():
    run = a_run([0.5] * 8 + [5.0] * 2, unfinished=0)
    attainable = (True,) * 8 + (False,) * 2
    # The two unattainable requests have their own token counts (attainability depends on tokens).
    run.completed[8:] = [finished(r.arrival_s, r.ttft_s, input_tokens=99_000) for r in run.completed[8:]]
    rows = [(a, 10 if ok else 99_000, 20) for a, ok in zip(run.arrivals_s, attainable, strict=True)]
    scenario = Scenario(from_requests("t", rows, duration_s=100.0))
    f = summarize(run, scenario, attainable).whole
    assert (f.requests, f.attainable, f.unattainable, f.within_slo) == (10, 8, 2, 8)
    assert f.attainment == 1.0


def test_the_scored_window_takes_the_requests_and_the_bill_after_the_warm_up():
    from hub.backtest.harness import Mark

    run = a_run([0.5] * 50 + [3.0] * 50, unfinished=0)  # arrivals 0..99 s; the late half misses
    run.scored_from_s = 50.0
    run.at_scored_start = Mark({("c", "L4"): 3600.0, ("d", "H100"): 0.0}, 0.25, 1)
    result = summarize(run, scenario_of(run))
    assert result.whole.attainment == pytest.approx(0.5)
    assert result.scored.requests == 50 and result.scored.attainment == 0.0
    assert result.scored.cost_usd == pytest.approx(0.75) and result.scored.scale_events == 2
    assert result.scored.gpu_hours_by_type == {"H100": 0.5, "L4": 1.0}
