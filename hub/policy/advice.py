"""The advisor's guard rails: what of an LLM's replica count may be applied. Pure and tested.

The hub hands the engine each workload's latest usable answer with its age (``WorkloadAdvice``;
``hub.advisor.advisor.Advisor.advice``); the engine's ``advice`` stage (``steps.advise``) reads it
here, after the forecast and before the behaviour:

``advisory`` never applies: the engine's count stands and the advice is only recorded. ``bounded``
applies the model's count only inside every rail at once:

- the policy's bounds (``min_replicas`` .. ``max_replicas``);
- at most ``max_delta_replicas`` away from the engine's own proposal (the merged proposal, after
  the forecast stage);
- never below the engine's SLO-safe floor (``slo_floor``), so an advisor can trim headroom and what
  non-SLO signals (utilisation, KV cache) ask for, but never talk the fleet under its objective.

Advice older than ``STALE_INTERVALS`` of the policy's ``interval_s``, or given under another policy,
is ignored. When the rails leave no room (a proposal above ``max_replicas`` that the behaviour will
bound), the engine's count stands. The result then goes through the same behaviour stage
(stabilisation, rate limits) as any engine count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.policy.audit import Proposal, SignalInput
from hub.policy.model import Metric, Policy

STALE_INTERVALS = 2.0
"""Advice older than this many of the policy's ``advisor.interval_s`` is ignored: one missed
question is tolerated, two are not."""

OUTCOMES = ("applied", "clamped", "agreed", "stale", "advisory")
"""What the advice stage did with a workload's advice (the ``outcome`` of ``fleetscale_hub_advice_total``):
``applied``: the advised count, inside every rail, became the count; ``clamped``: the advised count was
outside a rail and was cut to it (the count moved to the rail, or the engine's stood); ``agreed``: the
advice was the engine's own count; ``stale``: too old, or given under another policy, ignored;
``advisory``: the policy's mode is ``advisory``, recorded only."""

Outcome = Literal["applied", "clamped", "agreed", "stale", "advisory"]


@dataclass(frozen=True, slots=True)
class WorkloadAdvice:
    """A workload's latest usable answer, as the hub hands it to the engine (no I/O here)."""

    replicas: int
    age_s: float
    """Seconds since the answer arrived, at the snapshot's time."""
    policy_id: str
    """The policy the question was asked under."""
    answered_at: str
    """When the answer arrived (ISO 8601): the advice's identity, so it is counted once per outcome."""
    confidence: float | None = None
    rationale: str = ""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """The summary the model was sent."""
    answer: str | None = None
    """The model's answer, as it came."""


@dataclass(frozen=True, slots=True)
class Bounded:
    desired: int
    applied: bool
    """Whether the advice changed the count."""
    reason: str
    low: int = 0
    high: int = 0
    """The rails: the advice is cut to ``low`` .. ``high`` (``low > high``: no room, the engine stands)."""
    clipped: bool = False
    """The advised count was outside the rails."""


def bound_advice(
    engine: int,
    advised: int | None,
    *,
    mode: Literal["off", "advisory", "bounded"],
    min_replicas: int,
    max_replicas: int,
    floor: int,
    max_delta: int,
) -> Bounded:
    if mode != "bounded" or advised is None:
        why = "no advice" if advised is None else f"advisory only: the advisor said {advised}"
        return Bounded(engine, False, why)
    lo = max(min_replicas, floor, engine - max_delta)
    hi = min(max_replicas, engine + max_delta)
    if lo > hi:
        return Bounded(engine, False, f"advisor said {advised}; the rails leave no room (floor {floor})", lo, hi,
                       advised != engine)
    desired = min(max(advised, lo), hi)
    clipped = desired != advised
    if desired == engine:
        return Bounded(engine, False, f"advisor said {advised}; within the rails the engine's {engine} stands",
                       lo, hi, clipped)
    cut = f", clipped to {desired} (rails {lo}..{hi})" if clipped else ""
    return Bounded(desired, True, f"advisor said {advised}{cut}", lo, hi, clipped)


def _slo_signals(policy: Policy) -> list[str]:
    return [s.name for s in policy.signals if s.metric.is_latency or s.metric is Metric.QUEUE_PER_REPLICA]


def slo_floor(policy: Policy, proposals: Sequence[Proposal], inputs: Sequence[SignalInput], engine: int
              ) -> tuple[int, str]:
    """The engine's SLO-safe floor for ``engine`` (its proposal), and why.

    The SLO signals are the latency signals and ``queue_per_replica``. The floor is the engine's own
    proposal (the advisor may only add) when any of them is missing, partial, could not propose, or
    when a latency signal is above its target (the SLO is missed now: no trimming). Otherwise it is
    the largest of:

    * per latency signal: ``ceil(demand / capacity per replica)``, the replicas of today's mix the
      capacity model says serve the demand within the target *without* the headroom (its proposal
      when it has no capacity estimate);
    * per queue signal: its proposal;
    * the forecast proposals of those signals;

    and at most ``engine``. A policy without an SLO signal states no objective: the floor is 0
    (the bounds and ``max_delta_replicas`` still hold).
    """
    slo = _slo_signals(policy)
    if not slo:
        return 0, "no latency or queue signal: no SLO floor"
    by_name = {i.signal: i for i in inputs}
    proposed = {p.source: p for p in proposals if p.method in ("hpa", "capacity-model")}
    floor, why = 0, "no SLO signal asks for more"
    for name in slo:
        sig, prop = by_name.get(name), proposed.get(name)
        if sig is None or prop is None or prop.replicas is None or sig.partial:
            return engine, f"{name} missing or partial: the engine's {engine} is the floor"
        spec = next(s for s in policy.signals if s.name == name)
        if spec.metric.is_latency and sig.value is not None and sig.value > spec.target:
            return engine, f"{name} {sig.value:.3g} above target {spec.target:g}: the engine's {engine} is the floor"
        n, what = prop.replicas, f"{name} proposes {prop.replicas}"
        demand, cap = prop.detail.get("demand_tokens_per_s"), prop.detail.get("capacity_per_replica")
        if spec.metric.is_latency and isinstance(demand, (int, float)) and isinstance(cap, (int, float)) and cap > 0:
            n = math.ceil(demand / cap - 1e-9)
            what = f"{name}: {n} serve {demand:.0f} tokens/s within the target, without headroom"
        if n > floor:
            floor, why = n, what
    for p in proposals:
        if p.method == "forecast" and p.source in slo and p.replicas is not None and p.replicas > floor:
            floor, why = p.replicas, f"the forecast of {p.source} needs {p.replicas}"
    if floor > engine:
        return engine, f"{why}; at most the engine's {engine}"
    return floor, why


@dataclass(frozen=True, slots=True)
class AdviceVerdict:
    """What the advice stage did with one workload's advice, as the audit keeps it."""

    outcome: Outcome
    desired: int
    """The count after the stage (before the behaviour)."""
    engine: int
    reason: str
    advice: WorkloadAdvice
    mode: str
    floor: int | None = None
    floor_reason: str = ""
    rails: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        a = self.advice
        return {
            "mode": self.mode, "outcome": self.outcome, "advised": a.replicas, "engine": self.engine,
            "desired": self.desired, "floor": self.floor, "floor_reason": self.floor_reason,
            "rails": None if self.rails is None else list(self.rails), "reason": self.reason,
            "age_s": round(a.age_s, 3), "confidence": a.confidence, "rationale": a.rationale,
            "exchange": {"answered_at": a.answered_at, "summary": dict(a.summary), "answer": a.answer},
        }


def judge(advice: WorkloadAdvice, policy: Policy, engine: int, proposals: Sequence[Proposal],
          inputs: Sequence[SignalInput]) -> AdviceVerdict | None:
    """The advice stage's decision for ``engine`` (the count it is handed); None when the advisor is off."""
    spec = policy.advisor
    if spec.mode == "off":
        return None
    limit = STALE_INTERVALS * spec.interval_s
    if advice.policy_id != policy.id:
        return AdviceVerdict("stale", engine, engine, f"advice given under policy {advice.policy_id}; ignored",
                             advice, spec.mode)
    if advice.age_s > limit:
        return AdviceVerdict("stale", engine, engine, f"advice {advice.age_s:.0f}s old (more than {limit:g}s); "
                             "ignored", advice, spec.mode)
    if spec.mode == "advisory":
        return AdviceVerdict("advisory", engine, engine, f"advisory only: the advisor said {advice.replicas}",
                             advice, spec.mode)
    floor, floor_why = slo_floor(policy, proposals, inputs, engine)
    b = bound_advice(engine, advice.replicas, mode="bounded", min_replicas=policy.bounds.min_replicas,
                     max_replicas=policy.bounds.max_replicas, floor=floor, max_delta=spec.max_delta_replicas)
    outcome: Outcome = "clamped" if b.clipped else ("applied" if b.applied else "agreed")
    return AdviceVerdict(outcome, b.desired, engine, b.reason, advice, spec.mode, floor, floor_why, (b.low, b.high))
