"""The KEDA actuator: a backend whose ``apply`` hands the counts to KEDA instead of writing ``/scale``.

It wraps the cluster's real backend for everything else (inventory, workloads, telemetry), so the
hub sees the same cluster; only the last step changes hands. The command's result is ``applied``
with the counts handed over: KEDA (through the HPA it owns) makes the change, and the next report
shows whether it did, as with any other command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.messages import GpuNode, ResultReason, Samples, ScaleCommand
from spoke.backend import ClusterBackend, PermanentApplyError, WorkloadState
from spoke.keda.targets import KedaTargets


class KedaActuator:
    def __init__(self, backend: ClusterBackend, targets: KedaTargets) -> None:
        self.backend = backend
        self.targets = targets

    async def inventory(self) -> Sequence[GpuNode]:
        return await self.backend.inventory()

    async def workloads(self) -> Sequence[WorkloadState]:
        return await self.backend.workloads()

    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        return await self.backend.samples(workloads)

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        if command.resources:
            # KEDA scales replicas only; saying "applied" would hide that nothing was resized.
            raise PermanentApplyError(ResultReason.INVALID, "the KEDA actuator does not apply container resources "
                                      "(docs/vertical.md); the recommendation stays a recommendation")
        return await self.targets.set(command.workload.key, command.replicas_by_gpu_type)

    async def aclose(self) -> None:
        await self.backend.aclose()
