"""Settings of the Kubernetes backend: what it manages and how far it may go.

One frozen object, built once by the spoke agent from ``SPOKE_*`` settings (and the Helm values of
the same names) and passed to ``KubernetesBackend``. Every field has a default that is safe on a
cluster nobody prepared for Fleetscale: nothing is managed until workloads are labelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import ConfigurationError

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
"""Node label set by NVIDIA GPU feature discovery, e.g. ``NVIDIA-H100-80GB-HBM3``."""

GPU_RESOURCE = "nvidia.com/gpu"
"""Extended resource name of NVIDIA GPUs (device plugin)."""

DEFAULT_GPU_TYPES: Mapping[str, str] = {
    "H200": "H200",
    "H100": "H100",
    "B200": "B200",
    "A100": "A100",
    "A10G": "A10G",
    "L40S": "L40S",
    "L4": "L4",
    "T4": "T4",
    "V100": "V100",
}
"""Substring of a product label (case-insensitive) → short GPU type. The longest key that matches
wins, so ``NVIDIA-L40S`` is an ``L40S`` and not an ``L4``."""


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to look for managed workloads in; empty means all namespaces (needs a ClusterRole)."""

    managed_label_selector: str | None = "fleetscale.dev/managed=true"
    """Label selector of managed workloads (server-side filtered). ``None`` disables label discovery."""

    managed_annotation: str | None = None
    """``key=value`` or ``key``: also manage workloads carrying this annotation. Annotations cannot be
    selected server-side, so this lists every Deployment/StatefulSet/ReplicaSet in the namespaces."""

    gpu_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GPU_TYPES))
    """Product substring → short GPU type; unknown products keep the raw label value as their type."""

    unpinned_gpu_type: str = "any"
    """GPU type reported for (and accepted in commands for) a base workload whose pod template pins
    no GPU product. The hub may address this key to scale the unpinned base object."""

    create_variants: bool = True
    """Create ``<name>-<type>`` variant objects for GPU types that have none yet (needs ``create`` on
    the workload kinds). When off, such a command is rejected with reason ``invalid``."""

    apply_resources: bool = False
    """Let the hub patch containers' requests and limits in the pod templates of managed objects
    (vertical recommendations applied, docs/vertical.md; needs ``patch`` on the workload kinds).
    When off, a command carrying resources is rejected with reason ``forbidden``."""

    deletion_cost: bool = True
    """Annotate pods with ``controller.kubernetes.io/pod-deletion-cost`` before a scale-down so the
    least-loaded pods go first (needs ``patch`` on pods)."""

    check_conflicts: bool = True
    """Refuse to scale workloads targeted by an HPA or a KEDA ScaledObject."""

    conflict_retries: int = 3
    """Attempts of the read-modify-write of ``/scale`` when the resourceVersion went stale (409)."""

    backoff_s: float = 2.0
    """Delay suggested in a TemporaryApplyError when the API server gave no Retry-After."""

    request_timeout_s: float = 15.0
    """Total timeout of one API request, in seconds."""

    measure_starts: bool = True
    """Measure each new pod's start (scheduled to ready) and its tier from image events (needs
    ``list`` on pods and events); off: the report carries no start times."""

    event_source: str = "fleetscale-spoke"
    """``source.component`` of the Events the backend emits."""

    def __post_init__(self) -> None:
        if self.conflict_retries < 1:
            raise ConfigurationError("conflict_retries must be at least 1")
        if self.backoff_s < 0 or self.request_timeout_s <= 0:
            raise ConfigurationError("backoff_s must be >= 0 and request_timeout_s > 0")
        if not self.unpinned_gpu_type:
            raise ConfigurationError("unpinned_gpu_type must not be empty")
