"""The telemetry-source seam: what every source reads, what it returns, and how readings merge.

A *source* (dcgm-exporter, an inference engine's ``/metrics``, in-process NVML, a PromQL endpoint)
measures some of the fields of ``shared.messages.Samples`` for some workloads. Like a KEDA scaler,
each one sits behind the same small Protocol, so the spoke can run any mix of them side by side:

* ``SourceTarget`` says what to read for one workload (its pods, their IPs, metrics URLs and
  container ids). The Kubernetes backend builds targets from pods (``PodTarget.from_pod``); tests
  build them by hand.
* ``TelemetrySource.read(targets)`` returns a ``SourceReading``: per workload key, a
  ``PartialSample`` holding the fields the source measured and, for the ones it could not, why.
* ``merge_samples`` folds the partial samples of several sources into one ``Samples``. A measured
  value always beats a missing one; when two sources measured the same field, the one earlier in
  ``precedence`` wins (engine metrics before PromQL, NVML before dcgm-exporter by default, because
  the engine and the driver are closer to the truth than an exporter or a query over scraped data).

Missing is never zero: a field no source measured stays ``None`` and its reasons are joined into
``Samples.missing_reasons``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shared.errors import PermanentError, TemporaryError
from shared.messages import ContainerUsage, GpuSample, Percentiles, Samples, TokenHistogram
from spoke.sources.containers import ContainerSpec

SCALAR_FIELDS: tuple[str, ...] = (
    "requests_waiting",
    "requests_running",
    "kv_cache_usage_ratio",
    "request_rate_per_s",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "cpu_utilization_ratio",
    "memory_utilization_ratio",
    "queue_time_mean_s",
    "preemptions_per_s",
    "requests_failed_per_s",
)
PERCENTILE_FIELDS: tuple[str, ...] = ("ttft", "itl", "e2e", "queue_time")
MEASURED_FIELDS: frozenset[str] = frozenset(
    (*SCALAR_FIELDS, *PERCENTILE_FIELDS, "gpus", "prompt_tokens", "engines_sleeping", "containers")
)
"""The ``Samples`` fields a source can claim in ``capabilities`` (``window_s`` travels with them)."""

DEFAULT_PRECEDENCE: tuple[str, ...] = ("engines", "nvml", "dcgm", "prometheus")
"""Who wins a conflict: earlier names first. Sources not listed come after, in the order given."""

FieldValue = float | Percentiles | TokenHistogram | tuple[GpuSample, ...] | tuple[ContainerUsage, ...]


class SourceUnavailable(TemporaryError):
    """The source could not read anything this time (endpoint down, timeout). Its fields go missing
    for every target; the next read may succeed."""


class SourceMisconfigured(PermanentError):
    """The source's settings are wrong (bad URL, unreadable token file); fix the configuration."""


@dataclass(frozen=True, slots=True)
class PodTarget:
    """One pod of a workload, with what the sources need to find its telemetry."""

    namespace: str
    name: str
    ip: str | None = None
    node: str | None = None
    uid: str | None = None
    metrics_url: str | None = None
    """The engine's Prometheus endpoint, e.g. ``http://10.0.0.7:8000/metrics``."""
    container_ids: tuple[str, ...] = ()
    """Bare runtime ids (no ``containerd://`` prefix), used to attribute GPU processes (NVML)."""
    gpu_type: str | None = None
    """The GPU type of the object (base or variant) that owns the pod."""
    containers: tuple[ContainerSpec, ...] = ()
    """The pod's containers with their requests and limits (``spoke.sources.containers``)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_pod(
        cls,
        pod: Any,
        *,
        metrics_port: int | None = None,
        metrics_path: str = "/metrics",
        scheme: str = "http",
    ) -> PodTarget:
        """Build a target from a kubernetes-asyncio ``V1Pod`` (or anything shaped like one).

        ``metrics_url`` is set only when the pod has an IP and ``metrics_port`` is given.
        """
        meta, spec, status = pod.metadata, pod.spec, pod.status
        ip = getattr(status, "pod_ip", None) if status is not None else None
        statuses = (getattr(status, "container_statuses", None) or []) if status is not None else []
        ids = tuple(bare_container_id(s.container_id) for s in statuses if getattr(s, "container_id", None))
        url = f"{scheme}://{ip}:{metrics_port}{metrics_path}" if ip and metrics_port else None
        return cls(
            namespace=meta.namespace,
            name=meta.name,
            ip=ip,
            node=getattr(spec, "node_name", None) if spec is not None else None,
            uid=getattr(meta, "uid", None),
            metrics_url=url,
            container_ids=ids,
        )


def bare_container_id(container_id: str) -> str:
    """``containerd://abc`` / ``cri-o://abc`` / ``docker://abc`` -> ``abc`` (as the cgroup shows it)."""
    return container_id.split("://", 1)[-1]


