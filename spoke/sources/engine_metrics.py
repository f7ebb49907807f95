"""Engine adapters as data: which series each inference engine, per version range, exports for
each ``Samples`` field, and how to read them without double counting.

One ``EngineSpec`` per engine *and* version range (vLLM V0 and V1, vLLM under Ray Serve, SGLang,
TGI, Triton, Triton with the TensorRT-LLM backend). Each signal lists candidate ``Metric``\\ s,
preferred first, so a scrape that carries both a current and a deprecated name reads the current
one. A ``Metric`` names a sample, which of its series count (``where``: label -> accepted values,
e.g. only finished reasons ``stop``/``length`` are throughput), a unit factor, and optionally a
series to subtract (vLLM's deferred waiting requests) or to divide by (TGI's KV-budget proxy).

The spec also says how an engine's series overlap, so that nothing is counted twice:

* ``total_label``: SGLang with priority scheduling exports a total under ``priority=""`` *and*
  one series per priority; only the total is read when both are there.
* ``rank_labels``: with ``--enable-metrics-for-all-schedulers`` every tensor-parallel rank of
  SGLang exports the same scheduler gauges; one rank (the lowest) is read per remaining label set.
* ``model_label``: Triton serves several models from one pod and labels every series with
  ``model``; the workload's own model (``SourceTarget.model``) selects its series.

Fields an engine cannot provide carry the reason, which ends up in ``Samples.missing_reasons``.
docs/sources.md has the same table for humans; tests/fixtures/README.md names the scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from spoke.sources.exposition import Exposition, Series


@dataclass(frozen=True, slots=True)
class Metric:
    """One exported sample name, and which of its series count towards a field."""

    name: str
    where: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Label -> accepted values; a series missing the label does not match."""
    unit: float = 1.0
    """Factor to the field's unit (ms -> s is 0.001); for histograms it scales the ``le`` bounds."""
    minus: Metric | None = None
    """A series to subtract (vLLM: waiting requests minus the deferred ones)."""
    over: Metric | None = None
    """A series to divide by (TGI: current batch tokens over the token budget)."""

    def matches(self, series: Series) -> bool:
        return all(series.labels.get(k) in allowed for k, allowed in self.where.items())


def m(name: str, *, unit: float = 1.0, minus: Metric | None = None, over: Metric | None = None,
      **where: str | Iterable[str]) -> Metric:
    accepted = {k: frozenset([v] if isinstance(v, str) else v) for k, v in where.items()}
    return Metric(name, accepted, unit, minus, over)


SUM_FIELDS = ("requests_waiting", "requests_running")
"""Gauges summed over pods, engines and DP ranks."""
MEAN_FIELDS = ("kv_cache_usage_ratio",)
"""Gauges in [0, 1], one per engine/DP rank; the workload gets their mean."""
RATE_FIELDS = (
    "request_rate_per_s",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "preemptions_per_s",
    "requests_failed_per_s",
)
"""Cumulative counters (or a histogram's ``_sum``); their per-second increase is the rate."""
PERCENTILE_FIELDS = ("ttft", "itl", "e2e", "queue_time")
"""Histogram base names (samples ``<base>_bucket``); window percentiles in seconds."""
RATIO_FIELDS = ("queue_time_mean_s",)
"""Increase of a cumulative sum over the increase of a count (Triton's queue time)."""
DISTRIBUTION_FIELDS = ("prompt_tokens",)
"""Histograms sent whole: the window's increase per bucket (prompt length per request)."""
STATE_FIELDS = ("engines_sleeping",)
ENGINE_FIELDS = frozenset(
    (*SUM_FIELDS, *MEAN_FIELDS, *RATE_FIELDS, *PERCENTILE_FIELDS, *RATIO_FIELDS, *DISTRIBUTION_FIELDS,
     *STATE_FIELDS)
)

Candidates = tuple[Metric, ...]


