"""GPU-type variants: one workload object per GPU type, grouped under the base the hub names.

A Deployment (or StatefulSet, ReplicaSet) can only describe one pod template, so it cannot hold
three replicas on H100s and two on A100s at once. The hub's commands carry replicas per GPU type,
so each type gets its own object:

* the **base** is the object the hub names (``WorkloadRef``). It is the variant of the GPU type its
  template pins (``nvidia.com/gpu.product``), or of ``settings.unpinned_gpu_type`` if it pins none;
* a **variant** ``<base>-<type>`` is a copy of the base labelled ``fleetscale.dev/variant-of=<base>``
  and ``fleetscale.dev/gpu-type=<type>``, whose template is pinned to the products of that type.
  The two labels are added to its selector and pod template so its pods are told apart from the
  base's (the base's own selector still matches them; the controllers keep apart through
  ownerReferences, and a Service on the base's labels serves every variant, which is the point).

Variants are never deleted; a type scaled to zero keeps its object at zero replicas, so scaling
back up needs no ``create`` and the history of the object stays inspectable.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.messages import VariantStatus, WorkloadKind, WorkloadRef
from spoke.backend import WorkloadState
from spoke.backends.kubernetes.client import KINDS, Raw
from spoke.backends.kubernetes.gpus import GpuTypes, pin, pinned_type, pod_gpus

VARIANT_OF_LABEL = "fleetscale.dev/variant-of"
GPU_TYPE_LABEL = "fleetscale.dev/gpu-type"
CREATED_BY_ANNOTATION = "fleetscale.dev/created-by"

# Annotations that describe the base object's own history, not its intent.
_NOT_INHERITED = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")


@dataclass(frozen=True, slots=True)
class Variant:
    """One object of a managed workload: the base, or the variant of one GPU type."""

    gpu_type: str
    kind: WorkloadKind
    obj: Raw
    is_base: bool

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def desired(self) -> int:
        return int((self.obj.get("spec") or {}).get("replicas", 1) or 0)

    @property
    def ready(self) -> int:
        return int((self.obj.get("status") or {}).get("readyReplicas") or 0)

    @property
    def gpus_per_replica(self) -> int:
        return pod_gpus(template_spec(self.obj))


@dataclass(frozen=True, slots=True)
class ManagedWorkload:
    """A base object and its variants, keyed by GPU type (the base included)."""

    ref: WorkloadRef
    base: Raw
    variants: Mapping[str, Variant] = field(default_factory=dict)

    def state(self) -> WorkloadState:
        ordered = sorted(self.variants.values(), key=lambda v: v.gpu_type)
        return WorkloadState(
            ref=self.ref,
            desired_replicas=sum(v.desired for v in ordered),
            ready_replicas=sum(v.ready for v in ordered),
            gpus_per_replica=pod_gpus(template_spec(self.base)),
            variants=tuple(
                VariantStatus(
                    gpu_type=v.gpu_type,
                    desired_replicas=v.desired,
                    ready_replicas=v.ready,
                    gpus_per_replica=v.gpus_per_replica,
                )
                for v in ordered
            ),
            labels=dict((self.base.get("metadata") or {}).get("labels") or {}),
        )


def template_spec(obj: Raw) -> Raw:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def group(
    ref: WorkloadRef, base: Raw, candidates: Iterable[Raw], types: GpuTypes, unpinned: str
) -> ManagedWorkload:
    """Assemble a ManagedWorkload from its base and the objects labelled as its variants."""
    base_type = pinned_type(template_spec(base), types) or unpinned
    variants: dict[str, Variant] = {base_type: Variant(base_type, ref.kind, base, is_base=True)}
    for obj in candidates:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        gpu_type = labels.get(GPU_TYPE_LABEL)
        if labels.get(VARIANT_OF_LABEL) != ref.name or not gpu_type:
            continue
        # NB: the base wins over a variant labelled with the base's own type, so commands scale
        # the object the hub already sees; such a variant is left as it is.
        variants.setdefault(gpu_type, Variant(gpu_type, ref.kind, obj, is_base=False))
    return ManagedWorkload(ref=ref, base=base, variants=variants)


def variant_name(base_name: str, gpu_type: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", gpu_type.lower()).strip("-") or "gpu"
    return f"{base_name}-{slug}"[:253].rstrip("-")


def build_variant(
    base: Raw, kind: WorkloadKind, gpu_type: str, products: Iterable[str], replicas: int
) -> Raw:
    """A new object for ``gpu_type``: the base's spec, pinned to ``products``, at ``replicas``."""
    meta = base.get("metadata") or {}
    name = str(meta["name"])
    marks = {VARIANT_OF_LABEL: name, GPU_TYPE_LABEL: gpu_type}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_INHERITED}
    annotations[CREATED_BY_ANNOTATION] = "fleetscale-spoke"
    metadata: Raw = {
        "name": variant_name(name, gpu_type),
        "namespace": meta.get("namespace"),
        "labels": {**(meta.get("labels") or {}), **marks},
        "annotations": annotations,
    }
    if meta.get("uid"):
        # Deleting the base garbage-collects its variants. Not a controller reference, and no
        # blockOwnerDeletion, which would need extra RBAC (update on the base's finalizers).
        spec = KINDS[kind]
        metadata["ownerReferences"] = [
            {
                "apiVersion": spec.api_version,
                "kind": str(kind),
                "name": name,
                "uid": meta["uid"],
                "controller": False,
                "blockOwnerDeletion": False,
            }
        ]
    body = copy.deepcopy(base.get("spec") or {})
    body["replicas"] = replicas
    selector = body.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **marks}
    template = body.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **marks}
    template["spec"] = pin(template.get("spec") or {}, products)
    return {"apiVersion": KINDS[kind].api_version, "kind": str(kind), "metadata": metadata, "spec": body}
