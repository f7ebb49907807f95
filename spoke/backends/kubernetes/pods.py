"""The pods behind a managed workload: scrape targets for engine metrics, and deletion candidates.

A variant's pods are those its selector matches. The base's selector also matches its variants'
pods (they carry the base's labels plus two of their own), so the base's pods are listed with
``!fleetscale.dev/variant-of`` added.

``container_ids`` are the runtime ids without the ``containerd://``/``docker://`` scheme, which is
the form found in ``/proc/<pid>/cgroup``: the spoke's GPU source maps NVML's per-process usage to
pods through them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from spoke.backends.kubernetes import selectors
from spoke.backends.kubernetes.client import KubeClient, Raw
from spoke.backends.kubernetes.variants import VARIANT_OF_LABEL, ManagedWorkload, Variant
from spoke.sources.containers import ContainerSpec, specs_of_pod


@dataclass(frozen=True, slots=True)
class PodInfo:
    name: str
    namespace: str
    workload: str
    """Name of the object (base or variant) that owns the pod."""
    gpu_type: str
    ip: str | None
    node: str | None
    container_ids: tuple[str, ...]
    ready: bool
    phase: str
    containers: tuple[ContainerSpec, ...] = ()
    """Each container's requests and limits (vertical recommendations compare usage with them)."""


def selector_of(variant: Variant) -> str:
    selector = selectors.render((variant.obj.get("spec") or {}).get("selector"))
    if variant.is_base:
        selector = f"{selector},!{VARIANT_OF_LABEL}" if selector else f"!{VARIANT_OF_LABEL}"
    return selector


def pod_info(pod: Raw, variant: Variant) -> PodInfo:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return PodInfo(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", variant.namespace),
        workload=variant.name,
        gpu_type=variant.gpu_type,
        ip=status.get("podIP"),
        node=(pod.get("spec") or {}).get("nodeName"),
        container_ids=tuple(
            str(cs["containerID"]).split("://", 1)[-1]
            for cs in status.get("containerStatuses") or []
            if cs.get("containerID")
        ),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        phase=status.get("phase", "Unknown"),
        containers=specs_of_pod(pod.get("spec") or {}),
    )


async def pods_of_variant(client: KubeClient, variant: Variant) -> list[PodInfo]:
    pods = await client.list_pods(variant.namespace, label_selector=selector_of(variant))
    # Evicted or completed pods linger until garbage-collected; they serve nothing.
    return [
        pod_info(p, variant)
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]


async def pods_of(client: KubeClient, workload: ManagedWorkload) -> list[PodInfo]:
    variants: Sequence[Variant] = sorted(workload.variants.values(), key=lambda v: v.gpu_type)
    per_variant = await asyncio.gather(*(pods_of_variant(client, v) for v in variants))
    return [pod for pods in per_variant for pod in pods]
