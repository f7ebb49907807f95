"""Per-signal proposals: HPA math for utilisation and per-replica signals, the capacity model for latency.

Each function turns one signal's reading into the HPA's ``MetricProposal`` (so that
``replicas_for_metrics`` merges every signal exactly as the HPA merges metrics: the largest valid
proposal wins, and a failed signal blocks a scale-down) plus the audit's ``Proposal`` with the
numbers behind it. Latency proposals enter the merge as an ``External`` ``Value`` metric, the HPA
source whose proposal is computed outside the pods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hub.policy.audit import Proposal, SignalInput
from hub.policy.capacity import mix_capacity, size
from hub.policy.hpa import (
    MetricProposal,
    MetricSource,
    MetricTarget,
    TargetType,
    Tolerances,
    replicas_for_metric,
)
from hub.policy.model import Metric, SignalSpec
from hub.policy.signals import UNITS, LatencyReading, SignalReading

LATENCY_GUARD_MAX_RATIO = 2.0
"""The latency guard scales up by ``latency / target`` but by at most 2x per evaluation: past
saturation latency grows without bound, so a large ratio says "saturated", not "by how much"
(the capacity model sizes; the guard only covers for it). 2x is Knative's panic threshold."""


def hpa_proposal(reading: SignalReading, current: int, tol: Tolerances) -> tuple[MetricProposal, Proposal, SignalInput]:
    spec = reading.spec
    mp = replicas_for_metric(current, reading.pods, reading.target, tolerance=tol)
    counts = {
        "pods": len(reading.pods),
        "missing_pods": sum(1 for p in reading.pods if p.value is None and not p.pending),
        "unready_pods": sum(1 for p in reading.pods if p.pending),
    }
    detail = {"source": str(reading.target.source), "type": str(reading.target.type), **counts,
              "usage_ratio": mp.usage_ratio, "utilization": mp.utilization, "status_value": mp.value,
              "reason": mp.reason}
    if mp.error:
        detail["error"] = mp.error
    proposal = Proposal(spec.name, "hpa", mp.replicas if mp.computed else None, detail)
    signal = SignalInput(spec.name, reading.value, spec.target, UNITS[spec.metric], reading.partial, reading.missing)
    return mp, proposal, signal


def _external(spec: SignalSpec) -> MetricTarget:
    return MetricTarget(MetricSource.EXTERNAL, TargetType.VALUE, spec.target, spec.name)


@dataclass(frozen=True, slots=True)
class LatencyContext:
    """What a latency proposal needs besides its reading."""

    current: int
    ready: int
    demand: float | None
    """Tokens/s over the stable window."""
    load_partial: bool
    capacity: Mapping[str, float | None]
    """This signal's capacity per replica by GPU type, before headroom."""
    replicas_by_type: Mapping[str, int]
    """The fleet's current mix, which the proposal assumes it keeps."""
    settled: bool = True
    """The latency belongs to the fleet that serves now: nothing is starting and the ready fleet has
    not changed since the window's requests arrived (``WorkloadMemory.latency_is_current``).
    Otherwise it is the wait of requests from before, which more replicas do not shorten: the guard
    then only holds the count."""


def latency_proposal(
    reading: LatencyReading, ctx: LatencyContext, tol: Tolerances
) -> tuple[MetricProposal, Proposal, SignalInput, float | None]:
    """The capacity model's proposal with the latency guard; also returns the mix's capacity per replica.

    * sized: ``ceil(demand x (1 + headroom) / capacity of the current mix)``, kept at the current
      count when within the HPA tolerance of it;
    * guard: latency above target never proposes fewer than today, and outside the tolerance
      scales the ready replicas up by the latency ratio (at most ``LATENCY_GUARD_MAX_RATIO``), but
      only when the fleet is settled: while replicas start, or for ``window + latency`` after the
      ready fleet changed, latency is the wait of earlier requests (a start-up doubled the ready
      count every 90 s on it, 1 L4 to 64 GPUs, for a load 5 L4s serve), and the demand already
      counts the backlog to drain;
    * the proposal is the larger; with no capacity estimate a latency within target holds.
    """
    spec = reading.spec
    per_replica = mix_capacity(ctx.capacity, ctx.replicas_by_type)
    detail: dict[str, object] = {"demand_tokens_per_s": ctx.demand, "capacity_per_replica": per_replica,
                                 "headroom_percent": spec.headroom_percent, "latency_s": reading.value}
    sized = None
    if ctx.demand is not None and per_replica:
        sized = size(ctx.demand, spec.headroom_percent, per_replica)
        detail["sized"] = sized
        if ctx.current > 0 and tol.is_within(sized / ctx.current):
            sized = ctx.current
            detail["within_tolerance"] = True
    guard = None
    latency = reading.value
    if latency is not None and latency > spec.target:
        ratio = latency / spec.target
        guard = ctx.current
        if ratio > 1.0 + tol.scale_up and ctx.settled:
            guard = max(ctx.current, math.ceil(max(ctx.ready, 1) * min(ratio, LATENCY_GUARD_MAX_RATIO)))
        detail["guard"] = guard
        detail["latency_ratio"] = ratio
    candidates = [x for x in (sized, guard) if x is not None]
    replicas: int | None
    if candidates:
        replicas = max(candidates)
    elif latency is not None:
        replicas = ctx.current
        detail["note"] = "no capacity estimate for the serving GPU types: a latency within target holds"
    else:
        replicas = None
    target = _external(spec)
    if replicas is None:
        error = "no latency, no load or no capacity estimate to size with"
        mp = MetricProposal(target, 0, computed=False, reason="FailedGetExternalMetric", error=error)
        detail["error"] = error
    else:
        mp = MetricProposal(target, replicas, usage_ratio=None if latency is None else latency / spec.target)
    notes = []
    if reading.idle:
        notes.append(f"idle clusters (no requests in window): {', '.join(reading.idle)}")
    partial = reading.partial or ctx.load_partial
    signal = SignalInput(spec.name, latency, spec.target, UNITS[spec.metric], partial, reading.missing,
                         "; ".join(notes))
    return mp, Proposal(spec.name, "capacity-model", replicas, detail), signal, per_replica


def per_replica_forecast(spec: SignalSpec, request_rate: float | None, token_rate: float | None) -> int | None:
    """A forecast rate's replicas for a per-replica rate signal (``ceil(rate / target)``)."""
    rate = {Metric.REQUEST_RATE_PER_REPLICA: request_rate, Metric.TOKEN_RATE_PER_REPLICA: token_rate}.get(spec.metric)
    return None if rate is None else math.ceil(rate / spec.target - 1e-9)


def activation_replicas(queue_targets: list[float], waiting: float | None) -> int:
    """Replicas to wake to from zero: at least 1, more when the queue says so.

    From zero there are no pods, so a queue target is the HPA's ``External`` ``AverageValue`` at
    zero status replicas: ``ceil(waiting / target)`` (KEDA's math).
    """
    out = 1
    for target in queue_targets:
        if waiting:
            mp = replicas_for_metric(0, waiting, MetricTarget(MetricSource.EXTERNAL, TargetType.AVERAGE_VALUE, target),
                                     status_replicas=0)
            out = max(out, mp.replicas)
    return out
