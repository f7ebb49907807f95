import pytest

from shared.simulation import GPU_PROFILES, ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, serving_profile, synthetic
from shared.simulation.capacity import TokenMix, erlang_c, solo_ttft_s, sustainable_rate

L4, A100, H100 = (serving_profile(GPU_PROFILES[t]) for t in ("L4", "A100", "H100"))
CHAT = TokenMix.of([1000, 1200, 800, 1500], [200, 150, 250, 100])


def test_token_mix_holds_the_expectations_the_model_needs():
    mix = TokenMix.of([100, 300], [11, 21])
    assert mix.input_tokens == 200
    assert mix.input_tokens_sq == (100**2 + 300**2) / 2
    assert mix.decode_tokens == 15
    assert mix.kv_tokens == (111 + 321) / 2
    assert mix.kv_decode == (111 * 10 + 321 * 20) / 2
    assert mix.context_read_tokens == (10 * (100 + 5.5) + 20 * (300 + 10.5)) / 2


def test_solo_ttft_is_the_prefill_steps_of_the_replica_model():
    p = L4
    assert solo_ttft_s(p, 1000) == pytest.approx(p.step_overhead_s + 1000 * p.compute_s_per_token)
    assert solo_ttft_s(p, 10) == pytest.approx(p.step_overhead_s + p.weights_read_s)  # a tiny prompt: memory-bound
    two_chunks = solo_ttft_s(p, 2 * p.chunk_tokens)
    assert two_chunks == pytest.approx(2 * (p.step_overhead_s + p.chunk_tokens * p.compute_s_per_token))


def test_erlang_c_matches_known_values_and_its_large_pool_limit():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: the chance of waiting is the utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 12.0) == 1.0
    exact = erlang_c(100, 90.0)
    assert 0.1 < exact < 0.5
    assert erlang_c(101, 90.0 * 1.01) == pytest.approx(exact, rel=0.25)  # Halfin-Whitt above 100 servers


def test_faster_gpus_and_bigger_pools_sustain_more_and_a_tighter_slo_sustains_less():
    rates = [sustainable_rate(p, CHAT, slo_ttft_s=2.0) for p in (L4, A100, H100)]
    assert rates[0] < rates[1] < rates[2]
    per_replica = [sustainable_rate(L4, CHAT, slo_ttft_s=2.0, replicas=n) for n in (1, 2, 4, 8)]
    assert per_replica == sorted(per_replica) and per_replica[-1] > per_replica[0]
    assert sustainable_rate(L4, CHAT, slo_ttft_s=1.0) < rates[0]
    assert sustainable_rate(L4, CHAT, slo_ttft_s=2.0, miss_ratio=0.1) > rates[0]


def test_a_prompt_that_alone_misses_the_slo_gives_no_capacity():
    long_prompts = TokenMix.of([8000], [10])
    assert solo_ttft_s(L4, 8000) > 2.0
    assert sustainable_rate(L4, long_prompts, slo_ttft_s=2.0) == 0.0
    assert sustainable_rate(H100, long_prompts, slo_ttft_s=2.0) > 0.0


def test_a_fleet_sized_by_the_model_meets_the_slo_in_the_event_driven_simulator():
    trace = synthetic("constant", duration_s=900, rate_per_s=3.0, seed=11, input_tokens=(500, 1500),
                      output_tokens=(50, 350))
    mix = TokenMix.of_trace(trace)
    n = next(n for n in range(1, 33) if n * sustainable_rate(L4, mix, slo_ttft_s=2.0, replicas=n) >= 3.0)
    world = SimWorld([ClusterSpec("c", (NodeSpec("n", "L4", 32),))],
                     [WorkloadSpec("a", "b", trace, initial_replicas={("c", "L4"): n})])
    world.advance(trace.duration_s + 600)
    done = world.completed_requests()
    assert len(done) == len(trace)
    within = sum(1 for r in done if r.ttft_s <= 2.0) / len(trace)
    assert within >= 0.98, (n, within)
