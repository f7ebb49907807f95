"""The cluster-backend seam: what the spoke needs from a cluster, whatever the cluster is.

A backend reads the GPU inventory, the managed workloads and their samples, and applies scale
commands. The spoke's reporter and executor only talk to this Protocol, so the simulated backend
(``spoke.backends.simulated``) and the Kubernetes backend are interchangeable.

``apply`` raises ``ApplyError`` with a ``ResultReason``; ``temporary`` tells the executor whether
re-delivery could succeed (a throttled API server) or not (a conflicting HPA).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shared.errors import PermanentError, TemporaryError
from shared.messages import (
    GpuNode,
    ResultReason,
    ResultStatus,
    Samples,
    ScaleCommand,
    VariantStatus,
    WorkloadKind,
    WorkloadRef,
)


@dataclass(frozen=True, slots=True)
class WorkloadState:
    """A managed workload as the cluster sees it now (no samples)."""

    ref: WorkloadRef
    desired_replicas: int
    ready_replicas: int
    gpus_per_replica: int = 1
    variants: tuple[VariantStatus, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.ref.key


class ApplyError(Exception):
    """A scale command could not be applied; ``reason`` goes into the CommandResult."""

    def __init__(self, reason: ResultReason, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.temporary = temporary


class TemporaryApplyError(ApplyError, TemporaryError):
    def __init__(self, reason: ResultReason, message: str, *, delay_s: float = 1.0) -> None:
        ApplyError.__init__(self, reason, message, temporary=True)
        self.delay_s = delay_s


class PermanentApplyError(ApplyError, PermanentError):
    def __init__(self, reason: ResultReason, message: str) -> None:
        ApplyError.__init__(self, reason, message, temporary=False)


@runtime_checkable
class ClusterBackend(Protocol):
    """What a spoke needs from its cluster."""

    async def inventory(self) -> Sequence[GpuNode]:
        """GPU nodes with capacity, allocatable and free GPUs."""
        ...

    async def workloads(self) -> Sequence[WorkloadState]:
        """The workloads this spoke manages."""
        ...

    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        """Samples per workload key. A workload absent from the map has every sample missing."""
        ...

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        """Set absolute replicas per GPU type; return the replicas observed after applying.

        Raises ``ApplyError`` (``TemporaryApplyError``/``PermanentApplyError``).
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class OutcomeRecorder(Protocol):
    """Optional backend capability: record each command's outcome where the cluster's users look
    (Kubernetes Events on the workload). The executor calls it once per handled command."""

    async def record_outcome(
        self, command: ScaleCommand, status: ResultStatus, reason: ResultReason, message: str = ""
    ) -> bool: ...


__all__ = [
    "ApplyError",
    "ClusterBackend",
    "OutcomeRecorder",
    "PermanentApplyError",
    "TemporaryApplyError",
    "WorkloadKind",
    "WorkloadState",
]
