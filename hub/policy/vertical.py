"""Vertical recommendations: container requests and limits from observed use, the way VPA's recommender works.

The spokes report each container's CPU, memory and GPU memory use (protocol 1.3,
``Samples.containers``). ``ResourceHistory`` folds them, per workload, GPU type and container name
(all pods and clusters together, as VPA aggregates a container name over a target's pods), into
decaying histograms (``hub.policy.histogram``) and ``recommend`` reads them as VPA's
``podResourceRecommender`` does (kubernetes/autoscaler, ``vertical-pod-autoscaler/pkg/recommender/
logic/recommender.go``, ``estimator.go``; ``model/aggregate_container_state.go``, ``container.go``):

* **CPU**: every sample is added to the CPU histogram weighted by the container's CPU request (at
  least 0.1 core). Target = p90, lower bound = p50, upper bound = p95.
* **Memory** and **GPU memory**: each pod's container adds one *peak* per aggregation interval
  (24 h): a higher sample inside the interval replaces the interval's peak (subtract, add). Target
  = p90 of the peaks, lower = p50, upper = p95.
* Every estimate gets the safety margin (+15 %); the upper bound is multiplied by
  ``(1 + 1/confidence)``, the lower by ``(1 + 0.001/confidence)**-2``, where ``confidence`` is
  ``min(history in days, samples / 1440)``; with no history yet the upper bound is unbounded (None).
* Each is at least the pod minimum (25 millicores, 250 MiB) split over the workload's containers.

What may be applied (``Proposal``) adds the rails of docs/vertical.md: requests never below the
observed peak of memory (CPU is compressible: its request is the target), and limits kept in the
ratio to the request the container had, never below the observed peak of either resource.

Pure: no I/O, and time comes in as an argument (the report's ``sent_at``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.policy.histogram import CPU_BUCKETS, GPU_MEMORY_BUCKETS, MEMORY_BUCKETS, DecayingHistogram
from shared.messages import MAX_BYTES, MAX_CORES, ContainerResources, ContainerUsage, WorkloadReport

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class VerticalSettings:
    """VPA's recommender defaults; each field names the VPA flag it mirrors."""

    cpu_half_life_s: float = DAY_S
    """--cpu-histogram-decay-half-life (24h)."""
    memory_half_life_s: float = DAY_S
    """--memory-histogram-decay-half-life (24h); GPU memory uses it too."""
    memory_aggregation_interval_s: float = DAY_S
    """--memory-aggregation-interval (24h): one memory peak per pod container per interval."""
    sample_interval_s: float = 60.0
    """At most one sample per container this often: VPA reads the metrics API every minute
    (--recommender-interval), and its confidence counts samples as minutes."""
    target_percentile: float = 0.9
    lower_percentile: float = 0.5
    upper_percentile: float = 0.95
    safety_margin: float = 0.15
    """--recommendation-margin-fraction."""
    pod_min_cpu_cores: float = 0.025
    """--pod-recommendation-min-cpu-millicores (25m), split over the pod's containers."""
    pod_min_memory_bytes: float = 250 * 2**20
    """--pod-recommendation-min-memory-mb (250 MiB), split over the pod's containers."""
    min_cpu_sample_weight: float = 0.1
    """VPA's minSampleWeight: a CPU sample weighs its container's request in cores, at least this."""
    forget_pod_after_s: float = 2 * DAY_S
    """A pod container not seen for this long is dropped (its peaks stay in the aggregate)."""


@dataclass(slots=True)
class _PodContainer:
    """One pod's container: its own memory peak window (VPA's ContainerState)."""

    last_sample_s: float = -math.inf
    window_end_s: float | None = None
    memory_peak: float | None = None
    gpu_memory_peak: float | None = None
    """The current interval's peaks (None: none yet in this interval)."""


@dataclass(slots=True)
class Aggregate:
    """One container name of one workload on one GPU type (VPA's AggregateContainerState)."""

    cpu: DecayingHistogram
    memory: DecayingHistogram
    gpu_memory: DecayingHistogram
    first_sample_s: float | None = None
    last_sample_s: float | None = None
    samples: int = 0
    peak_cpu_cores: float | None = None
    peak_memory_bytes: float | None = None
    peak_gpu_memory_bytes: float | None = None
    spec: ContainerUsage | None = None
    """The latest sample, for its requests and limits."""

    def confidence(self) -> float:
        """VPA's getConfidence: min(history in days, samples as if one a minute, in days)."""
        if self.first_sample_s is None or self.last_sample_s is None:
            return 0.0
        return min((self.last_sample_s - self.first_sample_s) / DAY_S, self.samples / (60.0 * 24.0))


