"""The VPA recommender's decaying histogram: exponential buckets, exponentially decaying weights.

A faithful port of Kubernetes' Vertical Pod Autoscaler (kubernetes/autoscaler,
``vertical-pod-autoscaler/pkg/recommender/util/histogram.go``, ``histogram_options.go`` and
``decaying_histogram.go``); docs/vertical.md gives the maths:

* bucket ``b`` starts at ``first * (ratio**b - 1) / (ratio - 1)`` (VPA: CPU ``first`` 0.01 cores,
  memory 10 MB, ``ratio`` 1.05, so each bucket is 5 % wider than the one before);
* a sample at time ``t`` is added with ``weight * 2**((t - reference) / half_life)``: newer samples
  weigh more, so older ones lose half their relative weight every ``half_life``. When the exponent
  grows large the reference moves forward and every stored weight is scaled down, as VPA does,
  so nothing overflows;
* ``percentile(p)`` is the *end* of the first bucket at which the cumulative weight reaches
  ``p * total`` (the start of the last bucket, which has no end), or None when empty.

Pure: time comes in as an argument (seconds on any one clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_DECAY_EXPONENT = 100.0
"""VPA's ``maxDecayExponent``: past 2**100 the reference time is moved forward."""
EPSILON = 1e-4
"""VPA's ``epsilon``: a histogram whose total weight is below this is empty."""


@dataclass(frozen=True, slots=True)
class HistogramOptions:
    """Exponential bucketing: ``first`` is the first bucket's size, each next one ``ratio`` times wider."""

    first: float
    ratio: float
    max_value: float

    def __post_init__(self) -> None:
        if not (self.first > 0 and self.ratio > 1 and self.max_value > self.first):
            raise ValueError("histogram options need first > 0, ratio > 1 and max_value > first")

    @property
    def buckets(self) -> int:
        return math.ceil(math.log(self.max_value * (self.ratio - 1) / self.first + 1, self.ratio)) + 1

    def bucket_start(self, bucket: int) -> float:
        return self.first * (self.ratio**bucket - 1) / (self.ratio - 1)

    def find_bucket(self, value: float) -> int:
        if value < self.first:
            return 0
        bucket = int(math.log(value * (self.ratio - 1) / self.first + 1, self.ratio))
        return min(bucket, self.buckets - 1)


CPU_BUCKETS = HistogramOptions(first=0.01, ratio=1.05, max_value=1000.0)
"""VPA's CPU histogram: cores, 10 millicores first, up to 1000 cores."""
MEMORY_BUCKETS = HistogramOptions(first=1e7, ratio=1.05, max_value=1e12)
"""VPA's memory histogram: bytes, 10 MB first, up to 1 TB."""
GPU_MEMORY_BUCKETS = HistogramOptions(first=1e7, ratio=1.05, max_value=1e13)
"""GPU memory (not in VPA): the memory histogram's buckets, up to 10 TB (a whole node's GPUs)."""


@dataclass(slots=True)
class DecayingHistogram:
    options: HistogramOptions
    half_life_s: float
    weights: dict[int, float] = field(default_factory=dict)
    total: float = 0.0
    reference_s: float | None = None
    """Samples at this time are added with their own weight; later ones with more."""

    def _factor(self, at_s: float) -> float:
        if self.reference_s is None:
            # VPA starts the reference at the first sample's time rounded down to the hour.
            self.reference_s = math.floor(at_s / 3600.0) * 3600.0
        exponent = (at_s - self.reference_s) / self.half_life_s
        if exponent > MAX_DECAY_EXPONENT:
            self._shift_reference(at_s)
            exponent = (at_s - self.reference_s) / self.half_life_s
        return 2.0**exponent

    def _shift_reference(self, at_s: float) -> None:
        assert self.reference_s is not None
        new = math.floor(at_s / 3600.0) * 3600.0
        scale = 2.0 ** (-(new - self.reference_s) / self.half_life_s)
        self.weights = {b: w * scale for b, w in self.weights.items() if w * scale > 0.0}
        self.total = sum(self.weights.values())
        self.reference_s = new

    def add(self, value: float, weight: float, at_s: float) -> None:
        if weight <= 0 or not math.isfinite(value) or not math.isfinite(at_s):
            return
        w = weight * self._factor(at_s)
        bucket = self.options.find_bucket(max(value, 0.0))
        self.weights[bucket] = self.weights.get(bucket, 0.0) + w
        self.total += w

    def subtract(self, value: float, weight: float, at_s: float) -> None:
        if weight <= 0 or not math.isfinite(value) or not math.isfinite(at_s):
            return
        w = weight * self._factor(at_s)
        bucket = self.options.find_bucket(max(value, 0.0))
        left = self.weights.get(bucket, 0.0) - w
        removed = self.weights.get(bucket, 0.0) - max(left, 0.0)
        if left <= 0.0:
            self.weights.pop(bucket, None)
        else:
            self.weights[bucket] = left
        self.total = max(self.total - removed, 0.0)

    @property
    def empty(self) -> bool:
        # Relative to the reference's scale: VPA compares raw weights with epsilon the same way.
        return self.total < EPSILON

    def percentile(self, p: float) -> float | None:
        """The end of the first bucket whose cumulative weight reaches ``p`` of the total; None when empty."""
        if self.empty:
            return None
        threshold = p * self.total
        partial = 0.0
        buckets = sorted(self.weights)
        bucket = buckets[-1]
        for b in buckets:
            partial += self.weights[b]
            if partial >= threshold:
                bucket = b
                break
        if bucket < self.options.buckets - 1:
            return self.options.bucket_start(bucket + 1)
        return self.options.bucket_start(bucket)
