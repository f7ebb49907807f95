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
and named in the reading's warnings; if none can be scraped the fields are missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from shared.messages import Percentiles
from spoke.sources import histograms
from spoke.sources.base import PartialSample, PodTarget, SourceReading, SourceTarget
from spoke.sources.engine_metrics import (
    COUNTER_FIELDS,
    ENGINE_FIELDS,
    ENGINES,
    GAUGE_FIELDS,
    HISTOGRAM_FIELDS,
    EngineSpec,
    detect,
)
from spoke.sources.exposition import Exposition, HttpClient, ScrapeError, scrape

FIRST_SCRAPE = "first scrape: no window yet"
NO_REQUESTS = "no requests finished in the window"
QUANTILES = (("p50_s", 0.50), ("p95_s", 0.95), ("p99_s", 0.99))


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
        for gone in self.in_flight.keys() - {k.split("@", 1)[0] for k in live}:
            del self.in_flight[gone]
        reading.warnings = tuple(warnings)
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
            if isinstance(result, ScrapeError):
                errors.append(str(result))
                continue
            spec = ENGINES.get(target.engine) if target.engine else detect(result.names)
            if spec is None:
                errors.append(
                    f"{pod}: no known inference-engine metrics (vllm:, sglang:, tgi_, nv_inference_)"
                )
                continue
            previous = self._windows.get(pod)
            if previous is not None and previous.engine != spec.engine:
                previous = None
            current = _remember(spec, result, now)
            reads.append(_PodRead(spec, result, current, previous))
            loads = [result.total(m) for field_name in ("requests_running", "requests_waiting")
                     if (m := result.first_present(spec.candidates(field_name)))]
            pod_name = pod.split("@", 1)[0]  # "namespace/pod"
            if loads and all(v is not None for v in loads):
                self.in_flight[pod_name] = sum(v for v in loads if v is not None)
            else:
                self.in_flight.pop(pod_name, None)  # unknown load is not zero load
            self._windows[pod] = current
        warnings.extend(errors)
        if not reads:
            reason = "; ".join(errors) if errors else "no pod of the workload has a metrics URL"
            return PartialSample.all_missing(ENGINE_FIELDS, reason)
        partial = PartialSample()
        for name in GAUGE_FIELDS:
            _gauge_sum(partial, name, reads)
        _kv_mean(partial, reads)
        windows = [r.at - r.previous.at for r in reads if r.previous is not None and r.at > r.previous.at]
        partial.window_s = max(windows) if windows else None
        for name in COUNTER_FIELDS:
            _rate(partial, name, reads)
        for name in HISTOGRAM_FIELDS:
            _percentiles(partial, name, reads)
        return partial

    async def aclose(self) -> None:
        await self._http.aclose()


def _pod_key(pod: PodTarget) -> str:
    return f"{pod.key}@{pod.metrics_url}"


def _remember(spec: EngineSpec, expo: Exposition, at: float) -> PodWindow:
    window = PodWindow(engine=spec.engine, at=at)
    for name in COUNTER_FIELDS:
        metric = expo.first_present(spec.candidates(name))
        total = expo.total(metric) if metric else None
        if metric and total is not None:
            window.counters[name] = (metric, total)
    for name in HISTOGRAM_FIELDS:
        base = expo.first_present(f"{c}_bucket" for c in spec.candidates(name))
        buckets = histograms.collect(expo, base.removesuffix("_bucket")) if base else None
        if base and buckets is not None:
            window.histograms[name] = (base, buckets)
    return window


def _not_exported(name: str, reads: Sequence[_PodRead]) -> str:
    spec = reads[0].spec
    return spec.unsupported.get(name) or f"{spec.engine} did not export {' or '.join(spec.candidates(name))}"


def _gauge_sum(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
    totals = [r.expo.total(m) for r in reads if (m := r.expo.first_present(r.spec.candidates(name)))]
    values = [v for v in totals if v is not None]
    if values:
        partial.measured(name, sum(values))
    else:
        partial.missing(name, _not_exported(name, reads))


def _kv_mean(partial: PartialSample, reads: Sequence[_PodRead]) -> None:
    name = "kv_cache_usage_ratio"
    values = [
        s.value
        for r in reads
        if (m := r.expo.first_present(r.spec.candidates(name)))
        for s in r.expo.series(m)
    ]
    if not values:
        partial.missing(name, _not_exported(name, reads))
        return
    mean = sum(values) / len(values)
    if 0.0 <= mean <= 1.0:
        partial.measured(name, mean)
    else:
        partial.missing(name, f"KV-cache usage {mean} is outside [0, 1]")


def _rate(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
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
    if rate is not None:
        partial.measured(name, rate)
    else:
        partial.missing(name, FIRST_SCRAPE if exported else _not_exported(name, reads))


def _percentiles(partial: PartialSample, name: str, reads: Sequence[_PodRead]) -> None:
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
    if not increases:
        partial.missing(name, FIRST_SCRAPE if exported else _not_exported(name, reads))
        return
    window = histograms.add(increases)
    if histograms.observations(window) <= 0:
        partial.missing(name, NO_REQUESTS)
        return
    values = {label: histograms.quantile(q, window) for label, q in QUANTILES}
    partial.measured(name, Percentiles(**values))
