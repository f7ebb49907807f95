"""What a run is judged by: SLO attainment, TTFT percentiles, GPU-hours, cost, scale events, timelines.

Every figure comes twice: over the whole run, and over the scored window (requests arriving after
the scenario's warm-up, the bill from then to the trace's end). Attainment is over the attainable
requests only (``attainability``); the unattainable ones are counted apart. Every request counts
in the percentiles. A request that never finished (still queued or running when the
drain limit ran out) counts as an SLO miss, and as an infinitely late first token for the
percentiles: a percentile that falls among those is reported as None ("unfinished"), never as a
made-up number.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.backtest.harness import Run
from hub.backtest.scenario import Pool, Scenario

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
class Figures:
    """What a run achieved over one span of arrivals and bill: the whole run, or the scored window."""

    from_s: float
    requests: int
    """Requests that arrived in the span."""
    attainable: int
    """Of those, the ones any allowed GPU type serves within the SLO when idle (``attainability``)."""
    within_slo: int
    """Attainable requests whose TTFT was within the SLO."""
    unfinished: int
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    """Over every request of the span (attainable or not); None where an unfinished one falls."""
    gpu_hours: float
    gpu_hours_by_type: dict[str, float]
    cost_usd: float
    scale_events: int

    @property
    def unattainable(self) -> int:
        return self.requests - self.attainable

    @property
    def attainment(self) -> float:
        """Share of the attainable requests served within the SLO (1.0 when there were none)."""
        return self.within_slo / self.attainable if self.attainable else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "from_s": self.from_s,
            "requests": self.requests,
            "attainable": self.attainable,
            "unattainable": self.unattainable,
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
        }


@dataclass(frozen=True)
class PolicyResult:
    name: str
    description: str
    whole: Figures
    scored: Figures
    """From the scenario's warm-up to the trace's end (the same as ``whole`` without a warm-up)."""
    minute_cost_per_hour: tuple[float, ...]
    """The bill's rate in each minute from time 0 to the trace's end, USD per hour."""
    wall_s: float
    timeline: Timeline
    family: str = ""
    """Which sweep this run belongs to (``static``, ``hpa-gpu-util``, ...); empty for a single run."""
    knob: str = ""
    """The setting swept, in words."""
    notes: tuple[str, ...] = field(default=())

    @property
    def attainment(self) -> float:
        return self.scored.attainment

    @property
    def cost_usd(self) -> float:
        return self.scored.cost_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "family": self.family,
            "knob": self.knob,
            "whole_run": self.whole.to_json(),
            "scored_window": self.scored.to_json(),
            "minute_cost_usd_per_hour": list(self.minute_cost_per_hour),
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "timeline": {
                "replicas_t_s": list(self.timeline.replicas_t_s),
                "replicas_by_gpu_type": list(self.timeline.replicas),
                "bin_s": self.timeline.bin_s,
                "ttft_p95_s": list(self.timeline.ttft_p95_s),
            },
        }


def figures(
    run: Run, *, from_s: float, slo_ttft_s: float, attainable: Sequence[bool], out_of_reach: set[tuple[int, int]],
    gpu_seconds: Mapping[Pool, float], cost_usd: float, scale_events: int,
) -> Figures:
    """Figures over the requests arriving at or after ``from_s``, with the bill given for that span.

    ``attainable`` is per request of the trace; ``out_of_reach`` the (input, output) tokens of the
    unattainable ones (attainability depends on the tokens alone), to recognise finished requests.
    """
    first = bisect_left(run.arrivals_s, from_s)
    requests = len(run.arrivals_s) - first
    limit = math.nextafter(slo_ttft_s, math.inf)
    ttfts = []
    within = 0
    for r in run.completed:
        if r.arrival_s < from_s:
            continue
        ttfts.append(r.ttft_s)
        if r.ttft_s < limit and (r.input_tokens, r.output_tokens) not in out_of_reach:
            within += 1
    ttfts.sort()
    by_type: dict[str, float] = {}
    for (_, gpu_type), sec in gpu_seconds.items():
        by_type[gpu_type] = by_type.get(gpu_type, 0.0) + sec / 3600.0
    return Figures(
        from_s=from_s,
        requests=requests,
        attainable=sum(1 for ok in attainable[first:] if ok),
        within_slo=within,
        unfinished=requests - len(ttfts),
        ttft_p50_s=_percentile(ttfts, requests, 50),
        ttft_p95_s=_percentile(ttfts, requests, 95),
        ttft_p99_s=_percentile(ttfts, requests, 99),
        gpu_hours=sum(by_type.values()),
        gpu_hours_by_type=dict(sorted(by_type.items())),
        cost_usd=cost_usd,
        scale_events=scale_events,
    )


def summarize(
    run: Run, scenario: Scenario, attainable: Sequence[bool] | None = None, *, bin_s: float = TIMELINE_BIN_S,
) -> PolicyResult:
    """The run's figures; ``attainable`` per request of the trace (default: all)."""
    slo_ttft_s, duration_s = scenario.slo_ttft_s, scenario.duration_s
    ok = tuple(attainable) if attainable is not None else (True,) * run.requests
    trace = scenario.trace
    far = {(trace.input_tokens[i], trace.output_tokens[i]) for i, a in enumerate(ok) if not a}
    whole = figures(run, from_s=0.0, slo_ttft_s=slo_ttft_s, attainable=ok, out_of_reach=far,
                    gpu_seconds=run.gpu_seconds, cost_usd=run.cost_usd, scale_events=run.scale_events)
    mark = run.at_scored_start
    if mark is None:
        scored = whole
    else:
        held = {k: s - mark.gpu_seconds.get(k, 0.0) for k, s in run.gpu_seconds.items()}
        scored = figures(run, from_s=run.scored_from_s, slo_ttft_s=slo_ttft_s, attainable=ok, out_of_reach=far,
                         gpu_seconds=held,
                         cost_usd=run.cost_usd - mark.cost_usd, scale_events=run.scale_events - mark.scale_events)
    return PolicyResult(
        name=run.name,
        description=run.description,
        whole=whole,
        scored=scored,
        minute_cost_per_hour=minute_cost_rates(run, duration_s),
        wall_s=run.wall_s,
        timeline=Timeline(
            replicas_t_s=tuple(run.timeline_s),
            replicas=tuple(run.timeline_replicas),
            bin_s=bin_s,
            ttft_p95_s=ttft_p95_by_bin(run, duration_s, bin_s),
        ),
        notes=tuple(run.notes),
    )


def minute_cost_rates(run: Run, duration_s: float) -> tuple[float, ...]:
    """USD per hour in each whole or partial minute up to ``duration_s``, from the cost samples."""
    t, c = run.timeline_s, run.timeline_cost_usd
    if not t:
        return ()

    def cost_at(x: float) -> float:
        i = bisect_left(t, x)
        if i < len(t) and t[i] == x:
            return c[i]
        if i == 0:
            return c[0]
        if i >= len(t):
            return c[-1]
        f = (x - t[i - 1]) / (t[i] - t[i - 1])
        return c[i - 1] + f * (c[i] - c[i - 1])

    out = []
    start = 0.0
    while start < duration_s:
        end = min(start + 60.0, duration_s)
        out.append((cost_at(end) - cost_at(start)) / (end - start) * 3600.0)
        start = end
    return tuple(out)


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
