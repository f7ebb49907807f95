"""GPU telemetry from NVIDIA dcgm-exporter, attributed to workloads through its pod labels.

dcgm-exporter runs as a DaemonSet (port 9400) and, with its Kubernetes mapping on, labels the series
of a GPU assigned to a pod with ``pod``, ``namespace`` and ``container``. GPUs without those labels
are idle or belong to something we do not manage: they are reported as unattributed ``NodeGpu``\\ s
(node inventory), never folded into a workload.

Field choices (see docs/sources.md):

* ``utilization_ratio``: ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (already 0-1) when exported, else
  ``DCGM_FI_DEV_GPU_UTIL`` / 100. GPU_UTIL is "% of time any kernel ran", which pegs near 100 under
  continuous batching; GR_ENGINE_ACTIVE is the fraction of time the graphics/compute engine was
  busy averaged over the sample period, a better load signal where DCP profiling is available.
* Memory: ``FB_USED`` MiB -> bytes; total is ``FB_TOTAL`` when exported, else
  ``FB_USED + FB_FREE (+ FB_RESERVED)``, each in MiB (dcgm reports MiB, 2**20 bytes).
* ``power_w``: ``DCGM_FI_DEV_POWER_USAGE`` (W).
* Per container (protocol 1.3): ``FB_USED`` of the GPUs whose series carry the ``container`` label,
  summed per (pod, container): the GPU memory input of the hub's vertical recommendations.
* Identity: ``UUID`` (MIG instances add ``/GPU_I_ID``), else ``<hostname>/<gpu index>``; node from
  ``Hostname`` or, since dcgm-exporter renamed it (#655, 2026), ``hostname``.

MIG (docs/sources.md, "MIG"): a series with ``GPU_I_ID`` is one GPU instance, id
``<parent UUID>/<GPU_I_ID>`` (NVML builds the same id). Power is a whole-GPU quantity: dcgm-exporter
prints the parent's power on every instance's series (the A800 fixture shows three instances with
the same watts), so an instance's ``power_w`` is reported missing, never copied. Utilisation comes
from ``GR_ENGINE_ACTIVE``, which DCGM measures per instance; ``GPU_UTIL`` is not exported for MIG.

Endpoints are static URLs or, better, discovered per scrape (``discover``): the Kubernetes backend
lists the dcgm-exporter pods (one per GPU node) and each is scraped by pod IP. A Service URL is
wrong: each read lands on a random node, so a workload's GPUs appear and vanish between reads.

One sample line that does not parse (the exporter prints ``ERROR - FAILED TO CONVERT TO STRING``
as a value for some fields) costs that value only; the count is in ``rejected_samples``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from shared.messages import ContainerUsage, GpuSample
from spoke.sources.base import (
    NodeGpu,
    SourceReading,
    SourceTarget,
    SourceUnavailable,
    gpu_partials,
    workloads_by_pod,
)
from spoke.sources.exposition import Exposition, HttpClient, ScrapeError, scrape

MIB = 2**20
UTIL_PERCENT = "DCGM_FI_DEV_GPU_UTIL"
ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
FB_USED, FB_FREE, FB_RESERVED, FB_TOTAL = (
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_FB_TOTAL",
)
POWER = "DCGM_FI_DEV_POWER_USAGE"
READ = (UTIL_PERCENT, ENGINE_ACTIVE, FB_USED, FB_FREE, FB_RESERVED, FB_TOTAL, POWER)
UUID_LABELS = ("UUID", "uuid", "gpu_uuid")
HOST_LABELS = ("Hostname", "hostname")
NO_GPU_REASON = "no GPU series labelled with this workload's pods (is dcgm-exporter's pod mapping on?)"
MIG_LABEL = "GPU_I_ID"
EndpointLister = Callable[[], Awaitable[Sequence[str]]]
"""Returns the dcgm-exporter URLs to scrape now (one per GPU node)."""


@dataclass(slots=True)
class _Gpu:
    gpu_id: str
    node: str | None
    product: str | None
    fields: dict[str, float] = field(default_factory=dict)
    pods: set[tuple[str, str]] = field(default_factory=set)
    containers: set[tuple[str, str, str]] = field(default_factory=set)
    """(namespace, pod, container) the exporter's pod mapping assigns this GPU to."""
    mig: bool = False

    def sample(self) -> GpuSample:
        f = self.fields
        util = (
            f[ENGINE_ACTIVE] if ENGINE_ACTIVE in f else (f[UTIL_PERCENT] / 100 if UTIL_PERCENT in f else None)
        )
        used = f[FB_USED] * MIB if FB_USED in f else None
        if FB_TOTAL in f:
            total: float | None = f[FB_TOTAL] * MIB
        elif FB_USED in f and FB_FREE in f:
            total = (f[FB_USED] + f[FB_FREE] + f.get(FB_RESERVED, 0.0)) * MIB
        else:
            total = None
        return GpuSample(
            gpu_id=self.gpu_id,
            node=self.node,
            utilization_ratio=None if util is None else min(max(util, 0.0), 1.0),
            memory_used_bytes=used,
            memory_total_bytes=total,
            # A MIG instance's series carry the whole GPU's power: not the instance's (see above).
            power_w=None if self.mig else f.get(POWER),
        )


