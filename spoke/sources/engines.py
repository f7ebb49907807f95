"""Queue, KV-cache, latency and throughput of a workload, read from its inference engines' ``/metrics``.

Each pod's engine (vLLM, SGLang, TGI, Triton; see ``engine_metrics``) is scraped directly, so the
numbers are as fresh as the scrape and need no Prometheus. Gauges are read as they are; everything
windowed comes from the difference between this scrape and the previous one *of the same pod*:

* latency percentiles: per-bucket increase of the cumulative histograms, summed across pods, then
  ``histogram_quantile`` (``histograms``); i.e. ``histogram_quantile(q, sum by (le)
  (increase(x_bucket[window])))``;
* rates: counter increase / elapsed seconds per pod, summed across pods;
* a counter or bucket that went down restarted from zero (pod restart), as in Prometheus.

A pod's first scrape has no window: its windowed fields are missing with reason
``"first scrape: no window yet"``. A window with no finished request has no latency percentiles
(``"no requests finished in the window"``), which is not the same as a zero latency.

Aggregation per workload: queue counts sum over pods and engines (DP ranks), KV-cache usage is the
mean over every engine's gauge, histogram increases add. Pods that cannot be scraped are left out
and named in the reading's warnings; if none can be scraped the fields are missing. Which series
count (priority totals, one TP rank, the workload's model on a multi-model Triton, finished
requests only) is the adapter's business (``engine_metrics``).

A pod whose scrape carries no known engine is *unknown*, never idle: its fields are missing with
that reason and it is listed in ``EngineSource.unknown`` (the spoke's metric and ``/readyz`` detail).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from shared.messages import Percentiles, TokenHistogram
from spoke.sources import histograms
from spoke.sources.base import PartialSample, PodTarget, SourceReading, SourceTarget
from spoke.sources.engine_metrics import (
    DISTRIBUTION_FIELDS,
    ENGINE_FIELDS,
    KNOWN_PREFIXES,
    MEAN_FIELDS,
    PERCENTILE_FIELDS,
    RATE_FIELDS,
    RATIO_FIELDS,
    SUM_FIELDS,
    EngineSpec,
    Metric,
    detect,
    for_scrape,
)
from spoke.sources.exposition import Exposition, HttpClient, ScrapeError, scrape

FIRST_SCRAPE = "first scrape: no window yet"
NO_REQUESTS = "no requests finished in the window"
QUANTILES = (("p50_s", 0.50), ("p95_s", 0.95), ("p99_s", 0.99))
MAX_WIRE_BUCKETS = 64
"""``TokenHistogram`` carries at most this many bounds; finer engine histograms are coarsened."""


@dataclass(slots=True)
class PodWindow:
    """What one pod's previous scrape left behind, to difference the next one against."""

    engine: str
    at: float
    counters: dict[str, tuple[str, float]] = field(default_factory=dict)
    """field -> (sample name read, total)."""
    histograms: dict[str, tuple[str, histograms.Buckets]] = field(default_factory=dict)


@dataclass(slots=True)
class _PodRead:
    spec: EngineSpec
    expo: Exposition
    model: str | None
    current: PodWindow
    previous: PodWindow | None

    @property
    def at(self) -> float:
        return self.current.at