@dataclass(frozen=True, slots=True)
class EngineSpec:
    name: str
    """Adapter id, e.g. ``vllm-v1``."""
    engine: str
    """Engine family (``vllm``, ``ray-vllm``, ``sglang``, ``tgi``, ``triton``); what a workload's
    ``fleetscale.dev/engine`` label names."""
    versions: str
    """The version range this adapter was written against (docs and /readyz detail)."""
    prefixes: tuple[str, ...]
    """Sample-name prefixes that identify the engine family in a scrape."""
    markers: tuple[str, ...] = ()
    """Sample names whose presence selects this adapter within its family; empty = fallback."""
    signals: Mapping[str, Candidates] = field(default_factory=dict)
    ratios: Mapping[str, tuple[Metric, Metric]] = field(default_factory=dict)
    """``RATIO_FIELDS``: (cumulative sum, cumulative count)."""
    sleep: Metric | None = None
    """A gauge that is 1 while the engine is awake (vLLM ``engine_sleep_state{sleep_state="awake"}``)."""
    total_label: tuple[str, str] | None = None
    rank_labels: tuple[str, ...] = ()
    model_label: str | None = None
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def candidates(self, field_name: str) -> Candidates:
        return self.signals.get(field_name, ())

    def why_missing(self, field_name: str) -> str:
        if field_name in self.unsupported:
            return self.unsupported[field_name]
        names = [c.name + (f" over {c.over.name}" if c.over else "") for c in self.candidates(field_name)]
        names = names or [c.name for c in self.ratios.get(field_name, ())]
        return f"{self.name} ({self.versions}) did not export {' or '.join(names) or 'it'}"

    def select(self, expo: Exposition, metric: Metric, model: str | None = None) -> list[Series]:
        """The series of ``metric`` that count, with priority totals and replicated TP ranks
        read once and, when the engine serves several models, only ``model``'s."""
        series = [s for s in expo.series(metric.name) if metric.matches(s)]
        if self.model_label and model is not None:
            series = [s for s in series if s.labels.get(self.model_label) == model]
        if self.total_label:
            label, total = self.total_label
            if any(s.labels.get(label, total) != total for s in series):
                series = [s for s in series if s.labels.get(label, total) == total]
        if self.rank_labels:
            series = _one_rank(series, self.rank_labels)
        return series

    def value(self, expo: Exposition, metric: Metric, model: str | None = None) -> float | None:
        """Sum of the counted series in the field's unit; None when the sample is absent."""
        metric = resolve(expo, metric)
        if not expo.has(metric.name):
            return None
        total = sum(s.value for s in self.select(expo, metric, model)) * metric.unit
        if metric.minus is not None:
            total -= self.value(expo, metric.minus, model) or 0.0
        if metric.over is not None:
            denominator = self.value(expo, metric.over, model)
            if not denominator:
                return None
            total /= denominator
        return total

    def first(self, expo: Exposition, field_name: str) -> Metric | None:
        found = (resolve(expo, c) for c in self.candidates(field_name))
        return next((c for c in found if expo.has(c.name)), None)

    def models(self, expo: Exposition) -> tuple[str, ...]:
        """Models named by ``model_label`` on this engine's series (empty if it has none)."""
        if self.model_label is None:
            return ()
        seen = {
            s.labels[self.model_label]
            for name in expo.names
            if name.startswith(self.prefixes)
            for s in expo.series(name)
            if self.model_label in s.labels
        }
        return tuple(sorted(seen))


def resolve(expo: Exposition, metric: Metric) -> Metric:
    """``metric`` under the name the scrape carries it: prometheus_client's parser adds ``_total``
    to a counter sample that lacks it when a ``# TYPE ... counter`` line precedes it (Triton)."""
    if expo.has(metric.name) or not expo.has(f"{metric.name}_total"):
        return metric
    return Metric(f"{metric.name}_total", metric.where, metric.unit, metric.minus, metric.over)


