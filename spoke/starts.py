"""The start log: the measured starts of each workload's replicas, per GPU type and tier.

Backends measure starts where they can see them: the Kubernetes backend from each new pod's
conditions and image-pull events (``spoke.backends.kubernetes.pod_starts``), the simulated one from
its world; the reporter adds engines woken from sleep mode (``spoke.wakes``). The log keeps, per
(workload, GPU type, tier), the latest ``MAX_RECENT_STARTS`` durations and drops those older than
``max_age_s``, so what the hub plans with follows what starts take now (a new image, a node cache
warmed up), and it is what the report carries (``VariantStatus.starts``, protocol 1.3).

A duration above the wire's bound (a day) is kept at the bound, since a start that long did take
at least that; a negative one (clocks on two nodes disagreeing) is dropped and counted.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from shared.messages import MAX_DURATION_S, MAX_RECENT_STARTS, StartTier, StartTimes
from spoke.backend import WorkloadState

DEFAULT_MAX_AGE_S = 6 * 3600.0
"""Starts older than this are forgotten: a day-old cold start says little about today's image."""


@dataclass(slots=True)
class _Tier:
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_STARTS))
    """(when it ended, epoch s; duration, s), oldest first."""
    count: int = 0


class StartLog:
    """Per (workload key, GPU type, tier): the latest start durations and how many were measured."""

    def __init__(self, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._tiers: dict[tuple[str, str, StartTier], _Tier] = {}
        self.dropped = 0
        """Negative durations dropped (clock skew between the nodes' kubelets and the API server)."""

    def record(self, key: str, gpu_type: str, tier: StartTier, duration_s: float, *, at: float) -> None:
        """One start of ``key``'s ``gpu_type`` replicas that took ``duration_s`` and ended at ``at``."""
        if not duration_s >= 0.0:  # also NaN
            self.dropped += 1
            return
        entry = self._tiers.setdefault((key, gpu_type, tier), _Tier())
        entry.recent.append((at, min(duration_s, MAX_DURATION_S)))
        entry.count += 1

    def summary(self, key: str, gpu_type: str, *, now: float) -> tuple[StartTimes, ...]:
        """What the report carries for one variant: per tier with recent starts, their durations."""
        out = []
        for tier in StartTier:
            entry = self._tiers.get((key, gpu_type, tier))
            if entry is None:
                continue
            while entry.recent and now - entry.recent[0][0] > self.max_age_s:
                entry.recent.popleft()
            if entry.recent:
                out.append(StartTimes(tier=tier, recent_s=tuple(d for _, d in entry.recent),
                                      count=entry.count))
        return tuple(out)

    def attach(self, states: Sequence[WorkloadState], *, now: float) -> list[WorkloadState]:
        """The workloads with this log's starts added to each variant's (a tier the variant already
        carries, from another log, is kept as it is)."""
        out = []
        for state in states:
            variants = []
            for v in state.variants:
                have = {s.tier for s in v.starts}
                more = tuple(s for s in self.summary(state.key, v.gpu_type, now=now) if s.tier not in have)
                variants.append(v.model_copy(update={"starts": (*v.starts, *more)}) if more else v)
            out.append(dataclasses.replace(state, variants=tuple(variants)))
        return out

    def forget(self, keep: Collection[str]) -> None:
        """Drop the starts of workloads no longer managed, so the log stays bounded."""
        for k in [k for k in self._tiers if k[0] not in keep]:
            del self._tiers[k]
