"""GPU arithmetic on raw pod specs: how many GPUs a pod asks for, and which GPU type it is pinned to.

Pure functions over the API's JSON, shared by discovery (GPUs per replica, the type of a template),
inventory (GPUs already requested on a node) and variant building (pinning a template to a type).

A pod's GPU count follows the scheduler's rule for any resource: the larger of the sum over its
containers and the largest single init container (init containers run one at a time, before the
others). For extended resources a limit without a request implies an equal request, so the request
is used when present and the limit otherwise.

A template's GPU type comes from the ``nvidia.com/gpu.product`` label it selects: the
``nodeSelector`` entry, or an ``In`` expression of the required node affinity. Product names are
long and vary per SKU (``NVIDIA-H100-80GB-HBM3``, ``NVIDIA-H100-PCIe``), so they are normalised to a
short type with ``GpuTypes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from spoke.backends.kubernetes.settings import GPU_PRODUCT_LABEL, GPU_RESOURCE

Raw = dict[str, Any]


class GpuTypes:
    """Normalises ``nvidia.com/gpu.product`` values to short GPU types (``H100``, ``L40S``...)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        # Longest substring first, so "L40S" is tried before "L4" and "A100" before "A10".
        self._rules = sorted(((k.upper(), v) for k, v in mapping.items()), key=lambda kv: -len(kv[0]))

    def of(self, product: str) -> str:
        upper = product.upper()
        for needle, gpu_type in self._rules:
            if needle in upper:
                return gpu_type
        return product


def quantity(value: Any) -> int:
    """A GPU quantity ("1", 2, "2.0") as an int; GPUs are never fractional, malformed counts are 0."""
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0


def container_gpus(container: Raw) -> int:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    if GPU_RESOURCE in requests:
        return quantity(requests[GPU_RESOURCE])
    return quantity(limits.get(GPU_RESOURCE, 0))


def pod_gpus(pod_spec: Raw) -> int:
    """GPUs the scheduler reserves for a pod with this spec."""
    regular = sum(container_gpus(c) for c in pod_spec.get("containers") or [])
    init = max((container_gpus(c) for c in pod_spec.get("initContainers") or []), default=0)
    return max(regular, init)


def pinned_products(pod_spec: Raw) -> tuple[str, ...]:
    """Products a pod spec is restricted to by nodeSelector or required node affinity; () if none."""
    selected = (pod_spec.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL)
    if selected:
        return (str(selected),)
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    products: list[str] = []
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == GPU_PRODUCT_LABEL and expr.get("operator") == "In":
                products.extend(str(v) for v in expr.get("values") or [])
    return tuple(dict.fromkeys(products))


def pinned_type(pod_spec: Raw, types: GpuTypes) -> str | None:
    """The one GPU type a pod spec is pinned to; None if unpinned or pinned to several types."""
    found = {types.of(p) for p in pinned_products(pod_spec)}
    return found.pop() if len(found) == 1 else None


def pin(pod_spec: Raw, products: Iterable[str]) -> Raw:
    """A copy of ``pod_spec`` that may only run on nodes with one of ``products``.

    A nodeSelector can hold one value only, and one GPU type often spans several products (SXM and
    PCIe H100s), so the pin is a required node-affinity ``In`` expression. It is added to every
    selector term (terms are ORed, expressions ANDed), replacing any earlier product constraint.
    """
    wanted = sorted(set(products))
    spec = dict(pod_spec)
    node_selector = {k: v for k, v in (spec.get("nodeSelector") or {}).items() if k != GPU_PRODUCT_LABEL}
    if node_selector:
        spec["nodeSelector"] = node_selector
    else:
        spec.pop("nodeSelector", None)
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    required = dict(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or []] or [{}]
    expression = {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": wanted}
    for term in terms:
        kept = [e for e in term.get("matchExpressions") or [] if e.get("key") != GPU_PRODUCT_LABEL]
        term["matchExpressions"] = [*kept, expression]
    required["nodeSelectorTerms"] = terms
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    return spec
