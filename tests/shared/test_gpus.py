import pytest

from shared.simulation import DEFAULT_MODEL, GPU_PROFILES, ModelProfile, serving_profile


def test_kv_capacity_is_usable_memory_minus_weights_over_kv_bytes_per_token():
    profile = serving_profile(GPU_PROFILES["H100"])
    expected = (80e9 * 0.9 - 16.06e9) // 131072
    assert profile.kv_capacity_tokens == expected
    assert DEFAULT_MODEL.kv_bytes_per_token == 131072


def test_h100_prefills_and_decodes_faster_than_l4():
    h100, l4 = serving_profile(GPU_PROFILES["H100"]), serving_profile(GPU_PROFILES["L4"])
    assert h100.prefill_tokens_per_s > 5 * l4.prefill_tokens_per_s
    assert h100.decode_step_s(1, 1000) < l4.decode_step_s(1, 1000) / 5


def test_decode_step_grows_with_batch_context_like_itl_alpha_plus_beta_batch():
    p = serving_profile(GPU_PROFILES["A100"])
    one, many = p.decode_step_s(1, 1000), p.decode_step_s(64, 64_000)
    alpha = p.step_overhead_s + p.weights_read_s
    assert one == pytest.approx(alpha + 1000 * p.kv_read_s_per_token)
    assert many == pytest.approx(alpha + 64_000 * p.kv_read_s_per_token)


def test_a_prefill_chunk_stretches_the_step_to_compute_bound():
    p = serving_profile(GPU_PROFILES["H100"])
    assert p.step_s(8, 8000, 2048) == pytest.approx(p.step_overhead_s + (8 + 2048) * p.compute_s_per_token)


def test_tensor_parallel_replica_has_more_kv_and_bandwidth():
    one = serving_profile(GPU_PROFILES["L4"])
    two = serving_profile(GPU_PROFILES["L4"], gpus_per_replica=2)
    assert two.kv_capacity_tokens > 2 * one.kv_capacity_tokens
    assert two.weights_read_s == pytest.approx(one.weights_read_s / 2)
    assert two.gpu_hour_price == pytest.approx(2 * 0.805)


def test_model_that_does_not_fit_is_rejected():
    big = ModelProfile("70B", params=70.6e9, weights_bytes=141.2e9, kv_bytes_per_token=327680)
    with pytest.raises(ValueError, match="does not fit"):
        serving_profile(GPU_PROFILES["L4"], big)


def test_prices_are_per_gpu_hour_of_the_cited_instances():
    assert GPU_PROFILES["H100"].price_per_gpu_hour == pytest.approx(12.29)
    assert GPU_PROFILES["A100"].price_per_gpu_hour == pytest.approx(4.096, abs=1e-3)
    assert GPU_PROFILES["L4"].price_per_gpu_hour == pytest.approx(0.805)
    assert GPU_PROFILES["H100"].product_label == "NVIDIA-H100-80GB-HBM3"
