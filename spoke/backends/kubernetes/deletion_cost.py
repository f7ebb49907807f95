"""Drain-aware scale-down: mark the least-loaded pods as the cheapest to delete.

When a ReplicaSet (directly, or under a Deployment) loses replicas, its controller picks victims:
unscheduled before scheduled, pending before running, not-ready before ready, and then the lowest
``controller.kubernetes.io/pod-deletion-cost`` first. Killing an LLM server drops its in-flight
requests, so before every scale-down the backend writes a cost proportional to each pod's
in-flight requests (running + waiting, from the engine's metrics via the injected ``PodLoads``).

* A pod whose load is unknown gets the **median** cost of the pods with a known load: it is
  neither sacrificed first (it may be busy) nor protected (it may be idle). With no known load at
  all every pod gets cost 0, which also wipes costs left over from an earlier scale-down.
* StatefulSets ignore the annotation (they always remove the highest ordinal), so they are skipped.
* The annotation is a hint valid at the moment of the scale; it is rewritten on every scale-down.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence

from shared.messages import WorkloadKind, WorkloadRef
from spoke.backends.kubernetes.client import KubeClient
from spoke.backends.kubernetes.errors import NotFoundError
from spoke.backends.kubernetes.pods import PodInfo

logger = logging.getLogger(__name__)

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
COST_PER_REQUEST = 100
"""Loads are averaged counts (e.g. 2.37 requests); the annotation is an int32, so keep two decimals."""
MAX_COST = 2**31 - 1

PodLoads = Callable[[WorkloadRef, Sequence[PodInfo]], Awaitable[Mapping[str, float]]]
"""In-flight requests per pod name for the given pods; pods absent from the map have unknown load."""

HONOURED_BY = frozenset({WorkloadKind.DEPLOYMENT, WorkloadKind.REPLICASET})


def costs(pods: Sequence[PodInfo], loads: Mapping[str, float]) -> dict[str, int]:
    """Deletion cost per pod name: higher load, higher cost; unknown load, the median cost."""
    known = {
        p.name: min(MAX_COST, max(0, round(loads[p.name] * COST_PER_REQUEST)))
        for p in pods
        if loads.get(p.name) is not None
    }
    neutral = round(statistics.median(known.values())) if known else 0
    return {p.name: known.get(p.name, neutral) for p in pods}


async def mark_for_scale_down(
    client: KubeClient, pods: Sequence[PodInfo], pod_costs: Mapping[str, int]
) -> None:
    """Write the costs; a pod that vanished meanwhile is fine, any other failure propagates."""

    async def annotate(pod: PodInfo) -> None:
        body = {"metadata": {"annotations": {DELETION_COST_ANNOTATION: str(pod_costs[pod.name])}}}
        try:
            await client.patch_pod(pod.namespace, pod.name, body)
        except NotFoundError:
            logger.debug("Pod %s/%s is gone before its deletion cost was set", pod.namespace, pod.name)

    # Every patch finishes before the first failure is raised: no request is left in flight.
    results = await asyncio.gather(
        *(annotate(p) for p in pods if p.name in pod_costs), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
