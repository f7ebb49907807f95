"""GPU inventory: how many GPUs each node has, and how many are still free for new replicas.

Free GPUs are what the scheduler would still place: the node's allocatable ``nvidia.com/gpu``
minus the GPUs requested by pods bound to it that have not terminated (phase neither Succeeded nor
Failed). Pending pods already bound to the node count, because the scheduler has reserved their
GPUs; unbound pending pods do not, since they hold no node yet.

The field selector on the pod list only saves bandwidth on a real API server; the phase is checked
again here so the arithmetic does not depend on the server honouring it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from shared.messages import GpuNode
from spoke.backends.kubernetes.client import KubeClient, Raw
from spoke.backends.kubernetes.gpus import GpuTypes, pod_gpus, quantity
from spoke.backends.kubernetes.settings import GPU_PRODUCT_LABEL, GPU_RESOURCE

logger = logging.getLogger(__name__)

TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})
ACTIVE_PODS_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


async def read_inventory(client: KubeClient, types: GpuTypes) -> list[GpuNode]:
    nodes = await client.list_nodes()
    pods = await client.list_pods(None, field_selector=ACTIVE_PODS_FIELD_SELECTOR)
    return build_inventory(nodes, pods, types)


def requested_by_node(pods: Sequence[Raw]) -> dict[str, int]:
    requested: dict[str, int] = defaultdict(int)
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node and phase not in TERMINATED_PHASES:
            requested[node] += pod_gpus(pod.get("spec") or {})
    return dict(requested)


def build_inventory(nodes: Sequence[Raw], pods: Sequence[Raw], types: GpuTypes) -> list[GpuNode]:
    requested = requested_by_node(pods)
    inventory: list[GpuNode] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        name = meta.get("name", "")
        allocatable = quantity((status.get("allocatable") or {}).get(GPU_RESOURCE, 0))
        capacity = quantity((status.get("capacity") or {}).get(GPU_RESOURCE, allocatable))
        if capacity <= 0 and allocatable <= 0:
            continue  # not a GPU node
        product = (meta.get("labels") or {}).get(GPU_PRODUCT_LABEL, "")
        if not product:
            logger.warning(
                "Node %s has GPUs but no %s label; its GPU type is unknown", name, GPU_PRODUCT_LABEL
            )
        inventory.append(
            GpuNode(
                node=name,
                gpu_product=product,
                gpu_type=types.of(product) if product else "",
                capacity_gpus=capacity,
                allocatable_gpus=allocatable,
                # NB: can go negative for a moment when a device plugin restarts; never report that.
                free_gpus=max(0, allocatable - requested.get(name, 0)),
            )
        )
    return inventory


def products_of_type(inventory: Sequence[GpuNode], gpu_type: str) -> list[str]:
    """Product label values of the nodes whose GPUs normalise to ``gpu_type``."""
    return sorted({n.gpu_product for n in inventory if n.gpu_type == gpu_type and n.gpu_product})
