"""Per-container CPU and memory from the Kubernetes metrics API (``metrics.k8s.io/v1beta1``).

metrics-server (or prometheus-adapter's resource metrics) serves one ``PodMetrics`` per running
pod: per container, ``usage.cpu`` (cores averaged over ``window``, e.g. ``"1234567n"``) and
``usage.memory`` (the working set, e.g. ``"2048Ki"``), the same numbers the VPA recommender and
``kubectl top`` read. The source lists PodMetrics once per namespace of the workloads it reads and
keeps the pods it knows (``SourceTarget.pods``).

* No metrics API in the cluster (404): the source is unavailable, so ``containers`` is missing with
  that reason, never zero.
* A pod without PodMetrics (too new, or not scraped yet) is not measured; if none of a workload's
  pods has any, its ``containers`` are missing with the reason.
* A malformed quantity costs that value only (counted in ``rejected_samples``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from shared.errors import PermanentError, TemporaryError
from shared.messages import ContainerUsage
from spoke.sources.base import PartialSample, SourceReading, SourceTarget, SourceUnavailable
from spoke.sources.containers import byte_count, cores

PodMetricsLister = Callable[[str], Awaitable[Sequence[Mapping[str, Any]]]]
"""PodMetrics items of one namespace, as the API server sends them (camelCase dicts)."""

NO_METRICS_REASON = "no PodMetrics for this workload's pods (new pods, or metrics-server has not scraped them yet)"


def _usage(pod: str, gpu_type: str | None, container: Mapping[str, Any]) -> tuple[ContainerUsage | None, int]:
    """One container's usage, and how many of its two values were malformed."""
    usage = container.get("usage") or {}
    cpu = cores(usage["cpu"]) if "cpu" in usage else None
    memory = byte_count(usage["memory"]) if "memory" in usage else None
    rejected = int("cpu" in usage and cpu is None) + int("memory" in usage and memory is None)
    name = container.get("name")
    if not isinstance(name, str) or not name or len(name) > 253:
        return None, rejected
    return ContainerUsage(pod=pod, container=name, gpu_type=gpu_type, cpu_cores=cpu, memory_bytes=memory), rejected


def interpret(items: Sequence[Mapping[str, Any]], targets: Sequence[SourceTarget]) -> SourceReading:
    """PodMetrics items of the targets' namespaces -> per workload, its containers' usage."""
    by_pod = {(p.namespace, p.name): (t.key, p.gpu_type) for t in targets for p in t.pods}
    found: dict[str, list[ContainerUsage]] = {}
    rejected = 0
    for item in items:
        meta = item.get("metadata") or {}
        owner = by_pod.get((meta.get("namespace", ""), meta.get("name", "")))
        if owner is None:
            continue
        key, gpu_type = owner
        for container in item.get("containers") or ():
            usage, bad = _usage(str(meta["name"]), gpu_type, container)
            rejected += bad
            if usage is not None:
                found.setdefault(key, []).append(usage)
    samples: dict[str, PartialSample] = {}
    for t in targets:
        partial = PartialSample()
        if found.get(t.key):
            partial.measured("containers", tuple(found[t.key]))
        else:
            partial.missing("containers", NO_METRICS_REASON)
        samples[t.key] = partial
    return SourceReading(source=PodMetricsSource.name, samples=samples, rejected_samples=rejected)


class PodMetricsSource:
    """Reads PodMetrics through the Kubernetes backend (``lister``, set by the sampler's ``attach``)."""

    name = "metrics-api"
    capabilities = frozenset({"containers"})

    def __init__(self, lister: PodMetricsLister | None = None) -> None:
        self.lister = lister

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        if not any(t.pods for t in targets):
            return interpret([], targets)  # no pod to read: nothing failed (each target is missing, with why)
        if self.lister is None:
            raise SourceUnavailable("the metrics API is read through the Kubernetes backend, and there is none")
        namespaces = sorted({t.namespace for t in targets if t.pods})
        lister = self.lister
        try:
            pages = await asyncio.gather(*(lister(ns) for ns in namespaces))
        except PermanentError as e:
            if getattr(e, "reason", None) == "not_found":
                raise SourceUnavailable(f"metrics.k8s.io is not served (is metrics-server installed?): {e}") from e
            raise
        except TemporaryError as e:
            raise SourceUnavailable(str(e)) from e
        return interpret([item for page in pages for item in page], targets)

    async def aclose(self) -> None:
        """Nothing to release: the backend owns the API client."""
