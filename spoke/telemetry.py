"""The spoke's sampler for real clusters: pods of each workload in, one Samples per workload out.

It builds the configured telemetry sources once (engines always; DCGM, NVML and PromQL when set),
turns the Kubernetes backend's pods into source targets each cycle, runs every source under its
timeout (``spoke.sources.read_all``) and counts the failures. A source that is not configured
measures nothing, and what nothing measured stays missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shared.messages import Samples, WorkloadRef
from spoke.backend import WorkloadState
from spoke.backends.kubernetes.exporters import ExporterPods
from spoke.backends.kubernetes.pods import PodInfo
from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.sources import (
    DcgmSource,
    EngineSource,
    NvmlSource,
    PodMetricsSource,
    PodTarget,
    PrometheusSettings,
    PrometheusSource,
    SourceTarget,
    TelemetrySource,
    read_all,
)
from spoke.sources.containers import PodContainers, with_specs

logger = logging.getLogger(__name__)


ENGINE_LABEL = "fleetscale.dev/engine"
"""Workload label naming its engine family or adapter (``vllm``, ``triton-trtllm``...); else detected."""
MODEL_LABEL = "fleetscale.dev/model"
"""Workload label naming the model it scales for, where one engine pod serves several (Triton)."""


class PodLister(Protocol):
    async def pods(self, ref: WorkloadRef) -> Sequence[PodInfo]: ...


@runtime_checkable
class ExporterLister(Protocol):
    async def exporter_urls(self, exporters: ExporterPods) -> list[str]: ...


@runtime_checkable
class PodMetricsReader(Protocol):
    async def pod_metrics(self, namespace: str) -> list[dict[str, Any]]: ...


def build_sources(settings: SpokeSettings) -> list[TelemetrySource]:
    sources: list[TelemetrySource] = [EngineSource(timeout_s=settings.source_timeout_s)]
    if settings.dcgm_endpoints or settings.dcgm_discover:
        sources.append(DcgmSource(settings.dcgm_endpoints, timeout_s=settings.source_timeout_s))
    if settings.nvml_enabled:
        nvml = NvmlSource()
        if not nvml.available:
            logger.warning("NVML is enabled but unavailable (%s); GPU fields come from other sources or stay "
                           "missing", nvml.unavailable_reason)
        sources.append(nvml)
    if settings.metrics_api_enabled:
        sources.append(PodMetricsSource())
    if settings.prometheus_url:
        sources.append(PrometheusSource(PrometheusSettings(
            url=settings.prometheus_url,
            queries=settings.prometheus_queries,
            token_file=Path(settings.prometheus_token_file) if settings.prometheus_token_file else None,
            ca_file=Path(settings.prometheus_ca_file) if settings.prometheus_ca_file else None,
            insecure_skip_verify=settings.prometheus_insecure_skip_verify,
            timeout_s=settings.source_timeout_s,
        )))
    return sources


class Sampler:
    def __init__(self, settings: SpokeSettings, metrics: SpokeMetrics, sources: list[TelemetrySource]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sources = sources
        metrics.init_sources(s.name for s in sources)
        self.lister: PodLister | None = None
        """Set once the backend exists (the backend is built with this sampler)."""

    def attach(self, backend: PodLister) -> None:
        """Use the backend for the workloads' pods and, when discovery is on, the exporter pods."""
        self.lister = backend
        if isinstance(backend, PodMetricsReader):
            for source in self.sources:
                if isinstance(source, PodMetricsSource):
                    source.lister = backend.pod_metrics
        if not self.settings.dcgm_discover or not isinstance(backend, ExporterLister):
            return
        exporters = ExporterPods(
            label_selector=self.settings.dcgm_pod_selector,
            namespace=self.settings.dcgm_pod_namespace or None,
            port=self.settings.dcgm_pod_port,
            path=self.settings.dcgm_pod_path,
        )
        for source in self.sources:
            if isinstance(source, DcgmSource):
                source.discover = partial(backend.exporter_urls, exporters)

    def readiness_detail(self) -> dict[str, object]:
        """For /readyz: pods whose engine is unknown (their load is unknown, not zero), and the
        adapter read for each scraped pod."""
        engines = [s for s in self.sources if isinstance(s, EngineSource)]
        return {
            "unknown_engine_pods": {k: v for e in engines for k, v in sorted(e.unknown.items())},
            "engine_adapters": {k: v for e in engines for k, v in sorted(e.adapters.items())},
        }

    async def targets(self, workloads: Sequence[WorkloadState]) -> list[SourceTarget]:
        port, path = self.settings.engine_metrics_port, self.settings.engine_metrics_path
        out = []
        for w in workloads:
            pods = await self.lister.pods(w.ref) if self.lister is not None else []
            out.append(SourceTarget(w.ref.namespace, w.ref.name, pods=tuple(
                PodTarget(
                    namespace=p.namespace,
                    name=p.name,
                    ip=p.ip,
                    node=p.node,
                    container_ids=tuple(p.container_ids),
                    gpu_type=p.gpu_type or None,
                    containers=p.containers,
                    # Only ready pods are scraped: a starting engine has no metrics endpoint yet.
                    metrics_url=f"http://{p.ip}:{port}{path}" if p.ip and p.ready else None,
                )
                for p in pods
            ), engine=w.labels.get(ENGINE_LABEL) or None, model=w.labels.get(MODEL_LABEL) or None))
        return out

    async def __call__(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        targets = await self.targets(workloads)
        samples, stats = await read_all(self.sources, targets, timeout_s=self.settings.source_timeout_s)
        for t in targets:  # the containers' spec is not measured: it comes with the pods, whatever read
            pods = [PodContainers(p.name, p.gpu_type, p.containers) for p in t.pods if p.containers]
            if pods and t.key in samples:
                samples[t.key] = with_specs(samples[t.key], pods)
        self.metrics.count_source_failures(stats.failure_kinds())
        self.metrics.count_rejected_samples(stats.rejected())
        self.metrics.unknown_engine_pods.set(
            sum(len(s.unknown) for s in self.sources if isinstance(s, EngineSource))
        )
        return samples

    async def pod_loads(self, ref: WorkloadRef, pods: Sequence[PodInfo]) -> Mapping[str, float]:
        """In-flight requests per pod name from the engines' last scrape; pods never scraped (or
        whose engine exports no queue gauges) are absent, which the backend treats as unknown."""
        engines = [s for s in self.sources if isinstance(s, EngineSource)]
        out: dict[str, float] = {}
        for engine in engines:
            for pod in pods:
                load = engine.in_flight.get(f"{ref.namespace}/{pod.name}")
                if load is not None:
                    out[pod.name] = load
        return out

    async def aclose(self) -> None:
        for source in self.sources:
            await source.aclose()