class EngineSource:
    """Scrapes every pod's engine endpoint (``PodTarget.metrics_url``) and keeps one window per pod."""

    name = "engines"
    capabilities = ENGINE_FIELDS

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self._http = HttpClient(session)
        self._clock = clock
        self._windows: dict[str, PodWindow] = {}
        self.in_flight: dict[str, float] = {}
        """Per pod key: requests running + waiting at its last scrape (drain-safe scale-down)."""
        self.unknown: dict[str, str] = {}
        """Pod key ("namespace/pod") -> why its engine is unknown, as of the last read."""
        self.adapters: dict[str, str] = {}
        """Pod key -> adapter read at the last scrape (``vllm-v1``...), for /readyz."""
        self._rejected = 0

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        pods = [(t, p) for t in targets for p in t.pods if p.metrics_url]
        session = self._http.session()
        results = await asyncio.gather(
            *(scrape(session, p.metrics_url or "", timeout_s=self.timeout_s) for _, p in pods),
            return_exceptions=True,
        )
        scrapes: dict[str, dict[str, Exposition | ScrapeError]] = {}
        for (t, p), result in zip(pods, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, ScrapeError):
                raise result
            scrapes.setdefault(t.key, {})[_pod_key(p)] = result
        now = self._clock()
        reading = SourceReading(source=self.name)
        warnings: list[str] = []
        for t in targets:
            reading.samples[t.key] = self.observe(t, scrapes.get(t.key, {}), now=now, warnings=warnings)
        live = {_pod_key(p) for t in targets for p in t.pods}
        for gone in self._windows.keys() - live:
            del self._windows[gone]
        live_pods = {k.split("@", 1)[0] for k in live}
        for table in (self.in_flight, self.unknown, self.adapters):
            for gone in table.keys() - live_pods:
                del table[gone]
        reading.warnings = tuple(warnings)
        reading.rejected_samples, self._rejected = self._rejected, 0
        return reading

    def observe(
        self,
        target: SourceTarget,
        scrapes: Mapping[str, Exposition | ScrapeError],
        *,
        now: float,
        warnings: list[str] | None = None,
    ) -> PartialSample:
        """Fold one round of per-pod scrapes (pod key -> scrape or error) into the workload's sample
        and remember them as the start of the next window."""
        warnings = warnings if warnings is not None else []
        reads: list[_PodRead] = []
        errors: list[str] = []
        for pod, result in scrapes.items():
            pod_name = pod.split("@", 1)[0]  # "namespace/pod"
            if isinstance(result, ScrapeError):
                errors.append(str(result))
                continue
            read = self._read_pod(target, pod, pod_name, result, now, errors)
            if read is not None:
                reads.append(read)
        warnings.extend(errors)
        if not reads:
            reason = "; ".join(errors) if errors else "no pod of the workload has a metrics URL"
            return PartialSample.all_missing(ENGINE_FIELDS, reason)
        return _sample(reads)

    def _read_pod(
        self, target: SourceTarget, pod: str, pod_name: str, expo: Exposition, now: float, errors: list[str]
    ) -> _PodRead | None:
        spec = for_scrape(target.engine, expo.names) if target.engine else detect(expo.names)
        problem = _unknown(target, spec, expo)
        if problem is not None:
            self.unknown[pod_name] = problem
            self.in_flight.pop(pod_name, None)  # unknown load is not zero load
            errors.append(f"{pod_name}: {problem}")
            return None
        assert spec is not None
        if expo.rejected:
            self._rejected += expo.rejected
            errors.append(f"{pod_name}: {expo.rejected} sample line(s) dropped, e.g. {expo.rejected_example}")
        self.unknown.pop(pod_name, None)
        self.adapters[pod_name] = spec.name
        model, unattributed = _model(spec, target, expo)
        if unattributed is not None:
            errors.append(f"{pod_name}: {unattributed}")
            self.in_flight.pop(pod_name, None)  # another model's load is not this workload's
            return None
        previous = self._windows.get(pod)
        if previous is not None and previous.engine != spec.name:
            previous = None
        current = _remember(spec, expo, now, model)
        loads = [spec.value(expo, c, model) for f in ("requests_running", "requests_waiting")
                 if (c := spec.first(expo, f))]
        if loads and all(v is not None for v in loads):
            self.in_flight[pod_name] = sum(v for v in loads if v is not None)
        else:
            self.in_flight.pop(pod_name, None)  # unknown load is not zero load
        self._windows[pod] = current
        return _PodRead(spec, expo, model, current, previous)

    async def aclose(self) -> None:
        await self._http.aclose()


