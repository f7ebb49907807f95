"""GPU inventory over the wire: allocatable minus what bound, non-terminated pods request."""

from __future__ import annotations

from kube_emulator import A100, H100, Cluster

from shared.messages import GpuNode
from spoke.backends.kubernetes import KubernetesBackend


async def test_free_gpus_are_allocatable_minus_requests_of_active_pods(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    kube.node("node-h100", product=H100, gpus=8, allocatable=7)
    kube.node("node-a100", product=A100, gpus=4)
    kube.node("node-cpu", product=None, gpus=0)
    kube.pod("running", node="node-h100", gpus=2)
    kube.pod("pending-bound", node="node-h100", gpus=1, phase="Pending")
    kube.pod("done", node="node-h100", gpus=4, phase="Succeeded")
    kube.pod("crashed", node="node-h100", gpus=4, phase="Failed")
    kube.pod("unscheduled", node=None, gpus=4, phase="Pending")
    kube.pod("a100-user", namespace="other", node="node-a100", gpus=4)

    inventory = sorted(await backend.inventory(), key=lambda n: n.node)

    assert inventory == [
        GpuNode(
            node="node-a100",
            gpu_product=A100,
            gpu_type="A100",
            capacity_gpus=4,
            allocatable_gpus=4,
            free_gpus=0,
        ),
        GpuNode(
            node="node-h100",
            gpu_product=H100,
            gpu_type="H100",
            capacity_gpus=8,
            allocatable_gpus=7,
            free_gpus=4,
        ),
    ]