def _one_rank(series: list[Series], rank_labels: tuple[str, ...]) -> list[Series]:
    """Keep, per label set without the rank labels, the series of the lowest rank."""
    best: dict[tuple[tuple[str, str], ...], Series] = {}
    for s in series:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k not in rank_labels))
        kept = best.get(key)
        if kept is None or _rank(s, rank_labels) < _rank(kept, rank_labels):
            best[key] = s
    return list(best.values())


def _rank(series: Series, rank_labels: tuple[str, ...]) -> tuple[int, ...]:
    out = []
    for label in rank_labels:
        raw = series.labels.get(label, "0")
        out.append(int(raw) if raw.isdigit() else 0)
    return tuple(out)


# --- vLLM ---------------------------------------------------------------------------------------

FINISHED = ("stop", "length")
"""vLLM finish reasons that are served requests; ``abort`` and ``error`` are not throughput."""
NOT_FINISHED = ("abort", "error")


def _vllm_signals(p: str, *, v1: bool) -> dict[str, Candidates]:
    waiting = m(f"{p}num_requests_waiting")
    if v1:
        # Deferred requests (LoRA budget, KV transfer, blocked) are not demand on this replica's
        # capacity; vLLM says the reasons sum to num_requests_waiting.
        waiting = m(f"{p}num_requests_waiting",
                    minus=m(f"{p}num_requests_waiting_by_reason", reason="deferred"))
    counter = ("", "_total") if p.startswith("ray_") else ("_total",)
    return {
        "requests_waiting": (waiting,),
        "requests_running": (m(f"{p}num_requests_running"),),
        "kv_cache_usage_ratio": (m(f"{p}kv_cache_usage_perc"), m(f"{p}gpu_cache_usage_perc")),
        "ttft": (m(f"{p}time_to_first_token_seconds"),),
        "itl": (m(f"{p}inter_token_latency_seconds"), m(f"{p}time_per_output_token_seconds")),
        "e2e": (m(f"{p}e2e_request_latency_seconds"),),
        "queue_time": (m(f"{p}request_queue_time_seconds"),),
        "request_rate_per_s": tuple(m(f"{p}request_success{s}", finished_reason=FINISHED) for s in counter),
        "requests_failed_per_s": tuple(
            m(f"{p}request_success{s}", finished_reason=NOT_FINISHED) for s in counter
        ),
        "prompt_tokens_per_s": tuple(m(f"{p}prompt_tokens{s}") for s in counter),
        "generation_tokens_per_s": tuple(m(f"{p}generation_tokens{s}") for s in counter),
        "preemptions_per_s": tuple(m(f"{p}num_preemptions{s}") for s in counter),
        "prompt_tokens": (m(f"{p}request_prompt_tokens"),),
    }


VLLM_V1 = EngineSpec(
    name="vllm-v1",
    engine="vllm",
    versions="vLLM >= 0.8, V1 engine",
    prefixes=("vllm:",),
    markers=("vllm:kv_cache_usage_perc", "vllm:num_requests_waiting_by_reason",
             "vllm:inter_token_latency_seconds_bucket"),
    signals=_vllm_signals("vllm:", v1=True),
    sleep=m("vllm:engine_sleep_state", sleep_state="awake"),
)
VLLM_V0 = EngineSpec(
    name="vllm-v0",
    engine="vllm",
    versions="vLLM 0.4 - 0.10, V0 engine",
    prefixes=("vllm:",),
    signals=_vllm_signals("vllm:", v1=False),
    unsupported={"engines_sleeping": "vLLM V0 exports no sleep state"},
)
RAY_VLLM = EngineSpec(
    name="ray-vllm",
    engine="ray-vllm",
    versions="Ray Serve LLM >= 2.44 (vLLM V1 metrics re-exported by Ray)",
    prefixes=("ray_vllm:",),
    signals=_vllm_signals("ray_vllm:", v1=True),
    sleep=m("ray_vllm:engine_sleep_state", sleep_state="awake"),
)

