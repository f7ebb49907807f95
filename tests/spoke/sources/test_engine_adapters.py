"""Engine adapters on real scrapes (issue 12): each case of the issue's "Found" list, with the
scrape it was found on. Files named ``*_source_built.prom`` are built from the engines' metric
definitions where no public scrape shows the case; tests/fixtures/README.md says which is which.

"Later" scrapes are deterministic edits of a fixture (``source_helpers.edit``): only the values of
the named samples change.
"""

from __future__ import annotations

import re

import pytest
from source_helpers import add_to_buckets, edit, fixture_text

from shared.messages import Percentiles, TokenHistogram
from spoke.sources.base import PodTarget, SourceTarget
from spoke.sources.engines import EngineSource
from spoke.sources.exposition import Exposition

MIXED = fixture_text("vllm_mixed_v0_v1_datadog.prom")
V1 = fixture_text("vllm_v1_source_built.prom")
RAY = fixture_text("ray_vllm_source_built.prom")
SGLANG = fixture_text("sglang_v0.5.10_datadog.prom")
SGLANG_PRIORITY = fixture_text("sglang_priority_tp2_source_built.prom")
TRITON = fixture_text("triton_8models_datadog_head.prom")
TRTLLM = fixture_text("triton_trtllm_backend_docs.prom")
TRITON_TTFT = fixture_text("triton_first_response_source_built.prom")
TGI = fixture_text("tgi_datadog_head.prom")
TGI_BUILT = fixture_text("tgi_source_built.prom")
TGI_QUEUE = fixture_text("tgi_datadog_queue_duration_excerpt.prom")


def target(engine: str | None = None, model: str | None = None, pods: int = 1) -> SourceTarget:
    return SourceTarget(
        "llm",
        "chat",
        pods=tuple(PodTarget("llm", f"p{i}", metrics_url=f"http://p{i}/metrics") for i in range(pods)),
        engine=engine,
        model=model,
    )


def window(before: str, after: str, *, t: SourceTarget | None = None, seconds: float = 10.0):  # type: ignore[no-untyped-def]
    source = EngineSource()
    t = t or target()
    source.observe(t, {"p0": Exposition.parse(before)}, now=0.0)
    return source, source.observe(t, {"p0": Exposition.parse(after)}, now=seconds)


def one(text: str, t: SourceTarget | None = None):  # type: ignore[no-untyped-def]
    source = EngineSource()
    return source, source.observe(t or target(), {"p0": Exposition.parse(text)}, now=0.0)


