"""Signals: each policy signal read from a workload's per-cluster telemetry, in the shape its proposal needs.

A spoke reports one ``Samples`` per workload per cluster: means over the cluster's replicas (GPU,
CPU, memory, KV cache), totals (requests waiting, request and token rates) and latency
percentiles. The HPA's rules are written for *per-pod* readings, so each utilisation-like or
per-replica signal becomes a list of ``PodSample``: a cluster's reading stands for each of its
ready replicas (a mean for each, or the total shared out evenly), replicas that are asked for but
not ready are the HPA's unready pods, and a cluster that has ready replicas but did not measure the
signal contributes *missing* pods. ``hub.policy.hpa.replicas_for_metric`` then applies the HPA's
rules for missing and unready pods exactly.

Latency signals are not proportional to load (flat until a replica saturates, then explode), so
they are not turned into pods: ``LatencyReading`` carries the fleet latency for the guard and the
per-cluster readings the capacity model learns from (``capacity.py``).

A queue or a rate reported by a cluster with no ready replica (the gateway of a workload whose
replicas are elsewhere, or starting) has no pod to stand for; it is fleet-level load, so it is
shared out over every ready replica of the workload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.policy.hpa import MetricSource, MetricTarget, PodSample, TargetType
from hub.policy.model import Metric, SignalSpec
from hub.state import FleetSnapshot, WorkloadView
from shared.messages import Samples

AVERAGE_VALUE = frozenset({Metric.QUEUE_PER_REPLICA, Metric.REQUEST_RATE_PER_REPLICA, Metric.TOKEN_RATE_PER_REPLICA})
"""Per-replica totals: the HPA's ``AverageValue`` of a Pods metric (KEDA's default metric type)."""

LOAD_METRICS = AVERAGE_VALUE | {Metric.TTFT, Metric.ITL, Metric.E2E_LATENCY}
"""Signals that measure load (or its latency): the ones panic mode and prediction act on."""

UNITS: dict[Metric, str] = {
    Metric.GPU_UTILIZATION: "%", Metric.GPU_MEMORY: "%", Metric.CPU: "%", Metric.MEMORY: "%",
    Metric.KV_CACHE: "%", Metric.TTFT: "s", Metric.ITL: "s", Metric.E2E_LATENCY: "s",
    Metric.QUEUE_PER_REPLICA: "requests/replica", Metric.REQUEST_RATE_PER_REPLICA: "req/s/replica",
    Metric.TOKEN_RATE_PER_REPLICA: "tokens/s/replica",
}

# The Samples field(s) each metric reads, for the missing reason.
_FIELDS: dict[Metric, str] = {
    Metric.GPU_UTILIZATION: "gpus", Metric.GPU_MEMORY: "gpus", Metric.CPU: "cpu_utilization_ratio",
    Metric.MEMORY: "memory_utilization_ratio", Metric.KV_CACHE: "kv_cache_usage_ratio",
    Metric.TTFT: "ttft", Metric.ITL: "itl", Metric.E2E_LATENCY: "e2e",
    Metric.QUEUE_PER_REPLICA: "requests_waiting", Metric.REQUEST_RATE_PER_REPLICA: "request_rate_per_s",
    Metric.TOKEN_RATE_PER_REPLICA: "prompt_tokens_per_s",
}
_LATENCY_FIELD = {Metric.TTFT: "ttft", Metric.ITL: "itl", Metric.E2E_LATENCY: "e2e"}


@dataclass(frozen=True, slots=True)
class ClusterPart:
    """One fresh cluster's share of a workload: what was asked there, what is ready, what it measured."""

    cluster_id: str
    asked: int
    """Replicas the hub asked for here (or observed, when no ask is live): the HPA's spec.replicas."""
    ready: int
    ready_by_type: Mapping[str, int]
    samples: Samples

    @property
    def gpu_type(self) -> str | None:
        """The one GPU type serving here, if exactly one has ready replicas (else readings are mixed)."""
        types = [t for t, n in self.ready_by_type.items() if n > 0]
        return types[0] if len(types) == 1 else None


def cluster_parts(snapshot: FleetSnapshot, view: WorkloadView) -> tuple[ClusterPart, ...]:
    """The workload's fresh clusters, in cluster id order."""
    asked: dict[str, int] = {}
    for (cluster_id, _), n in snapshot.current_placement(view).items():
        asked[cluster_id] = asked.get(cluster_id, 0) + n
    parts = []
    for cluster_id, r in sorted(view.reports.items()):
        by_type = {v.gpu_type: v.ready_replicas for v in r.variants} if r.variants else {"unknown": r.ready_replicas}
        parts.append(ClusterPart(cluster_id, asked.get(cluster_id, 0), r.ready_replicas, by_type, r.samples))
    return tuple(parts)