# --- SGLang -------------------------------------------------------------------------------------


def _sglang(*names: str, **where: str | Iterable[str]) -> Candidates:
    """SGLang builds differ in the separator after the prefix (``sglang:x`` or ``sglang_x``)."""
    # NB: mypy cannot tell **where from the keyword-only unit/minus/over it could also fill.
    return tuple(m(f"sglang{sep}{n}", **where) for n in names for sep in (":", "_"))  # type: ignore[arg-type]


SGLANG = EngineSpec(
    name="sglang",
    engine="sglang",
    versions="SGLang >= 0.4",
    prefixes=("sglang:", "sglang_"),
    signals={
        "requests_waiting": _sglang("num_queue_reqs"),
        "requests_running": _sglang("num_running_reqs"),
        "kv_cache_usage_ratio": _sglang("token_usage"),
        "ttft": _sglang("time_to_first_token_seconds"),
        "itl": _sglang("inter_token_latency_seconds", "time_per_output_token_seconds"),
        "e2e": _sglang("e2e_request_latency_seconds"),
        "queue_time": _sglang("queue_time_seconds"),
        "request_rate_per_s": _sglang("num_requests_total"),
        "requests_failed_per_s": _sglang("num_aborted_requests_total"),
        "prompt_tokens_per_s": _sglang("prompt_tokens_total"),
        "generation_tokens_per_s": _sglang("generation_tokens_total"),
        "preemptions_per_s": _sglang("num_retracted_requests_total"),
        "prompt_tokens": _sglang("prompt_tokens_histogram"),
    },
    total_label=("priority", ""),
    rank_labels=("tp_rank", "pp_rank", "moe_ep_rank"),
    unsupported={"engines_sleeping": "SGLang exports no sleep state"},
)

# --- TGI ----------------------------------------------------------------------------------------

TGI = EngineSpec(
    name="tgi",
    engine="tgi",
    versions="TGI >= 2.0 (router/src/server.rs)",
    prefixes=("tgi_",),
    signals={
        "requests_waiting": (m("tgi_queue_size"),),
        "requests_running": (m("tgi_batch_current_size"),),
        # Not a KV metric (TGI has none): the tokens the running batch may reach over the token
        # budget fixed at warm-up. Close to KV occupancy because TGI reserves max tokens per request.
        "kv_cache_usage_ratio": (m("tgi_batch_current_max_tokens", over=m("tgi_batch_max_total_tokens")),),
        "e2e": (m("tgi_request_duration"),),
        "itl": (m("tgi_request_mean_time_per_token_duration"),),
        "queue_time": (m("tgi_request_queue_duration"),),
        "request_rate_per_s": (m("tgi_request_success"), m("tgi_request_success_total")),
        "requests_failed_per_s": (m("tgi_request_failure"), m("tgi_request_failure_total")),
        "prompt_tokens_per_s": (m("tgi_request_input_length_sum"),),
        "generation_tokens_per_s": (m("tgi_request_generated_tokens_sum"),),
        "prompt_tokens": (m("tgi_request_input_length"),),
    },
    unsupported={
        "ttft": "TGI exports no time-to-first-token metric",
        "preemptions_per_s": "TGI exports no preemption counter",
        "engines_sleeping": "TGI has no sleep mode",
        "queue_time_mean_s": "read from the tgi_request_queue_duration histogram instead",
    },
)

# --- Triton -------------------------------------------------------------------------------------

