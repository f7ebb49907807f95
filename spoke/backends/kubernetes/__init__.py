"""The Kubernetes cluster backend: discovery, GPU inventory, per-GPU-type variants and scaling.

Only the names below are API; the modules are split by concept (see docs/kubernetes.md).
"""

from spoke.backends.kubernetes.backend import KubernetesBackend, Sampler
from spoke.backends.kubernetes.deletion_cost import PodLoads
from spoke.backends.kubernetes.pods import PodInfo
from spoke.backends.kubernetes.settings import DEFAULT_GPU_TYPES, KubernetesSettings

__all__ = ["DEFAULT_GPU_TYPES", "KubernetesBackend", "KubernetesSettings", "PodInfo", "PodLoads", "Sampler"]
