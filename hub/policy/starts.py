"""Start times: how long a new replica of a workload takes to serve, per (cluster, GPU type).

Spokes measure each replica's start and report the latest durations per tier (protocol 1.3,
``VariantStatus.starts``; docs/kubernetes.md, "Start times"): ``cold`` (the node pulled an image),
``cached`` (the image was there), ``woken`` (a vLLM engine left sleep mode). A replica the hub asks
for is a new pod, which starts cold or cached depending on the node it lands on, which the hub does
not choose. So the estimate of a place is a high percentile (``START_PERCENTILE``) of its recent
cold and cached starts together: what a plan must wait for most of the time. The spoke keeps only
the latest starts (16 per tier, six hours at most), so the estimate follows what starts take now,
not since the cluster was built. Woken starts are shown, not planned with: the hub asks for pods,
and waking a sleeping engine is not one of its actions.

Where nothing was measured there is no estimate, and callers keep their configured constant (the
prediction's ``horizon_seconds``): behaviour without measurements is unchanged.

Pure: reads a ``WorkloadView``, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.state import WorkloadView
from shared.messages import StartTier

START_PERCENTILE = 0.9
"""Nine starts in ten are ready within the estimate: a plan made with it is rarely late, and one
slow pull (a node new to the image) does not set it, as a maximum would."""
NEW_REPLICA_TIERS = (StartTier.COLD, StartTier.CACHED)


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``q`` of the values at or below it)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class StartEstimate:
    """A new replica's start at one place, from the workload's measured starts there."""

    cluster_id: str
    gpu_type: str
    seconds: float
    """``START_PERCENTILE`` of the recent cold and cached starts."""
    starts: int
    """How many recent durations the estimate is taken over."""
    tiers: Mapping[str, float]
    """Each reported tier -> its own percentile (``woken`` included), for the audit."""

    @property
    def where(self) -> str:
        return f"{self.cluster_id}/{self.gpu_type}"

    def to_json(self) -> dict[str, object]:
        return {"start_s": round(self.seconds, 3), "starts": self.starts,
                "tiers": {t: round(s, 3) for t, s in self.tiers.items()}}


def start_estimates(view: WorkloadView) -> dict[tuple[str, str], StartEstimate]:
    """Per (cluster, GPU type) where the workload's spoke measured new-replica starts."""
    out = {}
    for cid, report in sorted(view.reports.items()):
        for variant in report.variants:
            new = [d for s in variant.starts if s.tier in NEW_REPLICA_TIERS for d in s.recent_s]
            if new:
                tiers = {str(s.tier): percentile(s.recent_s, START_PERCENTILE) for s in variant.starts}
                out[(cid, variant.gpu_type)] = StartEstimate(
                    cid, variant.gpu_type, percentile(new, START_PERCENTILE), len(new), tiers)
    return out


def slowest(estimates: Mapping[tuple[str, str], StartEstimate]) -> StartEstimate | None:
    """The place whose replicas take longest to start: a forecast must look at least that far
    ahead, since placement may grow the workload there."""
    return max(estimates.values(), key=lambda e: (e.seconds, e.where), default=None)


def horizon_s(configured_s: float, estimates: Mapping[tuple[str, str], StartEstimate]) -> float:
    """The forecast horizon: the configured one, or the slowest measured start when it is longer
    (``horizon_seconds`` is documented as "at least the cold-start time"; measured, it is enforced)."""
    worst = slowest(estimates)
    return configured_s if worst is None else max(configured_s, worst.seconds)
