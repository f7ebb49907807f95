"""Discovery: which workloads this spoke manages, with their GPU-type variants.

A workload is managed when it is a Deployment, StatefulSet or ReplicaSet in an allowed namespace
and any of these holds:

* it matches ``settings.managed_label_selector`` (filtered by the API server);
* it carries ``settings.managed_annotation`` (no server-side filter exists, so every object of the
  three kinds in the allowed namespaces is listed and filtered here);
* the hub named it in a policy (``set_extra``).

Objects labelled ``fleetscale.dev/variant-of`` are never workloads of their own: they are grouped
under their base (see ``variants.py``). Discovery lists rather than watches: the reporter asks once
per interval, and three lists per namespace are cheap next to keeping watches healthy.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable

from shared.messages import ResultReason, WorkloadKind, WorkloadRef
from spoke.backend import PermanentApplyError
from spoke.backends.kubernetes import selectors
from spoke.backends.kubernetes.client import KINDS, KubeClient, Raw
from spoke.backends.kubernetes.errors import NotFoundError
from spoke.backends.kubernetes.gpus import GpuTypes
from spoke.backends.kubernetes.settings import KubernetesSettings
from spoke.backends.kubernetes.variants import VARIANT_OF_LABEL, ManagedWorkload, group

logger = logging.getLogger(__name__)


class Discovery:
    def __init__(self, client: KubeClient, settings: KubernetesSettings, types: GpuTypes) -> None:
        self._client = client
        self._settings = settings
        self._types = types
        self._extra: frozenset[WorkloadRef] = frozenset()

    def set_extra(self, refs: Iterable[WorkloadRef]) -> None:
        """Replace the workloads managed because hub policies name them (labels not needed)."""
        self._extra = frozenset(refs)

    def allowed_namespace(self, namespace: str) -> bool:
        return not self._settings.namespaces or namespace in self._settings.namespaces

    def is_managed(self, ref: WorkloadRef, obj: Raw) -> bool:
        if not self.allowed_namespace(ref.namespace):
            return False
        meta = obj.get("metadata") or {}
        if VARIANT_OF_LABEL in (meta.get("labels") or {}):
            return False
        if ref in self._extra:
            return True
        label_selector = self._settings.managed_label_selector
        if label_selector and selectors.matches(label_selector, meta.get("labels")):
            return True
        return selectors.annotation_matches(self._settings.managed_annotation, meta.get("annotations"))

    async def managed(self) -> list[ManagedWorkload]:
        """Every managed workload, sorted by key."""
        namespaces: tuple[str | None, ...] = self._settings.namespaces or (None,)
        per_kind = await asyncio.gather(*(self._managed_of(kind, namespaces) for kind in KINDS))
        found = {mw.ref: mw for mws in per_kind for mw in mws}
        for ref in self._extra - found.keys():
            if not self.allowed_namespace(ref.namespace):
                logger.warning(
                    "Hub policy names %s %s outside the allowed namespaces; ignored", ref.kind, ref.key
                )
                continue
            try:
                found[ref] = await self.find(ref)
            except NotFoundError:
                logger.warning("Hub policy names %s %s, which does not exist; skipped", ref.kind, ref.key)
        return sorted(found.values(), key=lambda mw: (mw.ref.key, mw.ref.kind))

    async def find(self, ref: WorkloadRef) -> ManagedWorkload:
        """One managed workload by name, for applying a command; refuses unmanaged objects."""
        base = await self._client.read_workload(ref.kind, ref.namespace, ref.name)
        if not self.is_managed(ref, base):
            raise PermanentApplyError(
                ResultReason.INVALID,
                f"{ref.kind}/{ref.name} in {ref.namespace!r} is not managed by Fleetscale on this cluster; "
                f"label it {self._settings.managed_label_selector or '(label discovery is off)'}, "
                "name it in a hub policy, or check the spoke's allowed namespaces",
            )
        variants = await self._client.list_workloads(
            ref.kind, ref.namespace, f"{VARIANT_OF_LABEL}={ref.name}"
        )
        return group(ref, base, variants, self._types, self._settings.unpinned_gpu_type)

    async def _managed_of(
        self, kind: WorkloadKind, namespaces: tuple[str | None, ...]
    ) -> list[ManagedWorkload]:
        lists = await asyncio.gather(*(self._list(kind, ns) for ns in namespaces))
        bases: dict[WorkloadRef, Raw] = {}
        variants: dict[tuple[str, str], list[Raw]] = defaultdict(list)
        for candidates, variant_objs in lists:
            for obj in candidates:
                meta = obj.get("metadata") or {}
                ref = WorkloadRef(namespace=meta["namespace"], name=meta["name"], kind=kind)
                if self.is_managed(ref, obj):
                    bases[ref] = obj
            for obj in variant_objs:
                meta = obj.get("metadata") or {}
                variants[meta["namespace"], meta["labels"][VARIANT_OF_LABEL]].append(obj)
        return [
            group(
                ref,
                base,
                variants.get((ref.namespace, ref.name), ()),
                self._types,
                self._settings.unpinned_gpu_type,
            )
            for ref, base in bases.items()
        ]

    async def _list(self, kind: WorkloadKind, namespace: str | None) -> tuple[list[Raw], list[Raw]]:
        """Candidate bases and variant objects of one kind in one namespace (None: all)."""
        if self._settings.managed_annotation:
            candidates = self._client.list_workloads(kind, namespace)
        elif self._settings.managed_label_selector:
            candidates = self._client.list_workloads(kind, namespace, self._settings.managed_label_selector)
        else:
            candidates = _nothing()
        variant_objs = self._client.list_workloads(kind, namespace, VARIANT_OF_LABEL)
        found, variant_list = await asyncio.gather(candidates, variant_objs)
        return found, variant_list


async def _nothing() -> list[Raw]:
    return []
