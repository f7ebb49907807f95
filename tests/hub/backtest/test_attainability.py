import math

from hub.backtest.attainability import attainable, fastest_ttft_s
from hub.backtest.scenario import Scenario, clip_to_context
from shared.simulation import from_requests
from shared.simulation.capacity import solo_ttft_s


def test_a_request_is_attainable_when_the_fastest_gpu_type_serves_it_alone_within_the_slo():
    rows = [(0.0, 500, 50), (1.0, 9_000, 20), (2.0, 90_000, 20), (3.0, 450_000, 20)]
    scenario = Scenario(from_requests("t", rows, 10.0), context_tokens=1_000_000)
    ttft = fastest_ttft_s(scenario)
    h100 = scenario.profile("H100")
    assert ttft[0] == solo_ttft_s(h100, 500)  # the fastest type decides, not the cheapest
    assert ttft[1] < 2.0 < solo_ttft_s(scenario.profile("L4"), 9_000)  # too slow on an L4, fine on an H100
    assert ttft[2] == solo_ttft_s(h100, 90_000) > 2.0  # prefill alone takes ~3 s on an H100
    assert math.isinf(ttft[3])  # no GPU type of the fleet holds its KV
    assert attainable(scenario) == (True, True, False, False)


def test_prompts_are_clipped_to_the_context_window_and_counted():
    trace = from_requests("t", [(0.0, 100, 10), (1.0, 200_000, 500), (2.0, 131_000, 100)], 5.0)
    clipped, n = clip_to_context(trace, 131_072)
    assert n == 2
    assert clipped.input_tokens == (100, 131_072 - 500, 131_072 - 100)
    assert clipped.output_tokens == (10, 500, 100)
    same, none = clip_to_context(trace, 1_000_000)
    assert same is trace and none == 0
