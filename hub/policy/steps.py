"""Steps: how the count moves after the merge, each move recorded for the audit.

The engine passes the merged proposal through a fixed sequence (forecast, behaviour, panic,
starting replicas, scale to zero) or, when the signals cannot decide, through one of the holds
below (every signal missing and KEDA's fallback; activation from zero). ``Step`` carries the count
and collects a ``Clamp`` for every step that changed it, plus the reason text the decision log and
the metrics classify.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.policy.audit import Clamp, Proposal, SignalInput
from hub.policy.behavior import BehaviorResult
from hub.policy.hpa import MetricProposal
from hub.policy.memory import WorkloadMemory
from hub.policy.model import Metric, Policy
from hub.policy.proposals import activation_replicas
from hub.policy.signals import LoadReading


@dataclass(slots=True)
class Step:
    """The count as it passes the clamps, with their record."""

    value: int
    clamps: list[Clamp] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to(self, value: int, stage: str, reason: str, message: str, text: str | None = None) -> None:
        if value != self.value:
            self.clamps.append(Clamp(stage, self.value, value, reason, message))
            self.value = value
            if text:
                self.reasons.append(text)


def lead(winner: MetricProposal | None, signals: list[SignalInput], props: list[Proposal]) -> str:
    """The winning signal, as the reason's first words: ``name=value vs target T (method) -> N``."""
    if winner is None:
        return ""
    name = winner.target.name
    sig = next((s for s in signals if s.signal == name), None)
    prop = next((p for p in props if p.source == name), None)
    if sig is None or prop is None:
        return ""
    value = "missing" if sig.value is None else f"{sig.value:.3g}"
    return f"{name}={value} vs target {sig.target:g} ({prop.method}) -> {winner.replicas}"


def behaviour_clamps(step: Step, result: BehaviorResult, floor: int, ceiling: int) -> None:
    """Record what ``apply_behavior`` did, with the HPA's condition reasons."""
    if result.stabilized_replicas != result.proposed_replicas:
        step.to(result.stabilized_replicas, "stabilised", result.able_to_scale_reason, result.able_to_scale_message,
                f"stabilised to {result.stabilized_replicas}")
    if result.replicas != result.stabilized_replicas:
        bounded = result.limit_reason in ("TooManyReplicas", "TooFewReplicas")
        text = f"bounded to [{floor}, {ceiling}]" if bounded else f"rate-limited to {result.replicas}"
        step.to(result.replicas, "bounds" if bounded else "rate-limited", result.limit_reason,
                result.limit_message, text)


def all_missing(step: Step, policy: Policy, mem: WorkloadMemory, error: str, props: list[Proposal]) -> str:
    """Every signal missing: hold, and after ``failure_threshold`` evaluations KEDA's fallback floor."""
    mem.failures += 1
    fb = policy.fallback
    bounds = policy.bounds
    if fb is not None and mem.failures >= fb.failure_threshold:
        target = min(max(step.value, fb.replicas), bounds.max_replicas)
        props.append(Proposal("load", "fallback", fb.replicas, {"failures": mem.failures}))
        step.to(target, "fallback", "Fallback", f"{mem.failures} evaluations without any signal",
                f"fallback to at least {fb.replicas}")
        return (f"every signal is missing ({mem.failures} evaluations in a row); "
                f"fallback holds at least {fb.replicas}")
    held = min(max(step.value, bounds.min_replicas), bounds.max_replicas)
    step.to(held, "bounds", "TooFewReplicas" if held > step.value else "TooManyReplicas", "bounds while holding")
    return f"every signal is missing; holding ({error})" if error else "every signal is missing; holding"


def from_zero(step: Step, policy: Policy, load: LoadReading, merged: int | None, mem: WorkloadMemory,
              props: list[Proposal]) -> str:
    """At zero: KEDA's activation (waiting or request rate above the threshold) wakes the workload."""
    zero = policy.scale_to_zero
    if load.waiting is None and load.request_rate is None:
        return all_missing(step, policy, mem, "no queue and no request rate at zero replicas", props)
    mem.failures = 0
    waiting, rate = load.waiting or 0.0, load.request_rate or 0.0
    if waiting <= zero.activation_threshold and rate <= zero.activation_threshold:
        return (f"at zero; {waiting:g} waiting and {rate:.3g} req/s within activation threshold "
                f"{zero.activation_threshold:g}")
    wake = max(activation_replicas(queue_targets(policy), load.waiting), merged or 0)
    wake = min(wake, policy.bounds.max_replicas)
    props.append(Proposal("load", "activation", wake, {"waiting": load.waiting, "request_rate": load.request_rate,
                                                       "threshold": zero.activation_threshold}))
    step.to(wake, "zero", "Activation", "load above the activation threshold at zero replicas",
            f"activated from zero to {wake}")
    return f"{waiting:g} waiting, {rate:.3g} req/s above activation threshold {zero.activation_threshold:g}"


def queue_targets(policy: Policy) -> list[float]:
    return [s.target for s in policy.signals if s.metric is Metric.QUEUE_PER_REPLICA]
