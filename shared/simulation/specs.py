"""What a simulated fleet is made of: cluster, node and workload specs, status views, errors.

Plain frozen values, validated on construction, so a mistyped GPU type or cluster id fails where it
is written rather than deep inside a replay. ``world`` builds its mutable state from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.gpus import DEFAULT_MODEL, GPU_PROFILES, ModelProfile
from shared.messages import CLUSTER_ID_PATTERN, VariantStatus, WorkloadRef
from shared.simulation.trace import Trace


class CapacityError(ValueError):
    """Not enough free GPUs of the asked type in the cluster; nothing was changed."""


class UnknownTargetError(LookupError):
    """No such cluster or workload in the world."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    gpu_type: str
    gpus: int

    def __post_init__(self) -> None:
        if self.gpu_type not in GPU_PROFILES:
            known = sorted(GPU_PROFILES)
            raise ValueError(f"node {self.name}: unknown gpu_type {self.gpu_type!r}; known: {known}")
        if self.gpus < 1:
            raise ValueError(f"node {self.name}: gpus must be at least 1")


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    cluster_id: str
    nodes: tuple[NodeSpec, ...]

    def __post_init__(self) -> None:
        if not CLUSTER_ID_PATTERN.match(self.cluster_id):
            raise ValueError(f"cluster_id {self.cluster_id!r} is not a lower-case DNS-label-like token")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster {self.cluster_id}: node names repeat")


@dataclass(frozen=True, slots=True)
class FlowControl:
    """Gateway flow control: requests wait at the gateway while every ready replica is saturated.

    A replica is saturated when more than ``queue_depth`` requests wait in its own queue or its KV
    cache holds more than ``kv_cache_ratio`` of its capacity: the saturation detector of the
    Kubernetes Gateway API Inference Extension (``pkg/epp/saturationdetector``), whose defaults
    are 5 and 0.8. A waiting request goes to the first replica that stops being saturated (a
    request finishing there frees room) or becomes ready, oldest request first. Without flow
    control every request is pushed to a pod at once and stays there, so a scale-up cannot help a
    backlog already queued at the pods.
    """

    queue_depth: int = 5
    kv_cache_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.queue_depth < 0 or not 0 < self.kv_cache_ratio <= 1:
            raise ValueError("flow control needs queue_depth >= 0 and 0 < kv_cache_ratio <= 1")


@dataclass(frozen=True)
class WorkloadSpec:
    namespace: str
    name: str
    trace: Trace
    model: ModelProfile = DEFAULT_MODEL
    gpus_per_replica: int = 1
    cold_start_s: float = 90.0
    initial_replicas: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Replicas per (cluster_id, gpu_type) that are already ready at time 0 (warm start)."""
    gateway_cluster: str | None = None
    """Cluster whose telemetry shows the gateway queue; None means the first cluster of the world."""
    flow_control: FlowControl | None = None
    """Gateway flow control (requests wait at the gateway while every replica is saturated); None
    pushes every request to a replica as it arrives."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class WorkloadStatus:
    """A workload in one cluster, as a Deployment status would show it (per GPU type in variants)."""

    ref: WorkloadRef
    desired_replicas: int
    ready_replicas: int
    gpus_per_replica: int
    variants: tuple[VariantStatus, ...]
