"""A test double of the ClusterBackend Protocol that records what it was asked to apply.

Used where the test is about the spoke's messaging guarantees, not about a cluster's behaviour
(the simulated and Kubernetes backends have their own tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.messages import GpuNode, Samples, ScaleCommand, VariantStatus, WorkloadRef
from spoke.backend import ApplyError, WorkloadState


class RecordingBackend:
    def __init__(self, *, fail_with: ApplyError | None = None) -> None:
        self.applied: list[ScaleCommand] = []
        self.replicas: dict[str, int] = {"H100": 1}
        self.fail_with = fail_with

    async def inventory(self) -> Sequence[GpuNode]:
        return [GpuNode(node="n0", gpu_product="NVIDIA-H100-80GB-HBM3", gpu_type="H100",
                        capacity_gpus=8, allocatable_gpus=8, free_gpus=8 - sum(self.replicas.values()))]

    async def workloads(self) -> Sequence[WorkloadState]:
        n = sum(self.replicas.values())
        return [WorkloadState(WorkloadRef(namespace="inference", name="llama"), n, n, 1,
                              tuple(VariantStatus(gpu_type=t, desired_replicas=r, ready_replicas=r)
                                    for t, r in self.replicas.items()))]

    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        return {}

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        if self.fail_with is not None:
            raise self.fail_with
        self.applied.append(command)
        self.replicas.update(command.replicas_by_gpu_type)
        return dict(self.replicas)

    async def aclose(self) -> None:
        pass
