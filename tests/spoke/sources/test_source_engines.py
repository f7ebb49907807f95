"""Engine metrics become queue, KV, window percentiles and rates, for every supported engine.

vLLM cases start from the real scrapes in tests/fixtures (see README.md there). SGLang, TGI and
Triton have no real fixture here, so their expositions below are HAND-WRITTEN from the documented
metric names (anchors §3.2, the engines' metric docs); they check the name mapping, not the engines.
"""

from __future__ import annotations

import pytest
from source_helpers import add_to_buckets, edit, fixture_text, with_engine_label

from shared.messages import Percentiles
from spoke.sources.base import PodTarget, SourceTarget
from spoke.sources.engines import FIRST_SCRAPE, NO_REQUESTS, EngineSource
from spoke.sources.exposition import Exposition, ScrapeError

V0 = fixture_text("vllm_v0_opt125m_datadog.prom")
MIXED = fixture_text("vllm_mixed_v0_v1_datadog.prom")
TTFT = "vllm:time_to_first_token_seconds"
# 10 new requests: 4 with TTFT in (0.1, 0.25], 6 in (0.25, 0.5] (cumulative increments per le).
TTFT_INCREMENTS = {
    "0.25": 4.0,
    "0.5": 10.0,
    "0.75": 10.0,
    "1.0": 10.0,
    "2.5": 10.0,
    "5.0": 10.0,
    "7.5": 10.0,
    "10.0": 10.0,
    "+Inf": 10.0,
}


def target(*pods: str, engine: str | None = None) -> SourceTarget:
    return SourceTarget(
        "llm",
        "chat",
        pods=tuple(PodTarget("llm", p, metrics_url=f"http://{p}/metrics") for p in pods),
        engine=engine,
    )


def later_v0(text: str = V0) -> str:
    """The v0 fixture ten seconds later: 10 requests, 100 prompt and 200 generated tokens more."""
    text = add_to_buckets(text, TTFT, TTFT_INCREMENTS)
    text = edit(text, "vllm:prompt_tokens_total", lambda v, _: v + 100)
    text = edit(text, "vllm:generation_tokens_total", lambda v, _: v + 200)
    return edit(text, "vllm:request_success_total", lambda v, _: v + 10)


def test_first_scrape_reports_gauges_and_says_windowed_fields_have_no_window_yet() -> None:
    source = EngineSource()
    partial = source.observe(target("a"), {"a": Exposition.parse(V0)}, now=0.0)
    assert partial.values["requests_waiting"] == 0.0
    assert partial.values["requests_running"] == 0.0
    assert partial.values["kv_cache_usage_ratio"] == 0.0
    for name in (
        "ttft",
        "itl",
        "e2e",
        "request_rate_per_s",
        "prompt_tokens_per_s",
        "generation_tokens_per_s",
    ):
        assert partial.missing_reasons[name] == FIRST_SCRAPE
    assert partial.window_s is None


def test_second_scrape_gives_interpolated_window_percentiles_and_rates() -> None:
    source = EngineSource()
    source.observe(target("a"), {"a": Exposition.parse(V0)}, now=100.0)
    partial = source.observe(target("a"), {"a": Exposition.parse(later_v0())}, now=110.0)
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.25 + 0.25 * 1 / 6)
    assert ttft.p95_s == pytest.approx(0.25 + 0.25 * 5.5 / 6)
    assert ttft.p99_s == pytest.approx(0.25 + 0.25 * 5.9 / 6)
    assert partial.values["prompt_tokens_per_s"] == pytest.approx(10.0)
    assert partial.values["generation_tokens_per_s"] == pytest.approx(20.0)
    assert partial.values["request_rate_per_s"] == pytest.approx(1.0)
    assert partial.window_s == pytest.approx(10.0)
    # The ITL and e2e histograms did not move: no request finished, which is not a zero latency.
    assert partial.missing_reasons["itl"] == NO_REQUESTS
    assert partial.missing_reasons["e2e"] == NO_REQUESTS