def _unknown(target: SourceTarget, spec: EngineSpec | None, expo: Exposition) -> str | None:
    if target.engine and spec is None:
        return f"engine {target.engine!r} named by the workload is not one the spoke knows"
    if spec is None:
        return f"unknown engine: no known inference-engine metrics ({', '.join(KNOWN_PREFIXES)})"
    return None


def _model(spec: EngineSpec, target: SourceTarget, expo: Exposition) -> tuple[str | None, str | None]:
    """(the model whose series count, None) or (None, why the pod cannot be attributed)."""
    models = spec.models(expo)
    if target.model is not None:
        if models and target.model not in models:
            return None, f"model {target.model!r} is not served here (serves {', '.join(models)})"
        return (target.model if models else None), None
    if len(models) > 1:
        return None, (f"serves {len(models)} models ({', '.join(models)}); set the workload's "
                      "fleetscale.dev/model label to the one it scales for")
    return (models[0] if models else None), None


def _pod_key(pod: PodTarget) -> str:
    return f"{pod.key}@{pod.metrics_url}"


def _buckets(spec: EngineSpec, expo: Exposition, metric: Metric, model: str | None) -> histograms.Buckets | None:
    bucket = Metric(f"{metric.name}_bucket", metric.where)
    if not expo.has(bucket.name):
        return None
    out: histograms.Buckets = {}
    for s in spec.select(expo, bucket, model):
        le = float(s.labels["le"])
        bound = le if math.isinf(le) else le * metric.unit
        out[bound] = out.get(bound, 0.0) + s.value
    return out


def _remember(spec: EngineSpec, expo: Exposition, at: float, model: str | None) -> PodWindow:
    window = PodWindow(engine=spec.name, at=at)
    for name in RATE_FIELDS:
        metric = spec.first(expo, name)
        total = spec.value(expo, metric, model) if metric else None
        if metric and total is not None:
            window.counters[name] = (metric.name, total)
    for name, pair in spec.ratios.items():
        for part, metric in zip(("sum", "count"), pair, strict=True):
            total = spec.value(expo, metric, model)
            if total is not None:
                window.counters[f"{name}.{part}"] = (metric.name, total)
    for name in (*PERCENTILE_FIELDS, *DISTRIBUTION_FIELDS):
        metric = next((c for c in spec.candidates(name) if expo.has(f"{c.name}_bucket")), None)
        buckets = _buckets(spec, expo, metric, model) if metric else None
        if metric and buckets is not None:
            window.histograms[name] = (metric.name, buckets)
    return window


def _sample(reads: Sequence[_PodRead]) -> PartialSample:
    partial = PartialSample()
    for name in SUM_FIELDS:
        _gauge_sum(partial, name, reads)
    for name in MEAN_FIELDS:
        _gauge_mean(partial, name, reads)
    windows = [r.at - r.previous.at for r in reads if r.previous is not None and r.at > r.previous.at]
    partial.window_s = max(windows) if windows else None
    for name in RATE_FIELDS:
        _rate(partial, name, reads)
    for name in RATIO_FIELDS:
        _ratio(partial, name, reads)
    for name in PERCENTILE_FIELDS:
        _percentiles(partial, name, reads)
    for name in DISTRIBUTION_FIELDS:
        _distribution(partial, name, reads)
    _sleeping(partial, reads)
    return partial


def _not_exported(name: str, reads: Sequence[_PodRead]) -> str:
    return "; ".join(dict.fromkeys(r.spec.why_missing(name) for r in reads))


def _gauges(name: str, reads: Sequence[_PodRead]) -> list[float]:
    values = []
    for r in reads:
        metric = r.spec.first(r.expo, name)
        value = r.spec.value(r.expo, metric, r.model) if metric else None
        if value is not None:
            values.append(value)
    return values