def missing_reason(samples: Samples, name: str) -> str:
    reasons = samples.missing_reasons
    return reasons.get(name) or reasons.get("*") or "not reported"


@dataclass(frozen=True, slots=True)
class SignalReading:
    """One HPA-style signal, ready for ``replicas_for_metric``."""

    spec: SignalSpec
    value: float | None
    """The fleet's value in the signal's unit (mean over measured ready replicas), for the record."""
    target: MetricTarget
    pods: tuple[PodSample, ...]
    missing: Mapping[str, str] = field(default_factory=dict)
    """Cluster id -> why, for clusters with ready replicas that did not measure the signal."""

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def _cluster_value(part: ClusterPart, metric: Metric) -> float | None:
    """The cluster's reading: a percentage for utilisation-like metrics, a total for per-replica ones."""
    s = part.samples
    if metric is Metric.GPU_UTILIZATION:
        ratio = s.gpu_utilization_ratio
        return None if ratio is None else 100.0 * ratio
    if metric is Metric.GPU_MEMORY:
        used = [100.0 * g.memory_used_bytes / g.memory_total_bytes for g in s.gpus
                if g.memory_used_bytes is not None and g.memory_total_bytes]
        return sum(used) / len(used) if used else None
    if metric in (Metric.CPU, Metric.MEMORY, Metric.KV_CACHE):
        ratio = {Metric.CPU: s.cpu_utilization_ratio, Metric.MEMORY: s.memory_utilization_ratio,
                 Metric.KV_CACHE: s.kv_cache_usage_ratio}[metric]
        return None if ratio is None else 100.0 * ratio
    if metric is Metric.QUEUE_PER_REPLICA:
        return s.requests_waiting
    if metric is Metric.REQUEST_RATE_PER_REPLICA:
        return s.request_rate_per_s
    if metric is Metric.TOKEN_RATE_PER_REPLICA:
        return token_rate(s)
    raise ValueError(f"{metric.value} is not an HPA-style signal")


def token_rate(s: Samples) -> float | None:
    """Prompt plus generated tokens per second; missing unless both are measured."""
    if s.prompt_tokens_per_s is None or s.generation_tokens_per_s is None:
        return None
    return s.prompt_tokens_per_s + s.generation_tokens_per_s


def metric_target(signal: SignalSpec) -> MetricTarget:
    """The HPA target a signal maps to.

    Utilisation-like signals are the HPA's ``Resource`` ``Utilization`` (each replica "requests"
    100 %, so its reading is its utilisation), with the resource named after the metric: ``cpu``
    therefore gets the HPA's CPU-only readiness rule. The HPA only takes integer percentages; a
    fractional target is kept exactly as a ``Pods`` ``AverageValue`` of the percentage.
    Per-replica signals are ``Pods`` ``AverageValue``.
    """
    if signal.metric in AVERAGE_VALUE:
        return MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, signal.target, signal.metric.value)
    if float(signal.target).is_integer():
        return MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, signal.target, signal.metric.value)
    return MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, signal.target, signal.metric.value)


def read_signal(parts: tuple[ClusterPart, ...], signal: SignalSpec) -> SignalReading:
    """Per-pod samples for an HPA-style signal (see the module docstring for the mapping)."""
    metric = signal.metric
    if metric.is_latency:
        raise ValueError(f"{signal.name} is a latency signal; read it with read_latency")
    target = metric_target(signal)
    request = 100.0 if target.type is TargetType.UTILIZATION else None
    total_ready = sum(p.ready for p in parts)
    shared = 0.0
    if metric in AVERAGE_VALUE:
        for part in parts:
            value = _cluster_value(part, metric)
            if part.ready == 0 and value:
                shared += value
    pods: list[PodSample] = []
    missing: dict[str, str] = {}
    measured: list[tuple[float, int]] = []
    for part in parts:
        value = _cluster_value(part, metric)
        if part.ready:
            if value is None:
                missing[part.cluster_id] = missing_reason(part.samples, _FIELDS[metric])
                pods += [PodSample(None, request=request)] * part.ready
            else:
                if metric in AVERAGE_VALUE:
                    value = value / part.ready + shared / total_ready
                pods += [PodSample(value, request=request)] * part.ready
                measured.append((value, part.ready))
        # Asked for but not ready: the HPA's unready pods (Pending counts for every metric).
        pods += [PodSample(None, ready=False, pending=True, request=request)] * max(part.asked - part.ready, 0)
    weight = sum(n for _, n in measured)
    fleet = sum(v * n for v, n in measured) / weight if weight else None
    return SignalReading(signal, fleet, target, tuple(pods), missing)