_TRITON_SIGNALS: dict[str, Candidates] = {
    "requests_waiting": (m("nv_inference_pending_request_count"),),
    # Time to the first response: TTFT for decoupled (streaming) models such as the vLLM and
    # TensorRT-LLM backends; for a non-decoupled model the first response is the whole answer.
    "ttft": (m("nv_inference_first_response_histogram_ms", unit=0.001),),
    "request_rate_per_s": (m("nv_inference_request_success"), m("nv_inference_request_success_total")),
    "requests_failed_per_s": (m("nv_inference_request_failure"), m("nv_inference_request_failure_total")),
}
_TRITON_RATIOS = {
    "queue_time_mean_s": (m("nv_inference_queue_duration_us", unit=1e-6), m("nv_inference_request_success")),
}
_TRITON_UNSUPPORTED = {
    "itl": "Triton exports no inter-token latency metric",
    "e2e": "Triton exports only cumulative request-duration sums, no histogram to take percentiles of",
    "queue_time": "Triton exports only a cumulative queue duration (see queue_time_mean_s)",
    "prompt_tokens_per_s": "Triton exports no token counters",
    "generation_tokens_per_s": "Triton exports no token counters",
    "prompt_tokens": "Triton exports no prompt-length histogram",
    "preemptions_per_s": "Triton exports no preemption counter",
    "engines_sleeping": "Triton has no sleep mode",
}
TRITON = EngineSpec(
    name="triton",
    engine="triton",
    versions="Triton >= 23.12 (src/metrics.cc)",
    prefixes=("nv_inference_",),
    signals=_TRITON_SIGNALS,
    ratios=_TRITON_RATIOS,
    model_label="model",
    unsupported={
        **_TRITON_UNSUPPORTED,
        "requests_running": "Triton core exports no gauge of requests in execution",
        "kv_cache_usage_ratio": "Triton core exports no KV-cache usage metric",
    },
)
TRITON_TRTLLM = EngineSpec(
    name="triton-trtllm",
    engine="triton",
    versions="Triton TensorRT-LLM backend >= 0.7 (inflight batcher)",
    prefixes=("nv_inference_", "nv_trt_llm_"),
    markers=("nv_trt_llm_request_metrics",),
    signals={
        **_TRITON_SIGNALS,
        # The backend's own queue; Triton's pending count stays 0 for a decoupled model.
        "requests_waiting": (m("nv_trt_llm_request_metrics", request_type="waiting"),),
        "requests_running": (m("nv_trt_llm_request_metrics", request_type="active"),),
        "kv_cache_usage_ratio": (m("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="fraction"),),
    },
    ratios=_TRITON_RATIOS,
    model_label="model",
    unsupported=_TRITON_UNSUPPORTED,
)

ADAPTERS: tuple[EngineSpec, ...] = (VLLM_V1, VLLM_V0, RAY_VLLM, SGLANG, TGI, TRITON_TRTLLM, TRITON)
"""Within a family, adapters with markers come first; the last one is the family's fallback."""
ENGINES: Mapping[str, EngineSpec] = {
    **{a.name: a for a in ADAPTERS},
}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(a.engine for a in ADAPTERS))
KNOWN_PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(p for a in ADAPTERS for p in a.prefixes))


def family(engine: str) -> tuple[EngineSpec, ...]:
    return tuple(a for a in ADAPTERS if a.engine == engine)


def for_scrape(engine: str, names: Iterable[str]) -> EngineSpec | None:
    """The adapter of ``engine`` (a family or adapter name) that fits this scrape."""
    if engine in ENGINES and engine not in FAMILIES:
        return ENGINES[engine]
    members = family(engine)
    if not members:
        return None
    present = set(names)
    return next((a for a in members if a.markers and present & set(a.markers)), members[-1])


def detect(names: Iterable[str]) -> EngineSpec | None:
    """The adapter whose family prefix the most sample names carry; None when none matches."""
    names = list(names)
    hits = dict.fromkeys(FAMILIES, 0)
    for name in names:
        for fam in FAMILIES:
            # ray_vllm: also starts with nothing else known; vllm: is not a prefix of ray_vllm:.
            if name.startswith(family(fam)[0].prefixes):
                hits[fam] += 1
    best = max(hits, key=lambda e: hits[e])
    return for_scrape(best, names) if hits[best] else None
