"""Windowed percentiles from cumulative Prometheus histograms, computed the way Prometheus does.

Engines export cumulative histograms (counts since start). A percentile "over the window" is the
quantile of the *increase* of each bucket between two scrapes, i.e. what
``histogram_quantile(q, sum by (le) (increase(x_bucket[window])))`` would return. This module owns
the three steps: the increase (with Prometheus' counter-reset rule: a value that went down means the
process restarted from zero, so the increase is the new value), adding increases across pods, and
``histogram_quantile``'s linear interpolation inside the bucket holding the rank (ported from
Prometheus 2.42 ``promql/quantile.go: bucketQuantile``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from spoke.sources.exposition import Exposition

Buckets = dict[float, float]
"""Upper bound (``le``, ``inf`` for ``+Inf``) -> cumulative count."""


def collect(expo: Exposition, base: str) -> Buckets | None:
    """Sum ``<base>_bucket`` by ``le`` over every other label (engines, models); None if absent."""
    series = expo.series(f"{base}_bucket")
    if not series:
        return None
    out: Buckets = {}
    for s in series:
        le = float(s.labels["le"])
        out[le] = out.get(le, 0.0) + s.value
    return out


def counter_increase(previous: float, current: float) -> float:
    """Increase of a counter between two reads; a decrease is a reset (Prometheus ``increase``)."""
    return current if current < previous else current - previous


def increase(previous: Mapping[float, float], current: Mapping[float, float]) -> Buckets:
    """Per-bucket increase. Each bucket is its own counter series, reset-corrected on its own, as
    Prometheus' ``increase(x_bucket[w])`` does; a bucket new since the last scrape counts from 0."""
    return {le: counter_increase(previous.get(le, 0.0), v) for le, v in current.items()}


def add(histograms: Iterable[Mapping[float, float]]) -> Buckets:
    """``sum by (le)`` across pods."""
    out: Buckets = {}
    for h in histograms:
        for le, v in h.items():
            out[le] = out.get(le, 0.0) + v
    return out


def observations(buckets: Mapping[float, float]) -> float:
    return buckets.get(math.inf, 0.0)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile(q, buckets)``; None where Prometheus returns NaN (no observations, no
    ``+Inf`` bucket, fewer than two buckets)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts = [buckets[b] for b in bounds]
    # Prometheus' ensureMonotonic: scrapes are not atomic, so a later bucket can read lower.
    for i in range(1, len(counts)):
        counts[i] = max(counts[i], counts[i - 1])
    total = counts[-1]
    if total == 0:
        return None
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket == 0:  # only for q == 0 over empty leading buckets; Prometheus computes 0/0 = NaN
        return None
    return start + (bounds[b] - start) * ((rank - below) / in_bucket)


def coarsen(buckets: Mapping[float, float], max_bounds: int) -> Buckets:
    """The same cumulative histogram with at most ``max_bounds`` finite bounds. Dropping a bound
    of a cumulative histogram merges two buckets exactly; the largest finite bound is kept."""
    finite = sorted(b for b in buckets if not math.isinf(b))
    step = max(1, math.ceil(len(finite) / max_bounds))
    kept = {b for i, b in enumerate(finite) if (i + 1) % step == 0 or i == len(finite) - 1}
    return {b: v for b, v in buckets.items() if b in kept or math.isinf(b)}


def per_bucket(buckets: Mapping[float, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Cumulative buckets -> (finite upper bounds, count per bucket with the overflow last)."""
    bounds = tuple(sorted(b for b in buckets if not math.isinf(b)))
    counts: list[float] = []
    below = 0.0
    for b in (*bounds, math.inf):
        cumulative = max(buckets.get(b, below), below)  # ensureMonotonic, as for quantiles
        counts.append(cumulative - below)
        below = cumulative
    return bounds, tuple(counts)
