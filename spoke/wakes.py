"""Wakes: engines that left sleep mode, as woken starts in the start log.

vLLM's sleep mode frees a replica's GPU memory while its pod stays up and ready; waking it brings
the weights back in seconds instead of a cold start's minutes. vLLM exports the state
(``engine_sleep_state``, read into ``Samples.engines_sleeping``) but not how long a wake-up took, so
a wake is seen as the count of sleeping engines going down between two reports, and its duration
is the time between those reports: an upper bound, at the report interval's resolution.

A drop that ready replicas going away explain (a sleeping pod scaled down) is not a wake. A wake is
attributed to the workload's GPU type only when exactly one type has ready replicas; otherwise it
is counted in ``unattributed`` and not recorded, since a percentile over the wrong type would mislead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.messages import Samples, StartTier
from spoke.backend import WorkloadState
from spoke.starts import StartLog


class WakeWatch:
    """Feeds ``log`` with the woken starts seen between consecutive reports."""

    def __init__(self, log: StartLog | None = None) -> None:
        self.log = log or StartLog()
        self._last: dict[str, tuple[int, int, float]] = {}
        """Workload key -> (engines sleeping, ready replicas, when), at the last report that knew."""
        self.unattributed = 0

    def observe(self, workloads: Sequence[WorkloadState], samples: Mapping[str, Samples], *, at: float) -> None:
        for w in workloads:
            sample = samples.get(w.key)
            sleeping = sample.engines_sleeping if sample is not None else None
            if sleeping is None:
                # Unknown now: a later drop could not be told from one that happened meanwhile.
                self._last.pop(w.key, None)
                continue
            last = self._last.get(w.key)
            self._last[w.key] = (sleeping, w.ready_replicas, at)
            if last is None:
                continue
            was_sleeping, was_ready, then = last
            woken = was_sleeping - sleeping - max(0, was_ready - w.ready_replicas)
            if woken <= 0:
                continue
            types = [v.gpu_type for v in w.variants if v.ready_replicas > 0]
            if len(types) != 1:
                self.unattributed += woken
                continue
            for _ in range(woken):
                self.log.record(w.key, types[0], StartTier.WOKEN, at - then, at=at)
        keys = {w.key for w in workloads}
        for gone in self._last.keys() - keys:
            del self._last[gone]
        self.log.forget(keys)

    def attach(self, workloads: Sequence[WorkloadState], *, now: float) -> list[WorkloadState]:
        return self.log.attach(workloads, now=now)
