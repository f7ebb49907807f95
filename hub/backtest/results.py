"""What a run is judged by: SLO attainment, TTFT percentiles, GPU-hours, cost, scale events, timelines.

Every request of the trace counts. A request that never finished (still queued or running when the
drain limit ran out) counts as an SLO miss, and as an infinitely late first token for the
percentiles: a percentile that falls among those is reported as None ("unfinished"), never as a
made-up number.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.backtest.harness import Run

TIMELINE_BIN_S = 60.0
"""Bin of the load and TTFT-p95 timelines."""


def _percentile(finished_sorted: Sequence[float], total: int, q: float) -> float | None:
    """``q``-th percentile (numpy's linear rule) over ``total`` values, the unfinished ones +inf.

    None when the percentile needs an unfinished request's value.
    """
    if total == 0:
        return None
    pos = (total - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    if hi >= len(finished_sorted):
        return None
    v = finished_sorted
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@dataclass(frozen=True)
class Timeline:
    replicas_t_s: tuple[float, ...]
    replicas: tuple[dict[str, int], ...]
    """Replicas asked for per GPU type at each ``replicas_t_s``."""
    bin_s: float
    ttft_p95_s: tuple[float | None, ...]
    """Per bin of arrival time; None where the p95 request of the bin never finished or no request came."""


@dataclass(frozen=True)
class PolicyResult:
    name: str
    description: str
    requests: int
    within_slo: int
    unfinished: int
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    gpu_hours: float
    gpu_hours_by_type: dict[str, float]
    cost_usd: float
    scale_events: int
    wall_s: float
    timeline: Timeline
    notes: tuple[str, ...] = field(default=())

    @property
    def attainment(self) -> float:
        return self.within_slo / self.requests if self.requests else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "requests": self.requests,
            "within_slo": self.within_slo,
            "slo_attainment": self.attainment,
            "unfinished": self.unfinished,
            "ttft_p50_s": self.ttft_p50_s,
            "ttft_p95_s": self.ttft_p95_s,
            "ttft_p99_s": self.ttft_p99_s,
            "gpu_hours": self.gpu_hours,
            "gpu_hours_by_type": self.gpu_hours_by_type,
            "cost_usd": self.cost_usd,
            "scale_events": self.scale_events,
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "timeline": {
                "replicas_t_s": list(self.timeline.replicas_t_s),
                "replicas_by_gpu_type": list(self.timeline.replicas),
                "bin_s": self.timeline.bin_s,
                "ttft_p95_s": list(self.timeline.ttft_p95_s),
            },
        }


def summarize(run: Run, *, slo_ttft_s: float, duration_s: float, bin_s: float = TIMELINE_BIN_S) -> PolicyResult:
    ttfts = sorted(r.ttft_s for r in run.completed)
    total = run.requests
    by_type: dict[str, float] = {}
    for (_, gpu_type), s in run.gpu_seconds.items():
        by_type[gpu_type] = by_type.get(gpu_type, 0.0) + s / 3600.0
    return PolicyResult(
        name=run.name,
        description=run.description,
        requests=total,
        within_slo=bisect_left(ttfts, math.nextafter(slo_ttft_s, math.inf)),
        unfinished=run.unfinished,
        ttft_p50_s=_percentile(ttfts, total, 50),
        ttft_p95_s=_percentile(ttfts, total, 95),
        ttft_p99_s=_percentile(ttfts, total, 99),
        gpu_hours=sum(by_type.values()),
        gpu_hours_by_type=dict(sorted(by_type.items())),
        cost_usd=run.cost_usd,
        scale_events=run.scale_events,
        wall_s=run.wall_s,
        timeline=Timeline(
            replicas_t_s=tuple(run.timeline_s),
            replicas=tuple(run.timeline_replicas),
            bin_s=bin_s,
            ttft_p95_s=ttft_p95_by_bin(run, duration_s, bin_s),
        ),
        notes=tuple(run.notes),
    )


def bins(duration_s: float, bin_s: float) -> int:
    return max(1, math.ceil(duration_s / bin_s))


def ttft_p95_by_bin(run: Run, duration_s: float, bin_s: float) -> tuple[float | None, ...]:
    n = bins(duration_s, bin_s)
    finished: list[list[float]] = [[] for _ in range(n)]
    for r in run.completed:
        finished[min(int(r.arrival_s // bin_s), n - 1)].append(r.ttft_s)
    arrived = Counter(min(int(t // bin_s), n - 1) for t in run.arrivals_s)
    out: list[float | None] = []
    for i in range(n):
        values = sorted(finished[i])
        out.append(_percentile(values, arrived[i], 95) if arrived[i] else None)
    return tuple(out)


def load_by_bin(arrivals_s: Sequence[float], duration_s: float, bin_s: float = TIMELINE_BIN_S) -> tuple[float, ...]:
    """Arrivals per second in each bin (the last, partial bin divided by its real length)."""
    n = bins(duration_s, bin_s)
    counts = Counter(min(int(t // bin_s), n - 1) for t in arrivals_s)
    out = []
    for i in range(n):
        length = min(bin_s, duration_s - i * bin_s) if duration_s > i * bin_s else bin_s
        out.append(counts[i] / max(length, 1e-9))
    return tuple(out)