@dataclass(frozen=True, slots=True)
class ClusterLatency:
    cluster_id: str
    gpu_type: str | None
    ready: int
    latency_s: float | None
    requests: float | None
    """Requests the window held (rate x window), the weight of this reading."""
    tokens_per_s: float | None
    """Tokens the cluster's replicas processed per second."""


@dataclass(frozen=True, slots=True)
class LatencyReading:
    """A latency signal: the fleet latency (request-weighted) and each cluster's reading."""

    spec: SignalSpec
    value: float | None
    clusters: tuple[ClusterLatency, ...]
    missing: Mapping[str, str] = field(default_factory=dict)
    """Clusters that served load but did not measure the latency."""
    idle: tuple[str, ...] = ()
    """Clusters whose window held less than one request: no latency to measure, not a failure."""

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def read_latency(parts: tuple[ClusterPart, ...], signal: SignalSpec) -> LatencyReading:
    """The latency at the signal's percentile, fleet-wide and per cluster.

    The fleet value weights each cluster by its request rate (the busy clusters dominate a fleet's
    percentile), or takes the worst cluster when no rate is known. A cluster that served less than
    one request in its window has no latency to report: that is idleness, not missing data.
    """
    name = _LATENCY_FIELD[signal.metric]
    percentile = signal.percentile or "p95"
    out: list[ClusterLatency] = []
    missing: dict[str, str] = {}
    idle: list[str] = []
    for part in parts:
        s = part.samples
        value = getattr(s, name).at(percentile)
        rate = s.request_rate_per_s
        requests = None if rate is None or s.window_s is None else rate * s.window_s
        if part.ready == 0 and value is None:
            continue
        if value is None:
            if requests is not None and requests < 1.0:
                idle.append(part.cluster_id)
            else:
                missing[part.cluster_id] = missing_reason(s, name)
            continue
        tokens = token_rate(s)
        out.append(ClusterLatency(part.cluster_id, part.gpu_type, part.ready, value, requests, tokens))
    weights = [(c.latency_s, c.requests) for c in out if c.latency_s is not None]
    value = None
    if weights:
        total = sum(w for _, w in weights if w)
        if total > 0:
            value = sum(v * (w or 0.0) for v, w in weights) / total
        else:
            value = max(v for v, _ in weights)
    return LatencyReading(signal, value, tuple(out), missing, tuple(idle))


@dataclass(frozen=True, slots=True)
class LoadReading:
    """The workload's load across fresh clusters: what capacity, zero and prediction work from."""

    request_rate: float | None
    """Requests per second entering the workload (None when no cluster measured it)."""
    token_rate: float | None
    """Prompt + generated tokens per second processed by its replicas."""
    prompt_rate: float | None
    generation_rate: float | None
    waiting: float | None
    """Requests waiting, fleet-wide."""
    running: float | None = None
    """Requests in the replicas' batches, fleet-wide (None when no cluster measured it)."""
    missing: Mapping[str, str] = field(default_factory=dict)
    """Clusters with ready replicas whose request or token rate is missing: the load is partial."""

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def idle(self) -> bool:
        """Measured, and nothing arrives or waits (scale to zero's condition)."""
        return self.request_rate == 0 and self.waiting == 0 and not self.missing


def read_load(parts: tuple[ClusterPart, ...]) -> LoadReading:
    rates: list[float] = []
    tokens: list[float] = []
    prompt: list[float] = []
    generation: list[float] = []
    waiting: list[float] = []
    running: list[float] = []
    missing: dict[str, str] = {}
    for part in parts:
        s = part.samples
        if s.request_rate_per_s is not None:
            rates.append(s.request_rate_per_s)
        elif part.ready:
            missing[part.cluster_id] = missing_reason(s, "request_rate_per_s")
        tok = token_rate(s)
        if tok is not None:
            tokens.append(tok)
            prompt.append(s.prompt_tokens_per_s or 0.0)
            generation.append(s.generation_tokens_per_s or 0.0)
        elif part.ready:
            missing.setdefault(part.cluster_id, missing_reason(s, "prompt_tokens_per_s"))
        if s.requests_running is not None:
            running.append(s.requests_running)
        if s.requests_waiting is not None:
            waiting.append(s.requests_waiting)
        elif part.ready:
            missing.setdefault(part.cluster_id, missing_reason(s, "requests_waiting"))
    return LoadReading(
        request_rate=sum(rates) if rates else None,
        token_rate=sum(tokens) if tokens else None,
        prompt_rate=sum(prompt) if tokens else None,
        generation_rate=sum(generation) if tokens else None,
        waiting=sum(waiting) if waiting else None,
        running=sum(running) if running else None,
        missing=missing,
    )