def test_counter_reset_counts_the_new_values_from_zero_like_prometheus() -> None:
    source = EngineSource()
    source.observe(target("a"), {"a": Exposition.parse(later_v0())}, now=0.0)
    restarted = add_to_buckets(
        V0,
        TTFT,
        {"0.5": 2.0, "0.75": 2.0, "1.0": 2.0, "2.5": 2.0, "5.0": 2.0, "7.5": 2.0, "10.0": 2.0, "+Inf": 2.0},
    )
    partial = source.observe(target("a"), {"a": Exposition.parse(restarted)}, now=5.0)
    # prompt_tokens_total went 105 -> 5: after the restart 5 tokens were counted, over 5 s.
    assert partial.values["prompt_tokens_per_s"] == pytest.approx(1.0)
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    # Reset buckets: 3 observations (1 original + 2), all in (0.25, 0.5].
    assert ttft.p50_s == pytest.approx(0.25 + 0.25 * 1.5 / 3)


def test_mixed_scrape_prefers_current_vllm_names_over_deprecated_ones() -> None:
    text = edit(MIXED, "vllm:gpu_cache_usage_perc", lambda v, _: 0.9)
    text = edit(text, "vllm:kv_cache_usage_perc", lambda v, _: 0.25)
    source = EngineSource()
    source.observe(target("a"), {"a": Exposition.parse(text)}, now=0.0)
    # 3 inter-token latencies in (0.01, 0.1] on the new histogram; the old one gets 50 in (0.01, 0.025].
    later = add_to_buckets(text, "vllm:inter_token_latency_seconds", {"0.1": 3.0, "+Inf": 3.0})
    later = add_to_buckets(
        later,
        "vllm:time_per_output_token_seconds",
        {
            le: 50.0
            for le in (
                "0.025",
                "0.05",
                "0.075",
                "0.1",
                "0.15",
                "0.2",
                "0.3",
                "0.4",
                "0.5",
                "0.75",
                "1.0",
                "2.5",
                "+Inf",
            )
        },
    )
    partial = source.observe(target("a"), {"a": Exposition.parse(later)}, now=1.0)
    assert partial.values["kv_cache_usage_ratio"] == 0.25
    itl = partial.values["itl"]
    assert isinstance(itl, Percentiles)
    assert itl.p50_s == pytest.approx(0.01 + 0.09 * 0.5)


def test_old_only_scrape_reads_deprecated_kv_and_itl_names() -> None:
    text = edit(V0, "vllm:gpu_cache_usage_perc", lambda v, _: 0.4)
    source = EngineSource()
    source.observe(target("a"), {"a": Exposition.parse(text)}, now=0.0)
    later = add_to_buckets(
        text,
        "vllm:time_per_output_token_seconds",
        {
            le: 4.0
            for le in (
                "0.025",
                "0.05",
                "0.075",
                "0.1",
                "0.15",
                "0.2",
                "0.3",
                "0.4",
                "0.5",
                "0.75",
                "1.0",
                "2.5",
                "+Inf",
            )
        },
    )
    partial = source.observe(target("a"), {"a": Exposition.parse(later)}, now=1.0)
    assert partial.values["kv_cache_usage_ratio"] == pytest.approx(0.4)
    itl = partial.values["itl"]
    assert isinstance(itl, Percentiles)
    assert itl.p50_s == pytest.approx(0.01 + 0.015 * 0.5)


def test_engine_label_series_aggregate_queues_sum_kv_mean_histograms_add() -> None:
    def two_engines(text: str, waiting: tuple[float, float], kv: tuple[float, float]) -> str:
        parts = []
        for i in (0, 1):
            t = edit(text, "vllm:num_requests_waiting", lambda v, _, i=i: waiting[i])
            t = edit(t, "vllm:gpu_cache_usage_perc", lambda v, _, i=i: kv[i])
            parts.append(with_engine_label(t, str(i)))
        return "".join(parts)

    source = EngineSource()
    source.observe(target("a"), {"a": Exposition.parse(two_engines(V0, (3, 4), (0.2, 0.6)))}, now=0.0)
    later = two_engines(later_v0(), (3, 4), (0.2, 0.6))
    partial = source.observe(target("a"), {"a": Exposition.parse(later)}, now=10.0)
    assert partial.values["requests_waiting"] == 7.0
    assert partial.values["kv_cache_usage_ratio"] == pytest.approx(0.4)
    # Both engines got the same 10 requests: 20 observations, same distribution, same quantiles.
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.25 + 0.25 * 1 / 6)
    assert partial.values["request_rate_per_s"] == pytest.approx(2.0)