def _gauge_sum(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    values = _gauges(name, reads)
    if values:
        partial.measured(name, max(sum(values), 0.0))
    else:
        partial.missing(name, _not_exported(name, reads))


def _gauge_mean(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    """Mean over every engine's (DP rank's) gauge: each selected series is one engine."""
    values = []
    for r in reads:
        metric = r.spec.first(r.expo, name)
        if metric is None:
            continue
        if metric.over is not None or metric.minus is not None:
            value = r.spec.value(r.expo, metric, r.model)
            values += [] if value is None else [value]
        else:
            values += [s.value * metric.unit for s in r.spec.select(r.expo, metric, r.model)]
    if not values:
        partial.missing(name, _not_exported(name, reads))
        return
    mean = sum(values) / len(values)
    if 0.0 <= mean <= 1.0:
        partial.measured(name, mean)
    else:
        partial.missing(name, f"{name} {mean} is outside [0, 1]")


def _increase(name: str, reads: Sequence[_PodRead]) -> tuple[bool, float | None]:
    """(exported at all, summed per-second increase over pods with a window)."""
    exported = False
    rate: float | None = None
    for r in reads:
        current = r.current.counters.get(name)
        if current is None:
            continue
        exported = True
        before = r.previous.counters.get(name) if r.previous else None
        if r.previous is None or before is None or before[0] != current[0] or r.at <= r.previous.at:
            continue
        rate = (rate or 0.0) + histograms.counter_increase(before[1], current[1]) / (r.at - r.previous.at)
    return exported, rate


def _rate(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    exported, rate = _increase(name, reads)
    if rate is not None:
        partial.measured(name, rate)
    else:
        partial.missing(name, FIRST_SCRAPE if exported else _not_exported(name, reads))


def _ratio(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    exported, total = _increase(f"{name}.sum", reads)
    _, count = _increase(f"{name}.count", reads)
    if total is None or count is None:
        partial.missing(name, FIRST_SCRAPE if exported else _not_exported(name, reads))
    elif count <= 0:
        partial.missing(name, NO_REQUESTS)
    else:
        partial.measured(name, total / count)


def _window_histogram(name: str, reads: Sequence[_PodRead]) -> tuple[bool, list[histograms.Buckets]]:
    exported = False
    increases: list[histograms.Buckets] = []
    for r in reads:
        current = r.current.histograms.get(name)
        if current is None:
            continue
        exported = True
        before = r.previous.histograms.get(name) if r.previous else None
        if before is None or before[0] != current[0]:
            continue
        increases.append(histograms.increase(before[1], current[1]))
    return exported, increases


def _window(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> histograms.Buckets | None:
    """The window's histogram of ``name`` over the pods, or None with the reason recorded as missing."""
    exported, increases = _window_histogram(name, reads)
    if not increases:
        partial.missing(name, FIRST_SCRAPE if exported else _not_exported(name, reads))
        return None
    window = histograms.add(increases)
    if histograms.observations(window) <= 0:
        partial.missing(name, NO_REQUESTS)
        return None
    return window


def _percentiles(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    window = _window(partial, name, reads)
    if window is not None:
        partial.measured(name, Percentiles(**{label: histograms.quantile(q, window) for label, q in QUANTILES}))


def _distribution(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    window = _window(partial, name, reads)
    if window is not None:
        bounds, counts = histograms.per_bucket(histograms.coarsen(window, MAX_WIRE_BUCKETS))
        partial.measured(name, TokenHistogram(le_tokens=bounds, counts=counts))


def _sleeping(partial: PartialSample, reads: Sequence[_PodRead]) -> None:
    """Engines asleep (vLLM sleep mode): their empty queues are not idle capacity."""
    name = "engines_sleeping"
    states = []
    for r in reads:
        if r.spec.sleep is None or not r.expo.has(r.spec.sleep.name):
            continue
        states += [s.value < 0.5 for s in r.spec.select(r.expo, r.spec.sleep, r.model)]
    if states:
        partial.measured(name, float(sum(states)))
    else:
        partial.missing(name, _not_exported(name, reads))
