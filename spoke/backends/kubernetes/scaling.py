"""Scaling one object through its ``/scale`` subresource, never by writing ``spec.replicas``.

The scale subresource is what HPA and ``kubectl scale`` use: it needs only ``patch`` on
``<kind>/scale`` (not on the whole object), and it cannot clobber concurrent edits of the template.

Each scale is a read-modify-write: read ``/scale``, mark pods for a scale-down (see
``deletion_cost.py``), then patch with the read ``resourceVersion`` as a precondition. If another
writer got in between (409), the whole cycle is redone so the deletion costs match the replica
count that is really being reduced; after ``settings.conflict_retries`` attempts the command fails
as temporary. A scale to the current count sends no patch at all (commands are absolute and may be
re-delivered).
"""

from __future__ import annotations

import logging

from shared.messages import ResultReason, WorkloadRef
from spoke.backend import TemporaryApplyError
from spoke.backends.kubernetes.client import KubeClient
from spoke.backends.kubernetes.deletion_cost import HONOURED_BY, PodLoads, costs, mark_for_scale_down
from spoke.backends.kubernetes.errors import ConflictError
from spoke.backends.kubernetes.pods import pods_of_variant
from spoke.backends.kubernetes.settings import KubernetesSettings
from spoke.backends.kubernetes.variants import Variant

logger = logging.getLogger(__name__)


class Scaler:
    def __init__(self, client: KubeClient, settings: KubernetesSettings, loads: PodLoads | None) -> None:
        self._client = client
        self._settings = settings
        self._loads = loads

    async def scale(self, ref: WorkloadRef, variant: Variant, replicas: int) -> int:
        """Set ``variant``'s replicas; return the replicas the API server reports afterwards."""
        attempts = self._settings.conflict_retries
        kind, namespace, name = variant.kind, variant.namespace, variant.name
        for attempt in range(1, attempts + 1):
            scale = await self._client.read_scale(kind, namespace, name)
            current = int((scale.get("spec") or {}).get("replicas") or 0)
            if current == replicas:
                return current
            if replicas < current:
                await self._prepare_scale_down(ref, variant)
            body: dict[str, object] = {"spec": {"replicas": replicas}}
            resource_version = (scale.get("metadata") or {}).get("resourceVersion")
            if resource_version:
                body["metadata"] = {"resourceVersion": resource_version}
            try:
                result = await self._client.patch_scale(kind, namespace, name, body)
            except ConflictError as exc:
                logger.info(
                    "Scaling %s/%s %s→%s conflicted (#%d/%d): %s",
                    kind,
                    name,
                    current,
                    replicas,
                    attempt,
                    attempts,
                    exc,
                )
                continue
            observed = int((result.get("spec") or {}).get("replicas") or 0)
            logger.info("Scaled %s %s/%s from %d to %d replicas", kind, namespace, name, current, observed)
            return observed
        raise TemporaryApplyError(
            ResultReason.BACKEND_ERROR,
            f"{kind}/{name}: /scale kept changing under us (409 on {attempts} attempts); will retry",
            delay_s=self._settings.backoff_s,
        )

    async def _prepare_scale_down(self, ref: WorkloadRef, variant: Variant) -> None:
        if not self._settings.deletion_cost or self._loads is None or variant.kind not in HONOURED_BY:
            return
        pods = await pods_of_variant(self._client, variant)
        if not pods:
            return
        try:
            loads = await self._loads(ref, pods)
        except Exception:
            # The load source is best effort; unknown loads give every pod the same, neutral cost.
            logger.warning(
                "Pod loads for %s are unavailable; scale-down picks victims unaided", ref.key, exc_info=True
            )
            loads = {}
        await mark_for_scale_down(self._client, pods, costs(pods, loads))
