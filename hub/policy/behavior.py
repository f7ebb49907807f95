"""HPA `behavior`: stabilisation windows, rate-limit policies and min/max bounds.

This module owns what `horizontal.go` does between "the metrics propose N
replicas" and "set the scale to M": `normalizeDesiredReplicasWithBehaviors`
(`stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
`calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`),
the legacy path used when an HPA has no `behavior` (`normalizeDesiredReplicas`),
the bounds pre-checks of `reconcileAutoscaler`, and the API defaults and
validation of `HPAScalingRules` (`defaults.go`, `validation.go`).

The controller keeps recommendation and scale-event history in memory and
reads `time.Now()`; here both are inputs, so a decision can be replayed and
audited. Timestamps are plain float seconds. Every result says which clamp
applied, with the HPA's condition reason strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from hub.policy.hpa import DEFAULT_TOLERANCE, Tolerances

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS = 300
"""`--horizontal-pod-autoscaler-downscale-stabilization` default."""

# Legacy (no `behavior`) scale-up cap: max(2 x current, 4).
LEGACY_SCALE_UP_FACTOR = 2.0
LEGACY_SCALE_UP_MINIMUM = 4.0

Recommendation = tuple[float, int]
"""(timestamp, unstabilised recommendation) as the HPA records it."""
ScaleEvent = tuple[float, int]
"""(timestamp, replica change), the change counted positive in its direction."""


# The HPA's condition messages, keyed by condition reason.
MESSAGES: dict[str, str] = {
    "ReadyForNewScale": "recommended size matches current size",
    "ScaleUpStabilized": "recent recommendations were lower than current one, "
    "applying the lowest recent recommendation",
    "ScaleDownStabilized": "recent recommendations were higher than current one, "
    "applying the highest recent recommendation",
    "DesiredWithinRange": "the desired count is within the acceptable range",
    "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
    "ScaleDownLimit": "the desired replica count is decreasing faster than the maximum scale rate",
    "TooManyReplicas": "the desired replica count is more than the maximum replica count",
    "TooFewReplicas": "the desired replica count is less than the minimum replica count",
    "ScalingDisabled": "scaling is disabled since the replica count of the target is zero",
    "AboveMaxReplicas": "Current number of replicas above Spec.MaxReplicas",
    "BelowMinReplicas": "Current number of replicas below Spec.MinReplicas",
}


class PolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


@dataclass(frozen=True)
class ScalingPolicy:
    """One `HPAScalingPolicy`: at most `value` pods or percent per `period_seconds`."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("policy value must be greater than zero")
        if not 0 < self.period_seconds <= MAX_PERIOD_SECONDS:
            raise ValueError(f"periodSeconds must be in (0, {MAX_PERIOD_SECONDS}]")


@dataclass(frozen=True)
class ScalingRules:
    """One direction's `HPAScalingRules`, fully defaulted."""

    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = SelectPolicy.MAX
    stabilization_window_seconds: int = 0
    tolerance: float | None = None
    """KEP-4951 per-direction tolerance; None means the global default."""

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("must specify at least one Policy")
        if not 0 <= self.stabilization_window_seconds <= MAX_STABILIZATION_WINDOW_SECONDS:
            raise ValueError(f"stabilizationWindowSeconds must be in [0, {MAX_STABILIZATION_WINDOW_SECONDS}]")
        if self.tolerance is not None and self.tolerance < 0:
            raise ValueError("tolerance must be >= 0")

    @classmethod
    def for_scale_up(
        cls,
        *,
        policies: Sequence[ScalingPolicy] | None = None,
        select_policy: SelectPolicy | None = None,
        stabilization_window_seconds: int | None = None,
        tolerance: float | None = None,
    ) -> ScalingRules:
        """Fill unset fields with the HPA's scale-up defaults (`GenerateHPAScaleUpRules`)."""
        window = 0 if stabilization_window_seconds is None else stabilization_window_seconds
        return cls(tuple(policies or _UP_POLICIES), select_policy or SelectPolicy.MAX, window, tolerance)

    @classmethod
    def for_scale_down(
        cls,
        *,
        policies: Sequence[ScalingPolicy] | None = None,
        select_policy: SelectPolicy | None = None,
        stabilization_window_seconds: int | None = None,
        tolerance: float | None = None,
    ) -> ScalingRules:
        """Fill unset fields with the HPA's scale-down defaults (`GenerateHPAScaleDownRules`)."""
        window = stabilization_window_seconds
        if window is None:
            window = DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS
        return cls(tuple(policies or _DOWN_POLICIES), select_policy or SelectPolicy.MAX, window, tolerance)


_UP_POLICIES = (ScalingPolicy(PolicyType.PODS, 4, 15), ScalingPolicy(PolicyType.PERCENT, 100, 15))
_DOWN_POLICIES = (ScalingPolicy(PolicyType.PERCENT, 100, 15),)