def test_workload_aggregates_pods_and_merges_their_histogram_increases() -> None:
    source = EngineSource()
    first = Exposition.parse(V0)
    source.observe(target("a", "b"), {"a": first, "b": first}, now=0.0)
    # Pod a: 4 requests in (0.1, 0.25]; pod b: 6 in (0.25, 0.5]. Together: the 10 of later_v0().
    a = add_to_buckets(V0, TTFT, {le: 4.0 for le in TTFT_INCREMENTS})
    b = add_to_buckets(V0, TTFT, {le: (6.0 if le != "0.25" else 0.0) for le in TTFT_INCREMENTS})
    b = edit(b, "vllm:num_requests_waiting", lambda v, _: 5.0)
    partial = source.observe(target("a", "b"), {"a": Exposition.parse(a), "b": Exposition.parse(b)}, now=10.0)
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.25 + 0.25 * 1 / 6)
    assert partial.values["requests_waiting"] == 5.0


def test_unreachable_pods_are_left_out_and_all_unreachable_means_missing() -> None:
    source = EngineSource()
    warnings: list[str] = []
    partial = source.observe(
        target("a", "b"),
        {"a": Exposition.parse(V0), "b": ScrapeError("b: refused")},
        now=0.0,
        warnings=warnings,
    )
    assert partial.values["requests_waiting"] == 0.0
    assert warnings == ["b: refused"]
    down = source.observe(target("a"), {"a": ScrapeError("a: refused")}, now=1.0)
    assert down.values == {}
    assert down.missing_reasons["requests_waiting"] == "a: refused"


SGLANG = """\
# HAND-WRITTEN from SGLang's documented metric names (no real fixture available).
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="m"} 3
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="m"} 2
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="m"} 0.5
# TYPE sglang:time_to_first_token_seconds histogram
sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} {a}
sglang:time_to_first_token_seconds_bucket{le="1.0",model_name="m"} {b}
sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} {b}
sglang:time_to_first_token_seconds_sum{model_name="m"} 1.0
sglang:time_to_first_token_seconds_count{model_name="m"} {b}
# TYPE sglang:prompt_tokens counter
sglang:prompt_tokens_total{model_name="m"} {tokens}
"""


@pytest.mark.parametrize("sep", [":", "_"])
def test_sglang_names_with_either_separator_map_to_the_same_fields(sep: str) -> None:
    def scrape(a: int, b: int, tokens: int) -> Exposition:
        text = SGLANG.replace("{a}", str(a)).replace("{b}", str(b)).replace("{tokens}", str(tokens))
        return Exposition.parse(text.replace("sglang:", f"sglang{sep}"))

    source = EngineSource()
    source.observe(target("a"), {"a": scrape(0, 0, 0)}, now=0.0)
    partial = source.observe(target("a"), {"a": scrape(2, 4, 40)}, now=2.0)
    assert partial.values["requests_running"] == 3.0
    assert partial.values["requests_waiting"] == 2.0
    assert partial.values["kv_cache_usage_ratio"] == 0.5
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.1)  # rank 2 of 4: the top of the first bucket
    assert partial.values["prompt_tokens_per_s"] == pytest.approx(20.0)
    assert "did not export sglang:num_requests_total" in partial.missing_reasons["request_rate_per_s"]


TGI = """\
# HAND-WRITTEN from TGI's documented metric names (no real fixture available).
# TYPE tgi_queue_size gauge
tgi_queue_size 4
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 8
# TYPE tgi_request_duration histogram
tgi_request_duration_bucket{le="1"} 0
tgi_request_duration_bucket{le="2"} {n}
tgi_request_duration_bucket{le="+Inf"} {n}
tgi_request_duration_sum 15
tgi_request_duration_count {n}
# TYPE tgi_request_success counter
tgi_request_success {n}
# TYPE tgi_request_input_length histogram
tgi_request_input_length_bucket{le="+Inf"} {n}
tgi_request_input_length_sum {tokens}
tgi_request_input_length_count {n}
"""