def _label(labels: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((labels[n] for n in names if labels.get(n)), None)


def interpret(expositions: Sequence[Exposition], targets: Sequence[SourceTarget]) -> SourceReading:
    """Turn dcgm-exporter scrapes into GPU samples per workload plus the node GPU inventory."""
    gpus: dict[str, _Gpu] = {}
    for expo in expositions:
        for metric in READ:
            for s in expo.series(metric):
                labels = dict(s.labels)
                host = _label(labels, HOST_LABELS)
                uuid = _label(labels, UUID_LABELS)
                gpu_id = uuid or f"{host or 'unknown'}/{labels.get('gpu', '?')}"
                mig = bool(labels.get(MIG_LABEL))
                if mig:
                    gpu_id = f"{gpu_id}/{labels[MIG_LABEL]}"
                gpu = gpus.setdefault(gpu_id, _Gpu(gpu_id, host, labels.get("modelName"), mig=mig))
                gpu.fields[metric] = s.value
                if labels.get("pod"):
                    gpu.pods.add((labels.get("namespace", ""), labels["pod"]))
                    if labels.get("container"):
                        gpu.containers.add((labels.get("namespace", ""), labels["pod"], labels["container"]))
    owner = workloads_by_pod(targets)
    per_workload: dict[str, list[GpuSample]] = {}
    inventory: list[NodeGpu] = []
    for gpu in gpus.values():
        sample = gpu.sample()
        keys = tuple(sorted({owner[p] for p in gpu.pods if p in owner}))
        inventory.append(NodeGpu(sample=sample, product=gpu.product, workloads=keys))
        for key in keys:
            per_workload.setdefault(key, []).append(sample)
    samples = gpu_partials(targets, per_workload, NO_GPU_REASON)
    for key, usage in container_gpu_memory(gpus.values(), targets).items():
        samples[key].measured("containers", usage)
    rejected = sum(e.rejected for e in expositions)
    example = next((e.rejected_example for e in expositions if e.rejected), "")
    warnings = (
        (f"{rejected} dcgm-exporter sample line(s) did not parse and were dropped, e.g. {example}",)
        if rejected else ()
    )
    return SourceReading(source="dcgm", samples=samples, gpus=tuple(inventory), warnings=warnings,
                         rejected_samples=rejected)


def container_gpu_memory(
    gpus: Iterable[_Gpu], targets: Sequence[SourceTarget]
) -> dict[str, tuple[ContainerUsage, ...]]:
    """Per workload, each container's GPU memory: ``FB_USED`` summed over the GPUs (or MIG instances)
    the exporter's pod mapping assigns to it. A GPU is allocated to one container whole, so its
    framebuffer use is that container's."""
    owner = {(p.namespace, p.name): (t.key, p.gpu_type) for t in targets for p in t.pods}
    used: dict[tuple[str, str, str], float] = {}
    for gpu in gpus:
        if FB_USED not in gpu.fields:
            continue
        for c in gpu.containers:
            used[c] = used.get(c, 0.0) + gpu.fields[FB_USED] * MIB
    out: dict[str, list[ContainerUsage]] = {}
    for (namespace, pod, container), memory in sorted(used.items()):
        found = owner.get((namespace, pod))
        if found is not None and len(container) <= 253:
            out.setdefault(found[0], []).append(ContainerUsage(
                pod=pod, container=container, gpu_type=found[1], gpu_memory_bytes=min(memory, float(2**50))))
    return {k: tuple(v) for k, v in out.items()}


class DcgmSource:
    """Scrapes dcgm-exporter endpoints (one per GPU node) concurrently: static URLs, discovered
    ones (``discover``), or both."""

    name = "dcgm"
    capabilities = frozenset({"gpus", "containers"})

    def __init__(
        self,
        endpoints: Sequence[str] = (),
        *,
        discover: EndpointLister | None = None,
        timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.discover = discover
        self.timeout_s = timeout_s
        self._http = HttpClient(session)

    async def _urls(self) -> tuple[str, ...]:
        found = await self.discover() if self.discover is not None else ()
        return tuple(dict.fromkeys((*self.endpoints, *found)))

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        urls = await self._urls()
        if not urls:
            raise SourceUnavailable(
                "no dcgm-exporter endpoints: none configured and none discovered"
                if self.discover is not None else "no dcgm-exporter endpoints configured"
            )
        session = self._http.session()
        results = await asyncio.gather(
            *(scrape(session, url, timeout_s=self.timeout_s) for url in urls),
            return_exceptions=True,
        )
        expos = [r for r in results if isinstance(r, Exposition)]
        errors = [str(r) for r in results if isinstance(r, ScrapeError)]
        unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, ScrapeError)]
        if unexpected:
            raise unexpected[0]
        if not expos:
            raise SourceUnavailable("; ".join(errors))
        reading = interpret(expos, targets)
        if errors:
            # A workload on the unreachable node looks exactly like one without GPUs; say both.
            reading.warnings = (*reading.warnings, *errors)
            for partial in reading.samples.values():
                if "gpus" in partial.missing_reasons:
                    partial.missing("gpus", f"{NO_GPU_REASON}; unreachable: {'; '.join(errors)}")
        return reading

    async def aclose(self) -> None:
        await self._http.aclose()
