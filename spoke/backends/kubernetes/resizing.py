"""Resizing: containers' new requests and limits patched into one GPU type's object (docs/vertical.md).

The hub sends them on a command (``ScaleCommand.resources``, protocol 1.3) once a recommendation
leaves the current requests outside its bounds. Here they become one patch of the object's pod
template, which its controller rolls out as it would any template change. The rails:

* **opt-in per spoke** (``apply_resources``): patching pod templates needs ``patch`` on the
  workload kinds, a right a cluster admin grants on purpose;
* **one rollout at a time**: an object whose controller has not caught up with its spec
  (``observedGeneration`` behind ``generation``) or whose pods are not all updated yet is not
  patched again; the command is retried until its deadline (a temporary failure);
* **never below the observed peak**: a memory request or limit below the command's
  ``memory_floor_bytes`` is refused (the wire refuses it too; this is the spoke's own check);
* a limit is never left below its request: a new request above an old limit raises the limit to it.

The object is read fresh before the patch, and only the ``containers`` list of the template is
sent, complete (a JSON merge patch replaces lists; a strategic merge patch merges them by name:
both give the same result).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from shared.messages import ContainerResources, ResultReason
from spoke.backend import PermanentApplyError, TemporaryApplyError
from spoke.backends.kubernetes.client import KubeClient, Raw
from spoke.backends.kubernetes.variants import Variant, template_spec
from spoke.sources.containers import byte_count, cores

ROLLOUT_RETRY_S = 10.0


def cpu_quantity(cores: float) -> str:
    """Cores as millicores, rounded up (``1.234`` -> ``"1234m"``), at least 1m."""
    return f"{max(math.ceil(cores * 1000 - 1e-9), 1)}m"


def memory_quantity(num_bytes: float) -> str:
    """Bytes as a whole number, rounded up, so a floor is never undercut by rounding."""
    return str(math.ceil(num_bytes))


def rollout_in_progress(obj: Raw) -> str | None:
    """Why the object is mid-rollout, or None when its controller has caught up with its spec."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return f"its controller has not observed generation {generation} yet (observed {observed})"
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas")
    if updated is not None and updated < replicas:
        return f"{updated} of {replicas} replicas run the current template"
    return None


def _set(resources: dict[str, Any], kind: str, name: str, value: str | None) -> None:
    if value is not None:
        resources.setdefault(kind, {})[name] = value


def _check_floor(change: ContainerResources, resources: dict[str, Any]) -> None:
    """The memory values this change sets must not be below its floor (the wire checks the message;
    this checks what is written, whoever built the message)."""
    for kind, given in (("requests", change.memory_request_bytes), ("limits", change.memory_limit_bytes)):
        if given is None:
            continue
        raw = (resources.get(kind) or {}).get("memory")
        value = byte_count(raw) if raw is not None else None
        if value is not None and value < change.memory_floor_bytes:
            raise PermanentApplyError(
                ResultReason.INVALID,
                f"container {change.container}: memory {kind} {raw} would be below the observed peak "
                f"{memory_quantity(change.memory_floor_bytes)} bytes",
            )


def patched_containers(template: Raw, changes: Sequence[ContainerResources]) -> list[Raw]:
    """The template's containers with ``changes`` applied (a deep copy)."""
    containers = copy.deepcopy(list(template.get("containers") or []))
    by_name = {c.get("name"): c for c in containers}
    for change in changes:
        container = by_name.get(change.container)
        if container is None:
            raise PermanentApplyError(
                ResultReason.INVALID, f"no container {change.container!r} in the pod template")
        resources = container.setdefault("resources", {})
        cpu_req = None if change.cpu_request_cores is None else cpu_quantity(change.cpu_request_cores)
        cpu_lim = None if change.cpu_limit_cores is None else cpu_quantity(change.cpu_limit_cores)
        mem_req = None if change.memory_request_bytes is None else memory_quantity(change.memory_request_bytes)
        mem_lim = None if change.memory_limit_bytes is None else memory_quantity(change.memory_limit_bytes)
        _set(resources, "requests", "cpu", cpu_req)
        _set(resources, "limits", "cpu", cpu_lim)
        _set(resources, "requests", "memory", mem_req)
        _set(resources, "limits", "memory", mem_lim)
        # A limit below its request is an invalid pod spec: raise an old limit to the new request.
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        for name, parse in (("cpu", cores), ("memory", byte_count)):
            if name in limits and name in requests:
                limit, request = parse(limits[name]), parse(requests[name])
                if limit is not None and request is not None and limit < request:
                    limits[name] = requests[name]
        _check_floor(change, resources)
    return containers


async def resize(client: KubeClient, variant: Variant, changes: Sequence[ContainerResources]) -> bool:
    """Patch ``changes`` into the variant's pod template; False when it already says so."""
    kind, namespace, name = variant.kind, variant.namespace, variant.name
    obj = await client.read_workload(kind, namespace, name)
    if (why := rollout_in_progress(obj)) is not None:
        raise TemporaryApplyError(
            ResultReason.BACKEND_ERROR, f"{kind}/{name} is mid-rollout ({why}); one rollout at a time",
            delay_s=ROLLOUT_RETRY_S)
    template = template_spec(obj)
    containers = patched_containers(template, changes)
    if containers == list(template.get("containers") or []):
        return False
    await client.patch_workload(kind, namespace, name, {"spec": {"template": {"spec": {"containers": containers}}}})
    return True