@dataclass(frozen=True, slots=True)
class Estimate:
    """Lower bound, target and upper bound of one resource; None where nothing was measured."""

    lower: float | None
    target: float | None
    upper: float | None
    peak: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"lower": _r(self.lower), "target": _r(self.target), "upper": _r(self.upper), "peak": _r(self.peak)}


@dataclass(frozen=True, slots=True)
class Proposal:
    """Requests and limits one would apply: the target, within the rails (docs/vertical.md)."""

    cpu_request_cores: float | None
    cpu_limit_cores: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"cpu_request_cores": _r(self.cpu_request_cores), "cpu_limit_cores": _r(self.cpu_limit_cores),
                "memory_request_bytes": _r(self.memory_request_bytes),
                "memory_limit_bytes": _r(self.memory_limit_bytes)}


@dataclass(frozen=True, slots=True)
class ContainerRecommendation:
    gpu_type: str
    container: str
    cpu_cores: Estimate
    memory_bytes: Estimate
    gpu_memory_bytes: Estimate
    current: Mapping[str, float | None]
    """The container's requests and limits as last reported."""
    proposal: Proposal
    confidence_days: float
    samples: int
    first_sample_s: float | None
    last_sample_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "gpu_type": self.gpu_type, "container": self.container,
            "cpu_cores": self.cpu_cores.to_json(), "memory_bytes": self.memory_bytes.to_json(),
            "gpu_memory_bytes": self.gpu_memory_bytes.to_json(),
            "current": {k: _r(v) for k, v in self.current.items()}, "proposal": self.proposal.to_json(),
            "confidence_days": _r(self.confidence_days), "samples": self.samples,
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _estimate(
    hist: DecayingHistogram, s: VerticalSettings, confidence: float, minimum: float, peak: float | None
) -> Estimate:
    """Percentiles + margin, confidence multipliers, and the minimum (VPA's estimator chain)."""
    margin = 1.0 + s.safety_margin
    target, lower, upper = (hist.percentile(p) for p in (s.target_percentile, s.lower_percentile, s.upper_percentile))
    if target is None or lower is None or upper is None:
        return Estimate(None, None, None, peak)
    target, lower, upper = target * margin, lower * margin, upper * margin
    if confidence > 0:
        upper_bound: float | None = upper * (1.0 + 1.0 / confidence)
        lower *= (1.0 + 0.001 / confidence) ** -2.0
    else:
        upper_bound, lower = None, 0.0  # VPA: an infinite upper bound and a zero lower one
    return Estimate(
        lower=max(lower, minimum),
        target=max(target, minimum),
        upper=None if upper_bound is None else max(upper_bound, minimum),
        peak=peak,
    )


def _scaled_limit(limit: float | None, request: float | None, new_request: float | None) -> float | None:
    """VPA keeps a limit in its ratio to the request; no limit stays no limit."""
    if limit is None or new_request is None:
        return None
    if not request:
        return max(limit, new_request)
    return new_request * limit / request


def propose(cpu: Estimate, memory: Estimate, spec: ContainerUsage | None) -> Proposal:
    """Requests at the targets; memory's never below its observed peak; limits in the old ratio and
    never below the peaks. Where nothing was measured the current value stays (None: unchanged)."""
    cpu_request = cpu.target
    memory_request = _max(memory.target, memory.peak) if memory.target is not None else None
    cpu_limit = memory_limit = None
    if spec is not None:
        cpu_limit = _scaled_limit(spec.cpu_limit_cores, spec.cpu_request_cores, cpu_request)
        memory_limit = _scaled_limit(spec.memory_limit_bytes, spec.memory_request_bytes, memory_request)
    if cpu_limit is not None:
        cpu_limit = max(cpu_limit, cpu.peak or 0.0, cpu_request or 0.0)
    if memory_limit is not None:
        memory_limit = max(memory_limit, memory.peak or 0.0, memory_request or 0.0)
    return Proposal(cpu_request, cpu_limit, memory_request, memory_limit)


