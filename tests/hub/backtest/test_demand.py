import itertools

import pytest

from hub.backtest.demand import Supply, cheapest_mix, required_rate, windows
from hub.backtest.hindsight import schedule
from hub.backtest.scenario import Scenario
from shared.simulation import ClusterSpec, NodeSpec, from_requests, synthetic


def test_a_steady_window_needs_its_mean_rate_and_a_burst_needs_more():
    steady = [i * 0.5 for i in range(120)]  # 2 req/s over 60 s
    # The longer the interval, the less the deadline's slack helps: the whole window decides.
    assert required_rate(steady, deadline_s=2.0, span_s=60.0) == pytest.approx(120 / 62)
    burst = [30 + i * 0.1 for i in range(100)]  # 100 requests in 10 s: 10 in every second
    assert required_rate(burst, deadline_s=2.0, span_s=60.0) == pytest.approx(100 / 12)
    spike = [30 + i * 0.01 for i in range(50)]  # 50 requests within half a second: the 1 s interval decides
    assert required_rate(spike, deadline_s=2.0, span_s=60.0) == pytest.approx(50 / 3)
    assert required_rate([], deadline_s=2.0, span_s=60.0) == 0.0


def small_scenario(trace) -> Scenario:
    clusters = (ClusterSpec("a", (NodeSpec("a-l4", "L4", 6),)), ClusterSpec("b", (NodeSpec("b-a100", "A100", 3),)))
    return Scenario(trace, clusters=clusters)


def test_long_prompts_need_a_faster_gpu_type_than_short_ones():
    rows = [(i * 0.5, 400, 50) for i in range(100)] + [(i * 5.0 + 0.25, 7000, 20) for i in range(10)]
    trace = from_requests("mixed", rows, 60.0)
    supply = Supply(small_scenario(trace))
    short, long = trace.input_tokens.index(400), trace.input_tokens.index(7000)
    assert supply.capable[short] == {"L4", "A100"}
    assert supply.capable[long] == {"A100"}  # 7,000 prompt tokens take ~1.9 s to prefill on an L4
    mix = cheapest_mix(windows(supply, 60.0)[0].needs, supply)
    assert mix.replicas.get("A100", 0) >= 1


def test_cheapest_mix_is_the_exact_optimum():
    trace = synthetic("constant", duration_s=60, rate_per_s=6.0, seed=2, input_tokens=(200, 4000), output_tokens=64)
    supply = Supply(small_scenario(trace))
    needs = windows(supply, 60.0)[0].needs
    best = cheapest_mix(needs, supply)

    def meets(counts):
        return all(sum(supply.rate(u, t, counts.get(t, 0)) for t in u) >= n for u, n in needs.items())

    brute = min(
        sum(c * supply.price[t] for t, c in zip(supply.types, counts, strict=True))
        for counts in itertools.product(*(range(supply.capacity[t] + 1) for t in supply.types))
        if meets(dict(zip(supply.types, counts, strict=True)))
    )
    assert best.cost_per_hour == pytest.approx(brute)
    assert meets(best.replicas)


def test_the_hindsight_plan_asks_for_a_window_a_cold_start_ahead_and_releases_at_its_end():
    # Nothing for 300 s, then 4 req/s for 120 s, then nothing.
    trace = synthetic("step", duration_s=600, rate_per_s=0.0, step_at_s=300, step_rate_per_s=4.0,
                      step_back_at_s=420, seed=5, input_tokens=500, output_tokens=50)
    scenario = small_scenario(trace)
    supply = Supply(scenario)
    steps = schedule(scenario, [cheapest_mix(w.needs, supply) for w in windows(supply, 60.0)], 60.0)
    assert steps[0] == (0.0, {})
    up = next(t for t, p in steps if p)
    assert up == 300 - scenario.cold_start_s
    down = next(t for t, p in steps if t > up and not p)
    assert down == 420
