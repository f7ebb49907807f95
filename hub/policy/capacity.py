"""The capacity model behind latency SLO signals: what one replica of each GPU type sustains at the target.

Latency is not proportional to load. A replica's TTFT stays near its unloaded value while the load
is below what it can batch, then explodes once the queue grows (WVA's queueing models and Dynamo's
throughput planner both size from a per-replica capacity at the SLO, anchors.md §2.7-2.8). So a
latency signal does not scale by ``latency / target``; it sizes the fleet as::

    replicas = ceil(load x (1 + headroom) / capacity_per_replica)

with load and capacity in tokens/s (prompt + generated: prefill and decode both cost a replica
time, and the count of requests says little when prompt lengths vary by 100x).

**Prior and correction.** Each GPU type's capacity is ``factor x prior``: the prior comes from its
datasheet (``prior.py``) or from the policy, and one *correction factor* per (workload, signal) is
learned from the workload's own latency, as Dynamo's planner corrects its profiled throughput with
``actual / expected`` latency factors (anchors.md §2.8). One factor for the fleet rather than one
capacity per GPU type, because a request's latency belongs to the whole fleet: the router sends
each request to whichever replica is free, in any cluster, so a cluster's latency depends on what
the others took. The datasheets fix the ratios between GPU types; the factor carries what no
datasheet knows (burstiness, the real model, the engine's overheads).

**Learning.** Each telemetry window gives the fleet's load as a share of its prior capacity,
``u = tokens/s processed / sum(ready replicas x prior)`` (processed: a saturated fleet processes
what it can, so its misses sit at the knee of its latency curve, where they belong), and whether
the window's latency percentile met the target, weighted by the requests in the window and decayed
with a half-life of ``HALF_LIFE_S``.
Windows are only taken when the ready fleet has not changed since the window's requests arrived
(for ``window + latency`` seconds): the latency then belongs to the fleet it is set against, while
a backlog left from before a scale-up, or requests that waited for a cold start, say nothing
about the load the fleet now carries. A missed window with requests queued outside the batch is
not taken either: past saturation, processed tokens/s fall (a KV-bound replica decoding a full
cache admits no prompts) and would place the knee far below where it is. Evidence sits in
buckets ``BUCKET_RATIO`` apart in ``u``; the share of windows that missed the target is fitted
non-decreasing in ``u`` (isotonic regression, pool-adjacent-violators), since more load never
makes a replica faster. Then:

* ``ok`` = the highest ``u`` whose fitted miss share is at most ``MISS_SHARE``; ``bad`` = the
  lowest ``u`` above it whose share is higher;
* with both: the factor lies between them; it is 1 (the prior) clamped into
  ``[ok, sqrt(ok x bad)]``;
* with ``ok`` only (never saturated): the prior, or ``ok`` when that is higher (without a prior,
  ``ok x PROBE``: a little more than seen to work, so an over-provisioned fleet can shrink and find
  out). Loads that worked are no evidence that more would not;
* with ``bad`` only: ``bad / PROBE`` or 1 if lower;
* with no evidence: 1, the prior;
* never below ``FACTOR_FLOOR``: a target missed at a twentieth of the prior capacity is not a
  capacity problem (a cold start, a backlog, a prompt no replica can serve in time), and more
  replicas would not fix it.

A latency above target is never ignored: whatever the model says, the engine does not propose
fewer replicas than today and scales up at least by the latency ratio (``proposals.py``), so a wrong
model costs money, not the SLO, until the evidence corrects it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

BUCKET_RATIO = 1.25
"""Evidence is pooled in load buckets this factor apart (25 %: finer than a replica's noise)."""

HALF_LIFE_S = 1800.0
"""Evidence weight halves every 30 min: a token mix drifts over hours, bursts come and go in minutes."""

MISS_SHARE = 0.1
"""A load is sustainable while at most this share of its windows miss the target."""

PROBE = 1.5
"""How far above the highest load seen to work the model trusts, when it has never seen saturation."""

MIN_WEIGHT = 0.5
"""Buckets with less (decayed) evidence than this many requests are ignored."""

FACTOR_FLOOR = 0.05
"""The learned correction never takes a prior below 1/20 of itself."""


@dataclass(slots=True)
class _Bucket:
    ok: float = 0.0
    miss: float = 0.0
    load_weight: float = 0.0
    """Sum of weight x load, for the bucket's mean load."""
    at: float = 0.0

    def decay(self, now: float) -> None:
        if now > self.at:
            f = 0.5 ** ((now - self.at) / HALF_LIFE_S)
            self.ok *= f
            self.miss *= f
            self.load_weight *= f
            self.at = now

    @property
    def weight(self) -> float:
        return self.ok + self.miss

    @property
    def load(self) -> float:
        return self.load_weight / self.weight


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the learned evidence says, for the audit record."""

    ok: float | None
    """Highest load seen to meet the target (after the monotone fit)."""
    bad: float | None
    """Lowest load seen to miss it, above ``ok``."""
    weight: float
    """Requests' worth of evidence behind it (decayed)."""


@dataclass(slots=True)
class CapacityLearner:
    """Evidence for one (workload, signal): met or missed, by load."""

    target: float
    buckets: dict[int, _Bucket] = field(default_factory=dict)

    def observe(self, load: float, met: bool, weight: float, now: float) -> None:
        if not (load > 0 and weight > 0 and math.isfinite(load)):
            return
        key = math.floor(math.log(load) / math.log(BUCKET_RATIO))
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = _Bucket(at=now)
        b.decay(now)
        if met:
            b.ok += weight
        else:
            b.miss += weight
        b.load_weight += weight * load

    def evidence(self, now: float) -> Evidence:
        points: list[tuple[float, float, float]] = []  # (load, miss share, weight)
        for key in sorted(self.buckets):
            b = self.buckets[key]
            b.decay(now)
            if b.weight < MIN_WEIGHT:
                if b.weight < MIN_WEIGHT / 100:
                    del self.buckets[key]  # decayed to nothing: forget it
                continue
            points.append((b.load, b.miss / b.weight, b.weight))
        if not points:
            return Evidence(None, None, 0.0)
        fitted = isotonic([(share, w) for _, share, w in points])
        ok = bad = None
        for (load, _, _), share in zip(points, fitted, strict=True):
            if share <= MISS_SHARE:
                ok = load
            elif bad is None:
                bad = load
        return Evidence(ok, bad, sum(w for _, _, w in points))


def isotonic(points: list[tuple[float, float]]) -> list[float]:
    """Weighted least-squares non-decreasing fit of ``(value, weight)`` pairs (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in points:
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            w = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / w if w else (v1 + v2) / 2, w, n1 + n2])
    out: list[float] = []
    for mean, _, n in blocks:
        out += [mean] * int(n)
    return out


def estimate(prior: float | None, evidence: Evidence) -> float | None:
    """The load the evidence says is sustainable, starting from ``prior`` (see the module docstring)."""
    ok, bad = evidence.ok, evidence.bad
    if ok is None and bad is None:
        return prior
    if ok is None:
        assert bad is not None
        ceiling = bad / PROBE
        return ceiling if prior is None else min(prior, ceiling)
    if bad is None:
        # Never saturated: loads that worked say nothing against the prior. Taking the prior down to
        # what an over-provisioned fleet happened to carry (0.05 of it after a start-up overshoot)
        # sized the next fleet 20x too large, whose load then kept the factor there.
        return ok * PROBE if prior is None else max(prior, ok)
    ceiling = math.sqrt(ok * bad)
    guess = ceiling if prior is None else prior
    return min(max(guess, ok), max(ceiling, ok))


@dataclass(slots=True)
class CapacityModel:
    """Correction factors for every (workload, signal) the engine has seen; pruned with the workloads."""

    learners: dict[tuple[str, str], CapacityLearner] = field(default_factory=dict)

    def observe(self, workload: str, signal: str, target: float, *, utilization: float, met: bool, weight: float,
                now: float) -> None:
        """One window: load as a share of the fleet's prior capacity, and whether the latency met ``target``."""
        key = (workload, signal)
        learner = self.learners.get(key)
        if learner is None or learner.target != target:
            learner = self.learners[key] = CapacityLearner(target)  # a new target voids old evidence
        learner.observe(utilization, met, weight, now)

    def factor(self, workload: str, signal: str, *, now: float) -> tuple[float, Evidence]:
        learner = self.learners.get((workload, signal))
        evidence = learner.evidence(now) if learner is not None else Evidence(None, None, 0.0)
        value = estimate(1.0, evidence)
        return max(FACTOR_FLOOR, 1.0 if value is None else value), evidence

    def forget(self, keep: set[str]) -> None:
        """Drop the evidence of workloads no longer evaluated."""
        for key in [k for k in self.learners if k[0] not in keep]:
            del self.learners[key]


def mix_capacity(capacity: Mapping[str, float | None], replicas: Mapping[str, int]) -> float | None:
    """Mean capacity per replica of a fleet with ``replicas`` per GPU type.

    Types without an estimate are left out (None when no type has one); a type that cannot meet the
    target at all (capacity 0) counts with 0.
    """
    known = [(c, n) for t, n in replicas.items() if n > 0 and (c := capacity.get(t)) is not None]
    total = sum(n for _, n in known)
    if not total:
        return None
    return sum(c * n for c, n in known) / total


def size(demand: float, headroom_percent: float, per_replica: float) -> int:
    """``ceil(demand x (1 + headroom) / capacity)``, the fleet the demand needs."""
    return math.ceil(demand * (1.0 + headroom_percent / 100.0) / per_replica - 1e-9)