def test_tgi_maps_queue_batch_duration_and_says_kv_and_ttft_do_not_exist() -> None:
    def scrape(n: int, tokens: int) -> Exposition:
        return Exposition.parse(TGI.replace("{n}", str(n)).replace("{tokens}", str(tokens)))

    source = EngineSource()
    source.observe(target("a"), {"a": scrape(0, 0)}, now=0.0)
    partial = source.observe(target("a"), {"a": scrape(10, 500)}, now=10.0)
    assert partial.values["requests_waiting"] == 4.0
    assert partial.values["requests_running"] == 8.0
    e2e = partial.values["e2e"]
    assert isinstance(e2e, Percentiles)
    assert e2e.p50_s == pytest.approx(1.5)
    assert partial.values["request_rate_per_s"] == pytest.approx(1.0)
    assert partial.values["prompt_tokens_per_s"] == pytest.approx(50.0)
    # The KV-budget proxy needs both gauges; this scrape has neither.
    assert "tgi_batch_current_max_tokens over tgi_batch_max_total_tokens" in partial.missing_reasons[
        "kv_cache_usage_ratio"
    ]
    assert partial.missing_reasons["ttft"] == "TGI exports no time-to-first-token metric"


TRITON = """\
# HAND-WRITTEN from Triton's documented metric names (no real fixture available).
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="llama",version="1"} 6
nv_inference_pending_request_count{model="embed",version="1"} 1
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="llama",version="1"} {n}
# TYPE nv_inference_count counter
nv_inference_count{model="llama",version="1"} {n}
"""


def test_triton_pending_requests_of_the_workloads_model_are_its_queue() -> None:
    source = EngineSource()
    chat = SourceTarget("llm", "chat", pods=target("a").pods, model="llama")
    source.observe(chat, {"a": Exposition.parse(TRITON.replace("{n}", "100"))}, now=0.0)
    partial = source.observe(chat, {"a": Exposition.parse(TRITON.replace("{n}", "160"))}, now=20.0)
    # Only llama's 6 pending requests: the embed model's request is not this workload's demand.
    assert partial.values["requests_waiting"] == 6.0
    assert partial.values["request_rate_per_s"] == pytest.approx(3.0)
    for name in ("itl", "e2e", "kv_cache_usage_ratio", "requests_running"):
        assert partial.missing_reasons[name].startswith("Triton ")
    assert "nv_inference_first_response_histogram_ms" in partial.missing_reasons["ttft"]


def test_triton_serving_several_models_without_the_workloads_model_is_not_summed() -> None:
    source = EngineSource()
    partial = source.observe(target("a"), {"a": Exposition.parse(TRITON.replace("{n}", "100"))}, now=0.0)
    assert "requests_waiting" not in partial.values
    assert "serves 2 models (embed, llama)" in partial.missing_reasons["requests_waiting"]


def test_engine_named_in_the_target_overrides_detection() -> None:
    source = EngineSource()
    partial = source.observe(target("a", engine="tgi"), {"a": Exposition.parse(V0)}, now=0.0)
    assert "tgi (TGI >= 2.0" in partial.missing_reasons["requests_waiting"]
    assert "did not export tgi_queue_size" in partial.missing_reasons["requests_waiting"]


def test_unknown_exposition_makes_every_engine_field_missing() -> None:
    source = EngineSource()
    partial = source.observe(target("a"), {"a": Exposition.parse("up 1\n")}, now=0.0)
    assert "no known inference-engine metrics" in partial.missing_reasons["requests_waiting"]


async def test_read_scrapes_pods_over_http_and_keeps_a_window_per_pod(metrics_server) -> None:
    metrics_server.bodies["/a"] = V0
    clock = iter([50.0, 60.0])
    source = EngineSource(clock=lambda: next(clock))
    tgt = SourceTarget(
        "llm",
        "chat",
        pods=(
            PodTarget("llm", "a", metrics_url=metrics_server.url("/a")),
            PodTarget("llm", "b", metrics_url=metrics_server.url("/gone")),
        ),
    )
    try:
        first = await source.read([tgt])
        metrics_server.bodies["/a"] = later_v0()
        second = await source.read([tgt])
    finally:
        await source.aclose()
    assert first.samples["llm/chat"].missing_reasons["ttft"] == FIRST_SCRAPE
    ttft = second.samples["llm/chat"].values["ttft"]
    assert isinstance(ttft, Percentiles)
    assert ttft.p50_s == pytest.approx(0.25 + 0.25 * 1 / 6)
    assert any("HTTP 404" in w for w in second.warnings)
