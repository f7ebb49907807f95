"""Steps: the named stages the count passes after the merge, each move recorded for the audit.

The engine passes the merged proposal through a fixed sequence of stages (``forecast``, ``advice``,
``behaviour``, ``panic``, ``starting``, ``scale_to_zero``) or, when the signals cannot decide,
through one of the holds (``outside_bounds``, ``all_missing`` with KEDA's fallback, ``from_zero``
with activation, ``merge_hold``). ``Step`` carries the count, collects a ``Clamp`` for every stage
that changed it, the reason text for people, and the ``Cause``: the last stage that changed the
count, or what the merge said when none did. Each stage is a small function of its inputs, tested
by table (tests/hub/policy/test_steps.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.policy.advice import WorkloadAdvice, judge
from hub.policy.audit import Clamp, Proposal, SignalInput
from hub.policy.behavior import BehaviorResult
from hub.policy.cause import STAGE_CAUSES, Cause
from hub.policy.hpa import MetricProposal
from hub.policy.memory import WorkloadMemory
from hub.policy.model import Metric, Policy, ScaleToZeroSpec
from hub.policy.panic import PanicDecision
from hub.policy.proposals import activation_replicas
from hub.policy.signals import LoadReading


@dataclass(slots=True)
class Step:
    """The count as it passes the clamps, with their record."""

    value: int
    clamps: list[Clamp] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    cause: Cause = Cause.SIGNAL
    signal: str | None = None
    """The signal whose proposal the count started from (``deciding_signal``); None for a hold."""
    advice: dict[str, Any] | None = None
    """What the advice stage did (``advice.AdviceVerdict.to_json``); None when no advice was handed in."""
    load: float | None = None
    """Tokens/s the count stands for when a stage decided it from a load (the scale-down window's
    held load): placement buys that load at the cheapest mix, not the count times today's mix.
    A later stage that moves the count clears it."""

    def to(self, value: int, stage: str, reason: str, message: str, text: str | None = None) -> None:
        if value != self.value:
            self.clamps.append(Clamp(stage, self.value, value, reason, message))
            self.value = value
            self.load = None
            self.cause = Cause.ACTIVATION if reason == "Activation" else STAGE_CAUSES[stage]
            if text:
                self.reasons.append(text)

    def hold(self, cause: Cause) -> None:
        """The count stays where it is for ``cause`` (no stage moved it)."""
        self.cause, self.signal = cause, None


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
    step.hold(Cause.MISSING_DATA)
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
        step.hold(Cause.ZERO)
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


def outside_bounds(step: Step, policy: Policy, load: LoadReading) -> str:
    """The HPA's pre-check: a count outside the bounds goes straight back inside them.

    At 0 with min > 0 the HPA stops scaling instead; Fleetscale owns the count, so it wakes the
    workload like an activation: to the minimum, or more when the queue says so."""
    bounds = policy.bounds
    current = step.value
    above = current > bounds.max_replicas
    target = bounds.max_replicas if above else bounds.min_replicas
    if current == 0:
        target = min(max(target, activation_replicas(queue_targets(policy), load.waiting)), bounds.max_replicas)
    text = f"bounded to [{bounds.min_replicas}, {bounds.max_replicas}]"
    if not above and target > bounds.min_replicas:
        text += f"; {target} for the queue waiting at zero"
    step.signal = None
    step.to(target, "bounds", "AboveMaxReplicas" if above else "BelowMinReplicas",
            "current count outside the policy's bounds", text)
    return "current replicas outside the bounds"


def forecast(step: Step, proposal: int | None, horizon_s: float) -> None:
    """The forecast load's proposal may raise the count ahead of a rise, never lower it."""
    if proposal is not None and proposal > step.value:
        step.to(proposal, "forecast", "Forecast", "the forecast load needs more replicas ahead of time",
                f"forecast over {horizon_s:g}s needs {proposal}")


def advise(step: Step, advice: WorkloadAdvice | None, policy: Policy, proposals: Sequence[Proposal],
           inputs: Sequence[SignalInput]) -> None:
    """The LLM advisor's count, inside the guard rails (``hub.policy.advice``), in ``bounded`` mode only.

    Recorded in every mode but ``off``; the behaviour after it treats the result as any proposal."""
    if advice is None:
        return
    verdict = judge(advice, policy, step.value, proposals, inputs)
    if verdict is None:
        return
    step.advice = verdict.to_json()
    step.to(verdict.desired, "advice", "Advice", verdict.reason, f"advisor: {verdict.reason}")


def panic(step: Step, decision: PanicDecision, current: int, ceiling: int) -> None:
    """While panicking: at least the largest panic proposal (and no scale-down), past the rate limits."""
    if not decision.panicking:
        return
    target = min(max(decision.floor, current), ceiling)
    if step.value < target:
        step.to(target, "panic", "Panic", "panic mode: the burst's proposal at once, no scale-down",
                f"panic ({decision.ratio or 0:.2g}x ready capacity)")
        if target == decision.floor:
            # The floor is a load: placement buys it where it is cheapest. As a count of the ready
            # mix it was one more start-up L4 per tick, each rated lower as the prompt estimate
            # settled, until the L4s were the whole pool and worth a tenth of what they were bought as.
            step.load = decision.load


def starting(step: Step, current: int, ready: int) -> None:
    """No scale-down while replicas asked for are not ready yet."""
    if step.value < current and ready < current:
        step.reasons.clear()  # the hold decides; the clamps before it did not matter
        step.to(current, "starting", "ReplicasStarting", "replicas are starting; no scale-down",
                f"{current - ready} replicas still starting; no scale-down")


def scale_to_zero(step: Step, zero: ScaleToZeroSpec, idle_s: float | None) -> None:
    """To 0 only after ``idle_seconds`` without requests or queue; at least 1 until then."""
    if not zero.enabled:
        return
    if idle_s is not None and idle_s >= zero.idle_seconds:
        step.to(0, "zero", "Idle", f"no request and no queue for {zero.idle_seconds}s")
        step.cause = Cause.ZERO  # also when the proposal was 0 already: the idle period lets it stand
        step.reasons.append(f"idle for {idle_s:.0f}s; scale to zero")
    elif step.value == 0:
        step.to(1, "zero", "NotIdleLongEnough", "zero only after the idle period",
                f"at least 1 until idle for {zero.idle_seconds}s")


def cost_ceiling(step: Step, ceiling: float | None, price_per_replica: float | None, floor: int = 0) -> None:
    """The policy's ``max_cost_per_hour`` caps the count at the replicas of today's mix it pays for.

    ``min_replicas`` stays a floor: an operator's minimum is a promise the ceiling does not break.
    Without a price for the mix the ceiling cannot be read in replicas and does nothing (the
    placement prices nothing it has no price for either)."""
    if ceiling is None or not price_per_replica:
        return
    most = max(int(ceiling // price_per_replica), floor)
    if step.value > most:
        step.to(most, "cost-ceiling", "CostCeiling", f"at most ${ceiling:g}/h",
                f"cost ceiling ${ceiling:g}/h: at most {most} replicas at ${price_per_replica:.2f}/h each")