@dataclass(frozen=True, slots=True)
class SourceTarget:
    """What to read for one workload: its pods and, optionally, its inference engine."""

    namespace: str
    name: str
    pods: tuple[PodTarget, ...] = ()
    engine: str | None = None
    """An engine family (``vllm``, ``ray-vllm``, ``sglang``, ``tgi``, ``triton``) or adapter
    (``vllm-v1``, ``triton-trtllm``...); ``None`` lets the engine source detect it."""
    model: str | None = None
    """The model this workload serves, where one engine serves several (Triton's ``model`` label)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class PartialSample:
    """The fields one source measured for one workload, and why the others it claims are missing."""

    values: dict[str, FieldValue] = field(default_factory=dict)
    missing_reasons: dict[str, str] = field(default_factory=dict)
    window_s: float | None = None

    def measured(self, name: str, value: FieldValue) -> None:
        self.values[name] = value
        self.missing_reasons.pop(name, None)

    def missing(self, name: str, reason: str) -> None:
        self.values.pop(name, None)
        self.missing_reasons[name] = reason

    @classmethod
    def all_missing(cls, fields: Iterable[str], reason: str) -> PartialSample:
        return cls(missing_reasons=dict.fromkeys(fields, reason))


@dataclass(frozen=True, slots=True)
class NodeGpu:
    """A GPU the source saw, whoever uses it: node-level inventory and unattributed GPUs."""

    sample: GpuSample
    product: str | None = None
    workloads: tuple[str, ...] = ()
    """Workload keys the GPU was attributed to; empty means unattributed (idle or not ours)."""


@dataclass(slots=True)
class SourceReading:
    """One source's answer for one read."""

    source: str
    samples: dict[str, PartialSample] = field(default_factory=dict)
    gpus: tuple[NodeGpu, ...] = ()
    warnings: tuple[str, ...] = ()
    """Non-fatal trouble (one of several endpoints down); the fields it affects say so too."""
    rejected_samples: int = 0
    """Exposition lines that did not parse and were dropped, one value each (counted by the caller)."""

    @property
    def unattributed_gpus(self) -> tuple[NodeGpu, ...]:
        return tuple(g for g in self.gpus if not g.workloads)


@runtime_checkable
class TelemetrySource(Protocol):
    """A telemetry source. ``read`` raises ``SourceUnavailable``/``SourceMisconfigured`` when it can
    read nothing; per-field trouble goes into the partial samples instead."""

    name: str
    capabilities: frozenset[str]

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading: ...

    async def aclose(self) -> None: ...


def merge_samples(
    partials: Sequence[tuple[str, PartialSample]],
    *,
    precedence: Sequence[str] = DEFAULT_PRECEDENCE,
) -> Samples:
    """Fold ``(source name, partial)`` pairs for one workload into one ``Samples``.

    Scalars and percentile groups: the first measured value in precedence order wins. GPUs merge by
    ``gpu_id``, field by field, in the same order (NVML power beats dcgm power, but a GPU only dcgm
    saw still appears). Containers merge the same way by ``(pod, container)``: the metrics API's CPU
    and memory and dcgm-exporter's GPU memory land on one entry. ``window_s`` comes from the winning
    source of the latency/rate fields, else
    the longest reported window. Reasons of fields nobody measured are joined as
    ``"source: reason; other: reason"``.
    """
    rank = {name: i for i, name in enumerate(precedence)}
    ordered = sorted(enumerate(partials), key=lambda p: (rank.get(p[1][0], len(rank)), p[0]))
    values: dict[str, Any] = {}
    window_from: PartialSample | None = None
    reasons: dict[str, list[str]] = {}
    gpus: dict[str, dict[str, Any]] = {}
    containers: dict[tuple[str, str], dict[str, Any]] = {}
    for _, (source, partial) in ordered:
        for name, value in partial.values.items():
            if name in ("gpus", "containers"):
                assert isinstance(value, tuple)
                into: dict[Any, dict[str, Any]] = gpus if name == "gpus" else containers
                for item in value:
                    merged = into.setdefault(item.gpu_id if isinstance(item, GpuSample) else item.key, {})
                    for k, v in item.model_dump(exclude_none=True).items():
                        merged.setdefault(k, v)
            elif name not in values:
                values[name] = value
                if window_from is None and partial.window_s is not None:
                    window_from = partial
        for name, reason in partial.missing_reasons.items():
            reasons.setdefault(name, []).append(
                reason if reason.startswith(f"{source}:") else f"{source}: {reason}"
            )
    if gpus:
        values["gpus"] = tuple(GpuSample(**g) for g in gpus.values())
    if containers:
        values["containers"] = tuple(ContainerUsage(**c) for c in containers.values())
    windows = [p.window_s for _, p in partials if p.window_s is not None]
    window = window_from.window_s if window_from is not None else (max(windows) if windows else None)
    missing = {name: "; ".join(r) for name, r in reasons.items() if name not in values}
    return Samples(window_s=window, missing_reasons=missing, **values)


def merge_readings(
    readings: Sequence[SourceReading],
    keys: Iterable[str],
    *,
    precedence: Sequence[str] = DEFAULT_PRECEDENCE,
) -> dict[str, Samples]:
    """Merge every source's reading into one ``Samples`` per workload key in ``keys``."""
    out: dict[str, Samples] = {}
    for key in keys:
        parts = [(r.source, r.samples[key]) for r in readings if key in r.samples]
        out[key] = merge_samples(parts, precedence=precedence)
    return out


def missing_everywhere(
    fields: Iterable[str], targets: Sequence[SourceTarget], reason: str
) -> dict[str, PartialSample]:
    """A partial sample per target with every one of ``fields`` missing for ``reason``."""
    fields = tuple(fields)
    return {t.key: PartialSample.all_missing(fields, reason) for t in targets}


def workloads_by_pod(targets: Sequence[SourceTarget]) -> Mapping[tuple[str, str], str]:
    """``(namespace, pod name) -> workload key`` for attributing per-pod series to workloads."""
    return {(p.namespace, p.name): t.key for t in targets for p in t.pods}


def gpu_partials(
    targets: Sequence[SourceTarget], per_workload: Mapping[str, list[GpuSample]], missing_reason: str
) -> dict[str, PartialSample]:
    """One partial per target: its attributed GPUs, or ``gpus`` missing with the source's reason."""
    out: dict[str, PartialSample] = {}
    for t in targets:
        partial = PartialSample()
        if t.key in per_workload:
            partial.measured("gpus", tuple(per_workload[t.key]))
        else:
            partial.missing("gpus", missing_reason)
        out[t.key] = partial
    return out