def _replace_peak(hist: DecayingHistogram, peak: float | None, value: float, end_s: float) -> float:
    """The interval's peak after ``value``: a higher one takes the old one's place in the histogram."""
    if peak is not None and value <= peak:
        return peak
    if peak is not None:
        hist.subtract(peak, 1.0, end_s)
    hist.add(value, 1.0, end_s)
    return value


@dataclass
class ResourceHistory:
    """Every workload's container aggregates, fed with reports, read for recommendations."""

    settings: VerticalSettings = field(default_factory=VerticalSettings)
    _aggregates: dict[str, dict[tuple[str, str], Aggregate]] = field(default_factory=dict)
    """Workload key -> (GPU type, container name) -> aggregate."""
    _pods: dict[tuple[str, str, str, str], _PodContainer] = field(default_factory=dict)
    """(workload key, cluster id, pod, container) -> its peak window."""

    def observe(self, cluster_id: str, report: WorkloadReport, at_s: float) -> int:
        """Fold one workload report's containers in; returns how many samples were taken."""
        key = report.workload.key
        unknown_type = report.variants[0].gpu_type if len(report.variants) == 1 else "unknown"
        taken = 0
        for usage in report.samples.containers:
            gpu_type = usage.gpu_type or unknown_type
            taken += self._observe_container(key, cluster_id, gpu_type, usage, at_s)
        return taken

    def _aggregate(self, key: str, gpu_type: str, container: str) -> Aggregate:
        by_container = self._aggregates.setdefault(key, {})
        agg = by_container.get((gpu_type, container))
        if agg is None:
            s = self.settings
            agg = by_container[(gpu_type, container)] = Aggregate(
                cpu=DecayingHistogram(CPU_BUCKETS, s.cpu_half_life_s),
                memory=DecayingHistogram(MEMORY_BUCKETS, s.memory_half_life_s),
                gpu_memory=DecayingHistogram(GPU_MEMORY_BUCKETS, s.memory_half_life_s),
            )
        return agg

    def _observe_container(self, key: str, cluster_id: str, gpu_type: str, usage: ContainerUsage, at_s: float) -> int:
        pod = self._pods.setdefault((key, cluster_id, usage.pod, usage.container), _PodContainer())
        if at_s < pod.last_sample_s + self.settings.sample_interval_s:
            return 0  # VPA samples once a minute; a report every second would count 60 times
        measured = (usage.cpu_cores, usage.memory_bytes, usage.gpu_memory_bytes)
        agg = self._aggregate(key, gpu_type, usage.container)
        agg.spec = usage
        if all(v is None for v in measured):
            return 0
        pod.last_sample_s = at_s
        if usage.cpu_cores is not None:
            weight = max(usage.cpu_request_cores or 0.0, self.settings.min_cpu_sample_weight)
            agg.cpu.add(usage.cpu_cores, weight, at_s)
            agg.peak_cpu_cores = _max(agg.peak_cpu_cores, usage.cpu_cores)
        self._add_peaks(agg, pod, usage, at_s)
        agg.first_sample_s = at_s if agg.first_sample_s is None else min(agg.first_sample_s, at_s)
        agg.last_sample_s = at_s if agg.last_sample_s is None else max(agg.last_sample_s, at_s)
        agg.samples += 1
        return 1

    def _add_peaks(self, agg: Aggregate, pod: _PodContainer, usage: ContainerUsage, at_s: float) -> None:
        """VPA's AddMemorySample: one peak per pod container per aggregation interval, added at the
        interval's end; a higher sample inside the interval replaces it."""
        interval = self.settings.memory_aggregation_interval_s
        if pod.window_end_s is None or at_s >= pod.window_end_s:
            start = at_s if pod.window_end_s is None else pod.window_end_s
            pod.window_end_s = start + (math.floor((at_s - start) / interval) + 1) * interval
            pod.memory_peak = pod.gpu_memory_peak = None
        end = pod.window_end_s
        if usage.memory_bytes is not None:
            pod.memory_peak = _replace_peak(agg.memory, pod.memory_peak, usage.memory_bytes, end)
            agg.peak_memory_bytes = _max(agg.peak_memory_bytes, usage.memory_bytes)
        if usage.gpu_memory_bytes is not None:
            pod.gpu_memory_peak = _replace_peak(agg.gpu_memory, pod.gpu_memory_peak, usage.gpu_memory_bytes, end)
            agg.peak_gpu_memory_bytes = _max(agg.peak_gpu_memory_bytes, usage.gpu_memory_bytes)

    def prune(self, now_s: float, keep: Iterable[str] | None = None) -> None:
        """Forget pod containers silent past ``forget_pod_after_s``, and workloads not in ``keep``."""
        horizon = now_s - self.settings.forget_pod_after_s
        self._pods = {k: p for k, p in self._pods.items() if p.last_sample_s >= horizon or p.window_end_s is None}
        if keep is not None:
            kept = set(keep)
            self._aggregates = {k: v for k, v in self._aggregates.items() if k in kept}
            self._pods = {k: p for k, p in self._pods.items() if k[0] in kept}

    def workloads(self) -> list[str]:
        return sorted(self._aggregates)

    def recommend(self, key: str) -> list[ContainerRecommendation]:
        """The workload's recommendations, by GPU type then container; empty when nothing was reported."""
        by_container = self._aggregates.get(key, {})
        out = []
        for (gpu_type, container), agg in sorted(by_container.items()):
            siblings = sum(1 for g, _ in by_container if g == gpu_type)
            out.append(self._recommend_one(gpu_type, container, agg, siblings))
        return out

    def _recommend_one(self, gpu_type: str, container: str, agg: Aggregate, siblings: int) -> ContainerRecommendation:
        s, confidence = self.settings, agg.confidence()
        cpu = _estimate(agg.cpu, s, confidence, s.pod_min_cpu_cores / siblings, agg.peak_cpu_cores)
        memory = _estimate(agg.memory, s, confidence, s.pod_min_memory_bytes / siblings, agg.peak_memory_bytes)
        gpu_memory = _estimate(agg.gpu_memory, s, confidence, 0.0, agg.peak_gpu_memory_bytes)
        spec = agg.spec
        current = {
            "cpu_request_cores": spec.cpu_request_cores if spec else None,
            "cpu_limit_cores": spec.cpu_limit_cores if spec else None,
            "memory_request_bytes": spec.memory_request_bytes if spec else None,
            "memory_limit_bytes": spec.memory_limit_bytes if spec else None,
        }
        return ContainerRecommendation(
            gpu_type=gpu_type, container=container, cpu_cores=cpu, memory_bytes=memory, gpu_memory_bytes=gpu_memory,
            current=current, proposal=propose(cpu, memory, spec), confidence_days=confidence,
            samples=agg.samples, first_sample_s=agg.first_sample_s, last_sample_s=agg.last_sample_s,
        )


