"""Which metric names each inference engine exports for each ``Samples`` field, and engine detection.

One ``EngineSpec`` per engine. Each field lists candidate *sample* names, preferred first: vLLM's
current names come before the deprecated ones, so a scrape that carries both (vLLM kept the old
names for a few releases) reads the current one. Fields an engine cannot provide carry the reason,
which ends up in ``Samples.missing_reasons``. Names come from anchors §3.1-3.2 and the engines'
docs; docs/sources.md has the same table for humans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EngineSpec:
    engine: str
    prefixes: tuple[str, ...]
    """Sample-name prefixes that identify the engine in a scrape."""
    waiting: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    kv_usage: tuple[str, ...] = ()
    """Gauges already in [0, 1], one per engine/DP rank; the workload gets their mean."""
    ttft: tuple[str, ...] = ()
    itl: tuple[str, ...] = ()
    e2e: tuple[str, ...] = ()
    """Histogram base names (the sample names are ``<base>_bucket``), in seconds."""
    requests: tuple[str, ...] = ()
    prompt_tokens: tuple[str, ...] = ()
    generation_tokens: tuple[str, ...] = ()
    """Cumulative counters (or a histogram's ``_sum``); their per-second increase is the rate."""
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def candidates(self, field_name: str) -> tuple[str, ...]:
        return _FIELD_TO_ATTR[field_name](self)


_FIELD_TO_ATTR = {
    "requests_waiting": lambda s: s.waiting,
    "requests_running": lambda s: s.running,
    "kv_cache_usage_ratio": lambda s: s.kv_usage,
    "ttft": lambda s: s.ttft,
    "itl": lambda s: s.itl,
    "e2e": lambda s: s.e2e,
    "request_rate_per_s": lambda s: s.requests,
    "prompt_tokens_per_s": lambda s: s.prompt_tokens,
    "generation_tokens_per_s": lambda s: s.generation_tokens,
}
GAUGE_FIELDS = ("requests_waiting", "requests_running")
HISTOGRAM_FIELDS = ("ttft", "itl", "e2e")
COUNTER_FIELDS = ("request_rate_per_s", "prompt_tokens_per_s", "generation_tokens_per_s")
ENGINE_FIELDS = frozenset(_FIELD_TO_ATTR)


def _sglang(*names: str) -> tuple[str, ...]:
    """SGLang builds differ in the separator after the prefix (``sglang:x`` or ``sglang_x``)."""
    return tuple(f"sglang{sep}{n}" for n in names for sep in (":", "_"))


VLLM = EngineSpec(
    engine="vllm",
    prefixes=("vllm:",),
    waiting=("vllm:num_requests_waiting",),
    running=("vllm:num_requests_running",),
    kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    ttft=("vllm:time_to_first_token_seconds",),
    itl=("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    e2e=("vllm:e2e_request_latency_seconds",),
    requests=("vllm:request_success_total",),
    prompt_tokens=("vllm:prompt_tokens_total",),
    generation_tokens=("vllm:generation_tokens_total",),
)
SGLANG = EngineSpec(
    engine="sglang",
    prefixes=("sglang:", "sglang_"),
    waiting=_sglang("num_queue_reqs"),
    running=_sglang("num_running_reqs"),
    kv_usage=_sglang("token_usage"),
    ttft=_sglang("time_to_first_token_seconds"),
    itl=_sglang("inter_token_latency_seconds", "time_per_output_token_seconds"),
    e2e=_sglang("e2e_request_latency_seconds"),
    requests=_sglang("num_requests_total"),
    prompt_tokens=_sglang("prompt_tokens_total"),
    generation_tokens=_sglang("generation_tokens_total"),
)
TGI = EngineSpec(
    engine="tgi",
    prefixes=("tgi_",),
    waiting=("tgi_queue_size",),
    running=("tgi_batch_current_size",),
    e2e=("tgi_request_duration",),
    itl=("tgi_request_mean_time_per_token_duration",),
    requests=("tgi_request_success", "tgi_request_success_total"),
    prompt_tokens=("tgi_request_input_length_sum",),
    generation_tokens=("tgi_request_generated_tokens_sum",),
    unsupported={
        "kv_cache_usage_ratio": "TGI exports no KV-cache usage metric",
        "ttft": "TGI exports no time-to-first-token metric",
    },
)
TRITON = EngineSpec(
    engine="triton",
    prefixes=("nv_inference_",),
    waiting=("nv_inference_pending_request_count",),
    requests=("nv_inference_request_success", "nv_inference_request_success_total"),
    unsupported={
        "requests_running": "Triton exports no gauge of requests in execution",
        "kv_cache_usage_ratio": "Triton core exports no KV-cache usage metric",
        "ttft": "Triton exports no time-to-first-token metric",
        "itl": "Triton exports no inter-token latency metric",
        "e2e": "Triton exports only cumulative request-duration sums, no histogram to take percentiles of",
        "prompt_tokens_per_s": "Triton exports no token counters",
        "generation_tokens_per_s": "Triton exports no token counters",
    },
)
ENGINES: Mapping[str, EngineSpec] = {s.engine: s for s in (VLLM, SGLANG, TGI, TRITON)}


def detect(names: Iterable[str]) -> EngineSpec | None:
    """The engine whose prefix the most sample names carry; None when none matches."""
    hits = dict.fromkeys(ENGINES, 0)
    for name in names:
        for spec in ENGINES.values():
            if name.startswith(spec.prefixes):
                hits[spec.engine] += 1
    best = max(hits, key=lambda e: hits[e])
    return ENGINES[best] if hits[best] else None
