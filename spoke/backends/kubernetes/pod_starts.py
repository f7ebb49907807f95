"""Pod starts: how long each new replica took from scheduled to ready, and whether it pulled an image.

A replica's start is what the hub waits for after it asks for one: the pod's ``PodScheduled``
condition turning true (a node was found) to its ``Ready`` condition turning true (the engine
loaded the weights and passed its readiness probe). Time spent unscheduled (no free GPU, a node
being provisioned) is not part of it: that is capacity, which placement handles.

The tier comes from the kubelet's image events on the pod (core/v1 Events, kept by the API server
for an hour by default):

* **cold**: a ``Pulling`` event, or ``Pulled`` with "Successfully pulled image": the node fetched
  an image (with ``imagePullPolicy: Always`` every start does, even when the layers are cached);
* **cached**: only ``Pulled`` events saying "already present on machine";
* neither (the events expired, or the pod became ready while the spoke was down): not classified,
  not recorded, and counted in ``unclassified``.

Each pod is measured once, the first time it is seen ready, and only if it became ready within
``max_age_s`` (the events' lifetime); pods the spoke finds already ready for longer are skipped.
Pods are listed per variant with its selector (as ``pods.py`` does); events once per namespace
and only when a newly ready pod needs classifying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.messages import StartTier
from spoke.backend import ApplyError
from spoke.backends.kubernetes.client import KubeClient, Raw
from spoke.backends.kubernetes.pods import selector_of
from spoke.backends.kubernetes.variants import ManagedWorkload, Variant
from spoke.starts import StartLog

logger = logging.getLogger(__name__)

EVENT_MAX_AGE_S = 3600.0
"""The API server's default ``--event-ttl``: a pod ready longer ago has lost its image events."""
PULLED_FRESH = "Successfully pulled image"
ALREADY_PRESENT = "already present on machine"


def condition_time(pod: Raw, kind: str) -> datetime | None:
    """When the pod's ``kind`` condition last turned true; None if it is not true (or undated)."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True" and c.get("lastTransitionTime"):
            try:
                return datetime.fromisoformat(str(c["lastTransitionTime"]).replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


def classify(events: Iterable[Raw]) -> StartTier | None:
    """The tier the pod's image events say (``cold`` wins over ``cached``); None without image events."""
    cached = False
    for e in events:
        reason, message = e.get("reason"), str(e.get("message") or "")
        if reason == "Pulling" or (reason == "Pulled" and PULLED_FRESH in message):
            return StartTier.COLD
        if reason == "Pulled" and ALREADY_PRESENT in message:
            cached = True
    return StartTier.CACHED if cached else None


def events_of(pod: Raw, events: Iterable[Raw]) -> list[Raw]:
    """The events about this pod (by uid where the event has one, else by name)."""
    meta = pod.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    out = []
    for e in events:
        obj = e.get("involvedObject") or e.get("regarding") or {}
        if obj.get("kind") != "Pod":
            continue
        if (obj.get("uid") == uid) if obj.get("uid") and uid else (obj.get("name") == name):
            out.append(e)
    return out


@dataclass(frozen=True, slots=True)
class _Ready:
    key: str
    gpu_type: str
    pod: Raw
    namespace: str
    duration_s: float
    ready_at: datetime


class PodStarts:
    """Measures each managed workload's new pods into a ``StartLog``, once per pod."""

    def __init__(self, client: KubeClient, log: StartLog, *, max_age_s: float = EVENT_MAX_AGE_S) -> None:
        self._client = client
        self.log = log
        self.max_age_s = max_age_s
        self._seen: set[str] = set()
        self.unclassified = 0
        """Pods measured but not recorded: no image event said how they started."""
        self._warned = False

    async def observe(self, managed: Sequence[ManagedWorkload], *, now: datetime) -> None:
        variants = [(mw.ref.key, v) for mw in managed for v in mw.variants.values()]
        listed = await asyncio.gather(*(self._client.list_pods(v.namespace, label_selector=selector_of(v))
                                        for _, v in variants))
        live: set[str] = set()
        fresh: list[_Ready] = []
        for (key, variant), pods in zip(variants, listed, strict=True):
            for pod in pods:
                uid = str((pod.get("metadata") or {}).get("uid") or "")
                if not uid:
                    continue
                live.add(uid)
                ready_at = condition_time(pod, "Ready")
                if uid in self._seen or ready_at is None:
                    continue  # measured already, or not ready yet (looked at again next time)
                self._seen.add(uid)
                start = self._start(key, variant, pod, ready_at, now)
                if start is not None:
                    fresh.append(start)
        self._seen &= live  # pods gone are forgotten: the set is bounded by the live pods
        if fresh:
            await self._classify(fresh)

    def _start(self, key: str, variant: Variant, pod: Raw, ready_at: datetime, now: datetime) -> _Ready | None:
        """The start of a pod seen ready for the first time; None if it cannot be measured (no
        scheduling time, or ready for longer than its events live)."""
        scheduled_at = condition_time(pod, "PodScheduled")
        if scheduled_at is None or (now - ready_at).total_seconds() > self.max_age_s:
            return None
        return _Ready(key, variant.gpu_type, pod, variant.namespace,
                      (ready_at - scheduled_at).total_seconds(), ready_at)

    async def _classify(self, fresh: Sequence[_Ready]) -> None:
        namespaces = sorted({r.namespace for r in fresh})
        try:
            # The field selector narrows the list on a real API server; events_of filters anyway.
            listed = await asyncio.gather(*(self._client.list_events(ns, field_selector="involvedObject.kind=Pod")
                                            for ns in namespaces))
        except ApplyError as e:
            # Not measured this time; a temporary failure is retried with the next report.
            self._seen -= {str(r.pod["metadata"]["uid"]) for r in fresh}
            if not self._warned:
                logger.warning("cannot read pod events to classify start times (%s); starts stay unmeasured", e)
                self._warned = True
            return
        by_ns = dict(zip(namespaces, listed, strict=True))
        for r in fresh:
            tier = classify(events_of(r.pod, by_ns[r.namespace]))
            if tier is None:
                self.unclassified += 1
                continue
            self.log.record(r.key, r.gpu_type, tier, r.duration_s, at=r.ready_at.timestamp())
