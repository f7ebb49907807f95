"""The spoke's sampler for real clusters: pods of each workload in, one Samples per workload out.

It builds the configured telemetry sources once (engines always; DCGM, NVML and PromQL when set),
turns the Kubernetes backend's pods into source targets each cycle, runs every source under its
timeout (``spoke.sources.read_all``) and counts the failures. A source that is not configured
measures nothing, and what nothing measured stays missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from shared.messages import Samples, WorkloadRef
from spoke.backend import WorkloadState
from spoke.backends.kubernetes.pods import PodInfo
from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.sources import (
    DcgmSource,
    EngineSource,
    NvmlSource,
    PodTarget,
    PrometheusSettings,
    PrometheusSource,
    SourceTarget,
    TelemetrySource,
    read_all,
)

logger = logging.getLogger(__name__)


class PodLister(Protocol):
    async def pods(self, ref: WorkloadRef) -> Sequence[PodInfo]: ...


def build_sources(settings: SpokeSettings) -> list[TelemetrySource]:
    sources: list[TelemetrySource] = [EngineSource(timeout_s=settings.source_timeout_s)]
    if settings.dcgm_endpoints:
        sources.append(DcgmSource(settings.dcgm_endpoints, timeout_s=settings.source_timeout_s))
    if settings.nvml_enabled:
        nvml = NvmlSource()
        if not nvml.available:
            logger.warning("NVML is enabled but unavailable (%s); GPU fields come from other sources or stay "
                           "missing", nvml.unavailable_reason)
        sources.append(nvml)
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

    async def targets(self, workloads: Sequence[WorkloadState]) -> list[SourceTarget]:
        port, path = self.settings.engine_metrics_port, self.settings.engine_metrics_path
        port, path = self.settings.engine_metrics_port, self.settings.engine_metrics_path
        out = []
        for w in workloads:
            pods = await self.lister.pods(w.ref) if self.lister is not None else []
            out.append(SourceTarget(w.ref.namespace, w.ref.name, tuple(
                PodTarget(
                    namespace=p.namespace,
                    name=p.name,
                    ip=p.ip,
                    node=p.node,
                    container_ids=tuple(p.container_ids),
                    # Only ready pods are scraped: a starting engine has no metrics endpoint yet.
                    metrics_url=f"http://{p.ip}:{port}{path}" if p.ip and p.ready else None,
                )
                for p in pods
            )))
        return out

    async def __call__(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        samples, stats = await read_all(self.sources, await self.targets(workloads),
                                        timeout_s=self.settings.source_timeout_s)
        self.metrics.count_source_failures(stats.failure_kinds())
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