def with_tp_ranks(text: str, ranks: int) -> str:
    """The same scrape as with --enable-metrics-for-all-schedulers: every ``tp_rank="0"`` line once
    more per extra rank (same values: each rank reports the shared scheduler state)."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if 'tp_rank="0"' in line and not line.startswith("#"):
            out += [line.replace('tp_rank="0"', f'tp_rank="{r}"') for r in range(1, ranks)]
    return "\n".join(out) + "\n"


# --- vLLM ---------------------------------------------------------------------------------------


def test_vllm_waiting_excludes_deferred_requests() -> None:
    _, partial = one(V1)
    # 7 waiting of which 2 are deferred (LoRA budget, KV transfer): 5 are demand on this replica.
    assert partial.values["requests_waiting"] == 5.0


def test_vllm_aborted_requests_are_not_throughput_but_failures() -> None:
    later = edit(V1, "vllm:request_success_total", lambda v, labels: v + (20 if "abort" in labels else 10))
    _, partial = window(V1, later)
    # stop and length moved by 10 each (2 per s); the abort series moved by 20 (2 per s).
    assert partial.values["request_rate_per_s"] == pytest.approx(2.0)
    assert partial.values["requests_failed_per_s"] == pytest.approx(2.0)


def test_vllm_real_scrape_abort_series_is_not_counted_as_served() -> None:
    # The fixture's last line has no newline; the abort series goes on a line of its own.
    abort = '\nvllm:request_success_total{finished_reason="abort",model_name="facebook/opt-125m"} 1.0\n'
    before = MIXED + abort
    after = edit(MIXED, "vllm:request_success_total", lambda v, _: v + 5) + abort.replace(" 1.0", " 31.0")
    _, partial = window(before, after)
    assert partial.values["request_rate_per_s"] == pytest.approx(0.5)  # 5 "length" in 10 s
    assert partial.values["requests_failed_per_s"] == pytest.approx(3.0)  # 30 aborts in 10 s


def test_vllm_real_scrape_preemptions_queue_time_and_prompt_lengths() -> None:
    later = edit(MIXED, "vllm:num_preemptions_total", lambda v, _: v + 30)
    # This scrape's queue-time histogram has one finite bucket (0.3 s): 6 of 10 new requests in it.
    later = add_to_buckets(later, "vllm:request_queue_time_seconds", {"0.3": 6.0, "+Inf": 10.0})
    later = add_to_buckets(later, "vllm:request_prompt_tokens", {
        "1.0": 0.0, "2.0": 0.0, "5.0": 0.0, "10.0": 2.0, "20.0": 5.0, "50.0": 5.0, "100.0": 5.0,
        "200.0": 5.0, "500.0": 5.0, "1000.0": 5.0, "2000.0": 5.0, "+Inf": 5.0})
    _, partial = window(MIXED, later)
    assert partial.values["preemptions_per_s"] == pytest.approx(3.0)
    queue = partial.values["queue_time"]
    assert isinstance(queue, Percentiles)
    assert queue.p50_s == pytest.approx(0.3 * 5 / 6)  # rank 5 of the 6 in (0, 0.3]
    assert queue.p99_s == pytest.approx(0.3)  # in the +Inf bucket: its lower bound, as Prometheus
    prompts = partial.values["prompt_tokens"]
    assert isinstance(prompts, TokenHistogram)
    assert prompts.total == 5.0
    counts = dict(zip((*prompts.le_tokens, float("inf")), prompts.counts, strict=True))
    assert counts[10.0] == 2.0 and counts[20.0] == 3.0


def test_vllm_sleeping_engine_is_reported_not_read_as_idle() -> None:
    _, awake = one(MIXED)
    assert awake.values["engines_sleeping"] == 0.0

    def asleep(v: float, labels: str) -> float:
        return 0.0 if 'sleep_state="awake"' in labels else (1.0 if "weights_offloaded" in labels else v)

    _, partial = one(edit(MIXED, "vllm:engine_sleep_state", asleep))
    assert partial.values["engines_sleeping"] == 1.0
    assert partial.values["requests_waiting"] == 0.0  # truthfully empty, and flagged as asleep


def test_vllm_v0_scrape_is_read_by_the_v0_adapter() -> None:
    source, partial = one(fixture_text("vllm_v0_opt125m_datadog.prom"))
    assert source.adapters == {"p0": "vllm-v0"}
    assert "vLLM V0 exports no sleep state" in partial.missing_reasons["engines_sleeping"]


def test_ray_serve_vllm_prefix_is_recognised() -> None:
    later = edit(RAY, "ray_vllm:request_success_total", lambda v, labels: v + (0 if "abort" in labels else 10))
    source, partial = window(RAY, later)
    assert source.adapters == {"p0": "ray-vllm"}
    assert partial.values["requests_waiting"] == 5.0
    assert partial.values["requests_running"] == 12.0
    assert partial.values["kv_cache_usage_ratio"] == pytest.approx(0.62)
    assert partial.values["request_rate_per_s"] == pytest.approx(2.0)


# --- SGLang -------------------------------------------------------------------------------------


def test_sglang_real_scrape_queue_time_and_prompt_length_are_read() -> None:
    later = add_to_buckets(SGLANG, "sglang:queue_time_seconds", {"0.001": 3.0, "+Inf": 4.0})
    later = add_to_buckets(later, "sglang:prompt_tokens_histogram", {"8": 2.0, "+Inf": 4.0})
    _, partial = window(SGLANG, later)
    queue = partial.values["queue_time"]
    assert isinstance(queue, Percentiles)
    assert queue.p50_s == pytest.approx(0.001 * 2 / 3)
    prompts = partial.values["prompt_tokens"]
    assert isinstance(prompts, TokenHistogram)
    assert prompts.le_tokens == (8.0,) and prompts.counts == (2.0, 2.0)


def test_sglang_tp_ranks_exporting_the_same_queue_are_read_once() -> None:
    _, single = one(SGLANG)
    text = edit(SGLANG, "sglang:num_queue_reqs", lambda v, _: 5.0)
    text = edit(text, "sglang:num_running_reqs", lambda v, _: 3.0)
    _, partial = one(with_tp_ranks(text, 4))
    assert partial.values["requests_waiting"] == 5.0  # not 4 x 5
    assert partial.values["requests_running"] == 3.0
    assert partial.values["kv_cache_usage_ratio"] == single.values["kv_cache_usage_ratio"]


def test_sglang_priority_total_and_tp_ranks_are_not_added_up() -> None:
    later = edit(SGLANG_PRIORITY, "sglang:num_retracted_requests_total", lambda v, _: v + 20)
    later = edit(later, "sglang:num_aborted_requests_total", lambda v, _: v + 5)
    _, partial = window(SGLANG_PRIORITY, later)
    assert partial.values["requests_waiting"] == 3.0  # not 12: priority="" is the total, 2 ranks
    assert partial.values["requests_running"] == 6.0
    assert partial.values["kv_cache_usage_ratio"] == 0.5
    assert partial.values["preemptions_per_s"] == pytest.approx(2.0)  # 20 retractions in 10 s
    assert partial.values["requests_failed_per_s"] == pytest.approx(0.5)


def test_sglang_data_parallel_ranks_still_add_up() -> None:
    dp = SGLANG.replace('tp_rank="0"', 'tp_rank="0",dp_rank="0"')
    dp += "\n".join(
        line.replace('dp_rank="0"', 'dp_rank="1"')
        for line in dp.splitlines() if 'dp_rank="0"' in line and not line.startswith("#")
    ) + "\n"
    _, partial = one(edit(dp, "sglang:num_queue_reqs", lambda v, _: 2.0))
    assert partial.values["requests_waiting"] == 4.0  # two DP replicas, two queues


# --- Triton -------------------------------------------------------------------------------------


def test_triton_eight_models_are_not_summed_into_one_workload() -> None:
    source, partial = one(TRITON)
    assert "requests_waiting" not in partial.values
    assert "serves 8 models" in partial.missing_reasons["requests_waiting"]
    assert "fleetscale.dev/model" in partial.missing_reasons["request_rate_per_s"]
    assert "p0" not in source.in_flight  # unattributed load is unknown, not zero


def test_triton_per_model_rate_and_mean_queue_time() -> None:
    dense = target(model="densenet_onnx")

    def bump(name: str, by: float):  # type: ignore[no-untyped-def]
        return lambda v, labels: v + by if 'model="densenet_onnx"' in labels else v + 1000

    later = edit(TRITON, "nv_inference_request_success", bump("", 20))
    later = edit(later, "nv_inference_queue_duration_us", bump("", 40_000))
    _, partial = window(TRITON, later, t=dense)
    # 20 densenet requests in 10 s; the other seven models' (invented) traffic is not counted.
    assert partial.values["request_rate_per_s"] == pytest.approx(2.0)
    assert partial.values["queue_time_mean_s"] == pytest.approx(0.002)  # 40 ms over 20 requests
    assert partial.values["requests_waiting"] == 0.0


def test_triton_unknown_model_is_named() -> None:
    _, partial = one(TRITON, target(model="llama"))
    assert "model 'llama' is not served here" in partial.missing_reasons["requests_waiting"]


def test_triton_first_response_histogram_is_ttft_in_seconds() -> None:
    later = add_to_buckets(TRITON_TTFT, "nv_inference_first_response_histogram_ms",
                           {"100": 5.0, "500": 10.0, "2000": 10.0, "5000": 10.0, "+Inf": 10.0})
    _, partial = window(TRITON_TTFT, later)
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.1)  # rank 5 of 10: the top of (0, 100 ms]
    assert ttft.p95_s == pytest.approx(0.1 + 0.4 * 4.5 / 5)


def test_tensorrt_llm_backend_queue_active_and_kv_fraction() -> None:
    source, partial = one(TRTLLM)
    assert source.adapters == {"p0": "triton-trtllm"}
    # Triton's own pending count is 0 for the decoupled TRT-LLM model; the backend queues 1.
    assert partial.values["requests_waiting"] == 1.0
    assert partial.values["requests_running"] == 0.0
    assert partial.values["kv_cache_usage_ratio"] == pytest.approx(0.4875)


# --- TGI ----------------------------------------------------------------------------------------


def test_tgi_real_scrape_failures_and_kv_proxy_reason() -> None:
    later = edit(TGI, "tgi_request_failure", lambda v, _: v + 4)
    later = edit(later, "tgi_request_success", lambda v, _: v + 10)
    _, partial = window(TGI, later)
    assert partial.values["requests_failed_per_s"] == pytest.approx(0.4)
    assert partial.values["request_rate_per_s"] == pytest.approx(1.0)
    # This build exports the batch's max tokens but not the budget: no ratio, and says which.
    assert "tgi_batch_max_total_tokens" in partial.missing_reasons["kv_cache_usage_ratio"]


def test_tgi_kv_budget_proxy_and_queue_duration() -> None:
    later = add_to_buckets(TGI_BUILT, "tgi_request_queue_duration", {"0.1": 10.0, "0.5": 10.0, "1": 10.0, "+Inf": 10.0})
    _, partial = window(TGI_BUILT, later)
    assert partial.values["kv_cache_usage_ratio"] == pytest.approx(12000 / 16000)
    queue = partial.values["queue_time"]
    assert isinstance(queue, Percentiles)
    assert queue.p50_s == pytest.approx(0.05)


def test_tgi_real_scrape_queue_duration_is_the_queue_time() -> None:
    # The real histogram's 36 bounds (0.15 ms x 1.5^k); 10 new requests waited between 1.68 and 2.53 s.
    bounds = re.findall(r'le="([^"]+)"', TGI_QUEUE)
    later = add_to_buckets(TGI_QUEUE, "tgi_request_queue_duration",
                           {le: 10.0 for le in bounds[bounds.index("2.5251168294042348"):]})
    _, partial = window(TGI_QUEUE, later)
    queue = partial.values["queue_time"]
    assert isinstance(queue, Percentiles)
    assert queue.p50_s == pytest.approx(1.683411219602823 + (2.5251168294042348 - 1.683411219602823) * 0.5)
    assert queue.p99_s == pytest.approx(1.683411219602823 + (2.5251168294042348 - 1.683411219602823) * 0.99)
    _, first = one(TGI_QUEUE)
    assert "queue_time" not in first.values  # one scrape: no window yet, not the totals since start


def test_tgi_hundred_input_length_buckets_are_coarsened_for_the_wire() -> None:
    bounds = [5.11 * i for i in range(1, 101)]

    def hist(counts: list[int]) -> str:
        lines = [f'tgi_request_input_length_bucket{{le="{b!r}"}} {c}' for b, c in zip(bounds, counts, strict=True)]
        lines += [f'tgi_request_input_length_bucket{{le="+Inf"}} {counts[-1]}',
                  f"tgi_request_input_length_count {counts[-1]}", "tgi_queue_size 0"]
        return "\n".join(lines) + "\n"

    before = hist([0] * 100)
    after = hist([0] + [109] * 99)  # as in the real TGI scrape: all 109 prompts in (5.11, 10.22]
    _, partial = window(before, after)
    prompts = partial.values["prompt_tokens"]
    assert isinstance(prompts, TokenHistogram)
    assert len(prompts.le_tokens) <= 64
    assert prompts.total == 109.0
    assert prompts.le_tokens[-1] == pytest.approx(511.0)


# --- Unknown engines ----------------------------------------------------------------------------


def test_unknown_engine_is_reported_not_idle() -> None:
    source, partial = one("llamacpp:requests_processing 3\nllamacpp:requests_deferred 2\n")
    assert "requests_waiting" not in partial.values
    assert re.search(r"unknown engine", partial.missing_reasons["requests_waiting"])
    assert "p0" in source.unknown
    assert "p0" not in source.in_flight