def _outside(current: float | None, estimate: Estimate) -> bool:
    """VPA's updater rule: a request outside [lower, upper] (or unset) is worth a rollout."""
    if estimate.target is None or estimate.lower is None:
        return False  # nothing measured: no reason to move
    if current is None:
        return True
    return current < estimate.lower or (estimate.upper is not None and current > estimate.upper)


def changes_due(
    recs: Iterable[ContainerRecommendation], containers: Iterable[ContainerUsage], default_gpu_type: str
) -> tuple[ContainerResources, ...]:
    """What one cluster's containers should be resized to: each (GPU type, container) whose current
    CPU or memory request (as the cluster reports it) lies outside the recommended bounds, set to
    the proposal, with the observed memory peak as the floor the spoke must respect."""
    by_key = {(r.gpu_type, r.container): r for r in recs}
    out: dict[tuple[str, str], ContainerResources] = {}
    for c in containers:
        key = (c.gpu_type or default_gpu_type, c.container)
        rec = by_key.get(key)
        if rec is None or key in out:
            continue
        if not (_outside(c.cpu_request_cores, rec.cpu_cores) or _outside(c.memory_request_bytes, rec.memory_bytes)):
            continue
        p = rec.proposal
        try:
            out[key] = ContainerResources(
                gpu_type=key[0], container=key[1],
                cpu_request_cores=_cap(p.cpu_request_cores, MAX_CORES),
                cpu_limit_cores=_cap(p.cpu_limit_cores, MAX_CORES),
                memory_request_bytes=_cap(p.memory_request_bytes, MAX_BYTES),
                memory_limit_bytes=_cap(p.memory_limit_bytes, MAX_BYTES),
                memory_floor_bytes=min(rec.memory_bytes.peak or 0.0, MAX_BYTES),
            )
        except ValueError:
            continue  # a proposal the wire cannot carry is not sent (a limit ratio beyond every bound)
    return tuple(out[k] for k in sorted(out))


def _cap(value: float | None, bound: float) -> float | None:
    return None if value is None else min(value, bound)
