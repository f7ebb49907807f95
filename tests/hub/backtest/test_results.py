import pytest

from hub.backtest.harness import Run
from hub.backtest.results import load_by_bin, summarize
from shared.simulation import CompletedRequest


def finished(arrival_s: float, ttft_s: float) -> CompletedRequest:
    return CompletedRequest(workload="a/b", cluster_id="c", gpu_type="L4", arrival_s=arrival_s, ttft_s=ttft_s,
                            e2e_s=ttft_s + 1, itl_s=0.05, input_tokens=10, output_tokens=20)


def a_run(ttfts: list[float], unfinished: int) -> Run:
    arrivals = tuple(float(i) for i in range(len(ttfts) + unfinished))
    return Run(name="p", description="", requests=len(arrivals),
               completed=[finished(a, t) for a, t in zip(arrivals, ttfts, strict=False)], arrivals_s=arrivals,
               gpu_seconds={("c", "L4"): 7200.0, ("d", "H100"): 1800.0}, cost_usd=1.0, scale_events=3)


def test_unfinished_requests_are_slo_misses_and_percentiles_that_reach_them_are_unknown():
    result = summarize(a_run([0.5] * 90 + [3.0] * 5, unfinished=5), slo_ttft_s=2.0, duration_s=100)
    assert result.within_slo == 90
    assert result.attainment == pytest.approx(0.9)
    assert result.unfinished == 5
    assert result.ttft_p50_s == pytest.approx(0.5)
    assert result.ttft_p95_s is None  # rank 94.05 interpolates towards the 96th value: an unfinished request
    assert result.ttft_p99_s is None


def test_percentiles_follow_numpys_linear_rule_when_everything_finished():
    result = summarize(a_run([float(i) for i in range(1, 101)], unfinished=0), slo_ttft_s=50.0, duration_s=100)
    assert result.ttft_p50_s == pytest.approx(50.5)
    assert result.ttft_p95_s == pytest.approx(95.05)
    assert result.ttft_p99_s == pytest.approx(99.01)
    assert result.within_slo == 50  # TTFT exactly at the SLO counts as within


def test_gpu_hours_are_summed_per_type():
    result = summarize(a_run([0.1], unfinished=0), slo_ttft_s=2.0, duration_s=100)
    assert result.gpu_hours_by_type == {"H100": 0.5, "L4": 2.0}
    assert result.gpu_hours == 2.5


def test_load_is_requests_per_second_per_bin_with_a_partial_last_bin():
    assert load_by_bin([0.0, 1.0, 59.0, 60.0, 61.0, 89.0], 90.0, 60.0) == pytest.approx((3 / 60, 3 / 30))
