"""Conflicts: other autoscalers that already own a workload's replica count (or its requests).

An HPA or a KEDA ScaledObject rewrites ``/scale`` on its own loop; if Fleetscale scaled the same
object, the two would undo each other every few seconds. So before applying, the backend looks for
either targeting any object it is about to scale (the base and its GPU variants) and refuses with a
permanent ``conflict``: re-delivery cannot help, a human has to pick one controller.

HPAs are read through ``autoscaling/v2``. ScaledObjects are a CRD (``keda.sh/v1alpha1``); when KEDA
is not installed the list answers 404 and there is nothing to conflict with. A KEDA
ScaledObject's ``scaleTargetRef.kind`` defaults to Deployment. KEDA also creates an HPA of its own
(``keda-hpa-<name>``) that would be found too; the ScaledObject is reported first because it is
the object a human has to remove.

Applying resources (docs/vertical.md) conflicts in the same way with a VerticalPodAutoscaler that
acts on the object (``autoscaling.k8s.io/v1``; 404 when VPA is not installed); one in ``Off`` mode
only recommends, and is no conflict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from shared.messages import ResultReason
from spoke.backend import PermanentApplyError
from spoke.backends.kubernetes.client import KubeClient, Raw


def _target(obj: Raw, default_kind: str | None) -> tuple[str | None, str | None]:
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    return ref.get("kind") or default_kind, ref.get("name")


async def ensure_no_other_scaler(
    client: KubeClient, namespace: str, targets: Iterable[tuple[str, str]]
) -> None:
    """Raise a permanent ``conflict`` if an HPA or ScaledObject targets any ``(kind, name)``."""
    wanted = set(targets)
    if not wanted:
        return
    scaled_objects, hpas = await asyncio.gather(
        client.list_scaled_objects(namespace), client.list_hpas(namespace)
    )
    owners: list[tuple[str, Raw, str | None]] = [("ScaledObject", so, "Deployment") for so in scaled_objects]
    owners += [("HorizontalPodAutoscaler", hpa, None) for hpa in hpas]
    for owner_kind, owner, default_kind in owners:
        target = _target(owner, default_kind)
        if target in wanted:
            kind, name = target
            owner_name = (owner.get("metadata") or {}).get("name")
            raise PermanentApplyError(
                ResultReason.CONFLICT,
                f"{kind}/{name} is already scaled by {owner_kind} {namespace}/{owner_name}; Fleetscale will "
                "not fight another controller. Pick one path: remove it so Fleetscale writes /scale, or keep "
                "KEDA as the actuator (SPOKE_ACTUATOR=keda and a ScaledObject whose trigger is the Fleetscale "
                "external scaler, docs/keda.md), or exclude the workload.",
            )


async def ensure_no_vpa(client: KubeClient, namespace: str, targets: Iterable[tuple[str, str]]) -> None:
    """Raise a permanent ``conflict`` if a VerticalPodAutoscaler that acts (``updateMode`` other than
    ``Off``) targets any ``(kind, name)``: two controllers rewriting requests would undo each other."""
    wanted = set(targets)
    if not wanted:
        return
    for vpa in await client.list_vpas(namespace):
        spec = vpa.get("spec") or {}
        ref = spec.get("targetRef") or {}
        mode = (spec.get("updatePolicy") or {}).get("updateMode") or "Auto"  # VPA's default is Auto
        if (ref.get("kind"), ref.get("name")) in wanted and mode != "Off":
            name = (vpa.get("metadata") or {}).get("name")
            raise PermanentApplyError(
                ResultReason.CONFLICT,
                f"{ref.get('kind')}/{ref.get('name')} is resized by VerticalPodAutoscaler {namespace}/{name} "
                f"(updateMode {mode}); Fleetscale will not fight it over requests. Set its updateMode to Off to "
                "keep its recommendations only, or turn resources.apply off in the policy.",
            )