@dataclass(frozen=True)
class Behavior:
    """`HorizontalPodAutoscalerBehavior`; the defaults equal the HPA's."""

    scale_up: ScalingRules = field(default_factory=ScalingRules.for_scale_up)
    scale_down: ScalingRules = field(default_factory=ScalingRules.for_scale_down)

    @classmethod
    def default(cls) -> Behavior:
        return cls()

    def tolerances(self, default: float = DEFAULT_TOLERANCE) -> Tolerances:
        """Per-direction tolerances, falling back to the global flag value."""
        down = self.scale_down.tolerance
        up = self.scale_up.tolerance
        return Tolerances(
            scale_down=default if down is None else down,
            scale_up=default if up is None else up,
        )


@dataclass(frozen=True)
class BehaviorResult:
    """The normalised decision and why, in the HPA's condition vocabulary.

    `able_to_scale_reason` is the AbleToScale reason (ReadyForNewScale,
    ScaleUpStabilized, ScaleDownStabilized). `limit_reason` is the
    ScalingLimited reason (DesiredWithinRange, ScaleUpLimit, ScaleDownLimit,
    TooManyReplicas, TooFewReplicas) and `scaling_limited` its status.
    `record` is the recommendation the caller must append to its history.
    """

    current_replicas: int
    proposed_replicas: int
    stabilized_replicas: int
    replicas: int
    able_to_scale_reason: str
    scaling_limited: bool
    limit_reason: str
    record: Recommendation

    @property
    def able_to_scale_message(self) -> str:
        return MESSAGES[self.able_to_scale_reason]

    @property
    def limit_message(self) -> str:
        return MESSAGES[self.limit_reason]

    @property
    def rescale(self) -> bool:
        return self.replicas != self.current_replicas

    @property
    def scale_event(self) -> tuple[str, ScaleEvent] | None:
        """("up"|"down", event) to store after a successful rescale (`storeScaleEvent`)."""
        if self.replicas > self.current_replicas:
            return "up", (self.record[0], self.replicas - self.current_replicas)
        if self.replicas < self.current_replicas:
            return "down", (self.record[0], self.current_replicas - self.replicas)
        return None


@dataclass(frozen=True)
class BoundsOverride:
    """`reconcileAutoscaler` decided before looking at metrics."""

    replicas: int
    rescale: bool
    reason: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


def bounds_precheck(current: int, *, min_replicas: int, max_replicas: int) -> BoundsOverride | None:
    """The HPA's checks ahead of any metric: disabled at zero, or out of [min, max].

    Returns None when metrics should decide. A target scaled to 0 with
    minReplicas > 0 means autoscaling is switched off (ScalingActive=False,
    ScalingDisabled); a count outside the bounds is pulled back directly.
    """
    if current == 0 and min_replicas != 0:
        return BoundsOverride(0, False, "ScalingDisabled")
    if current > max_replicas:
        return BoundsOverride(max_replicas, True, "AboveMaxReplicas")
    if current < min_replicas:
        return BoundsOverride(min_replicas, True, "BelowMinReplicas")
    return None


def _period_start(
    current: int, policy: ScalingPolicy, ups: Sequence[ScaleEvent], downs: Sequence[ScaleEvent], now: float
) -> int:
    """Replicas at the start of the policy's period: current - added + deleted."""
    # `getReplicasChangePerPeriod` counts events strictly after the cutoff.
    cutoff = now - policy.period_seconds
    return current - sum(c for ts, c in ups if ts > cutoff) + sum(c for ts, c in downs if ts > cutoff)


def calculate_scale_up_limit(
    current: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    *,
    now: float,
) -> int:
    """Highest count the scale-up policies allow now (`calculateScaleUpLimitWithScalingRules`)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    pick = min if rules.select_policy is SelectPolicy.MIN else max
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, policy, scale_up_events, scale_down_events, now)
        if policy.type is PolicyType.PODS:
            proposals.append(start + policy.value)
        else:
            # Rounded up so a small percentage can still add a pod.
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return pick(proposals)


def calculate_scale_down_limit(
    current: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    *,
    now: float,
) -> int:
    """Lowest count the scale-down policies allow now (`calculateScaleDownLimitWithBehaviors`)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    # For scale-down the smallest change is the highest count, hence inverted.
    pick = max if rules.select_policy is SelectPolicy.MIN else min
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, policy, scale_up_events, scale_down_events, now)
        if policy.type is PolicyType.PODS:
            proposals.append(start - policy.value)
        else:
            # Go's int32() conversion truncates toward zero.
            proposals.append(math.trunc(start * (1 - policy.value / 100)))
    return pick(proposals)


def stabilize_recommendation(
    current: int,
    proposed: int,
    recommendations: Sequence[Recommendation],
    behavior: Behavior,
    *,
    now: float,
) -> tuple[int, str]:
    """`stabilizeRecommendationWithBehaviors`: clamp into [min over up-window, max over down-window].

    Returns (recommendation, reason); the HPA only reports the reason when
    the recommendation differs from `proposed`.
    """
    up_cutoff = now - behavior.scale_up.stabilization_window_seconds
    down_cutoff = now - behavior.scale_down.stabilization_window_seconds
    up_rec = proposed
    down_rec = proposed
    for ts, rec in recommendations:
        if ts > up_cutoff:
            up_rec = min(rec, up_rec)
        if ts > down_cutoff:
            down_rec = max(rec, down_rec)
    recommendation = min(max(current, up_rec), down_rec)
    return recommendation, "ScaleUpStabilized" if proposed >= current else "ScaleDownStabilized"


def convert_with_behavior_rate(
    current: int,
    desired: int,
    *,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str]:
    """`convertDesiredReplicasWithBehaviorRate`: apply the rate limit, then min/max.

    Returns (replicas, ScalingLimited reason).
    """
    if desired > current:
        up = calculate_scale_up_limit(current, scale_up_events, scale_down_events, behavior.scale_up, now=now)
        # Recent events may put the limit below current; never scale down here.
        up = max(up, current)
        allowed, reason = (up, "ScaleUpLimit") if max_replicas > up else (max_replicas, "TooManyReplicas")
        if desired > allowed:
            return allowed, reason
    elif desired < current:
        down = calculate_scale_down_limit(
            current, scale_up_events, scale_down_events, behavior.scale_down, now=now
        )
        down = min(down, current)
        allowed, reason = (
            (down, "ScaleDownLimit") if min_replicas < down else (min_replicas, "TooFewReplicas")
        )
        if desired < allowed:
            return allowed, reason
    return desired, "DesiredWithinRange"


def apply_behavior(
    current: int,
    proposed: int,
    *,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    recommendations: Sequence[Recommendation],
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> BehaviorResult:
    """Normalise a metric proposal as `normalizeDesiredReplicasWithBehaviors` does.

    `recommendations` is this target's history of unstabilised proposals
    (excluding `proposed`); `scale_*_events` are past rescales. The caller
    appends `result.record` to the history and, after a rescale,
    `result.scale_event`. Entries older than the longest window or period
    have no effect and may be dropped.
    """
    _check_bounds(min_replicas, max_replicas)
    stabilized, reason = stabilize_recommendation(current, proposed, recommendations, behavior, now=now)
    if stabilized == proposed:
        reason = "ReadyForNewScale"
    replicas, limit_reason = convert_with_behavior_rate(
        current,
        stabilized,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        behavior=behavior,
        scale_up_events=scale_up_events,
        scale_down_events=scale_down_events,
        now=now,
    )
    return BehaviorResult(
        current_replicas=current,
        proposed_replicas=proposed,
        stabilized_replicas=stabilized,
        replicas=replicas,
        able_to_scale_reason=reason,
        scaling_limited=replicas != stabilized,
        limit_reason=limit_reason,
        record=(now, proposed),
    )


def legacy_scale_up_limit(current: int) -> int:
    """`calculateScaleUpLimit`: max(2 x current, 4), used only without `behavior`."""
    return int(max(LEGACY_SCALE_UP_FACTOR * current, LEGACY_SCALE_UP_MINIMUM))


def convert_with_rules(
    current: int, desired: int, *, min_replicas: int, max_replicas: int
) -> tuple[int, str]:
    """`convertDesiredReplicasWithRules`: the legacy min/max/scale-up clamp."""
    up = legacy_scale_up_limit(current)
    allowed, reason = (up, "ScaleUpLimit") if max_replicas > up else (max_replicas, "TooManyReplicas")
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > allowed:
        return allowed, reason
    return desired, "DesiredWithinRange"


def apply_legacy(
    current: int,
    proposed: int,
    *,
    min_replicas: int,
    max_replicas: int,
    recommendations: Sequence[Recommendation],
    now: float,
    downscale_stabilization_seconds: int = DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
) -> BehaviorResult:
    """`normalizeDesiredReplicas`: the path for an HPA without `behavior`.

    Only a scale-down window applies (max over recent recommendations; unlike
    the behavior path the cutoff is inclusive), then the legacy clamp.
    """
    _check_bounds(min_replicas, max_replicas)
    cutoff = now - downscale_stabilization_seconds
    stabilized = max([proposed, *(rec for ts, rec in recommendations if ts >= cutoff)])
    reason = "ScaleDownStabilized" if stabilized != proposed else "ReadyForNewScale"
    replicas, limit_reason = convert_with_rules(
        current, stabilized, min_replicas=min_replicas, max_replicas=max_replicas
    )
    return BehaviorResult(
        current_replicas=current,
        proposed_replicas=proposed,
        stabilized_replicas=stabilized,
        replicas=replicas,
        able_to_scale_reason=reason,
        scaling_limited=replicas != stabilized,
        limit_reason=limit_reason,
        record=(now, proposed),
    )


def _check_bounds(min_replicas: int, max_replicas: int) -> None:
    if min_replicas < 0 or max_replicas < 1 or min_replicas > max_replicas:
        raise ValueError(f"invalid bounds: min={min_replicas}, max={max_replicas}")
