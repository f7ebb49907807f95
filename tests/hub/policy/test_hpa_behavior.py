"""Ports of the behavior/normalisation tables in kubernetes/kubernetes horizontal_test.go.

Go reads `time.Now()`; these tests pass `now=NOW` and express Go's
`time.Now().Add(-d)` as `NOW - d`. `generateEventsUniformDistribution`
places event k of n at `period - seg*(k+1) + seg/2` seconds ago, seg = period/n.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub.policy.behavior import (
    Behavior,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    apply_behavior,
    apply_legacy,
    bounds_precheck,
    calculate_scale_down_limit,
    calculate_scale_up_limit,
    convert_with_behavior_rate,
    convert_with_rules,
    legacy_scale_up_limit,
    stabilize_recommendation,
)
from hub.policy.hpa import Tolerances

NOW = 10_000.0


def rules(pods: int, pods_period: int, percent: int, percent_period: int, window: int) -> ScalingRules:
    """`generateScalingRules`: Max select policy, a policy only for non-zero values."""
    policies = []
    if pods:
        policies.append(ScalingPolicy(PolicyType.PODS, pods, pods_period))
    if percent:
        policies.append(ScalingPolicy(PolicyType.PERCENT, percent, percent_period))
    return ScalingRules(tuple(policies), SelectPolicy.MAX, window)


def events(changes: list[int], period: int) -> list[tuple[float, int]]:
    seg = period / len(changes)
    return [(NOW - int(period - seg * (k + 1) + seg / 2), c) for k, c in enumerate(changes)]


@dataclass(frozen=True)
class RateCase:
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    reason: str
    up: ScalingRules | None = None
    down: ScalingRules | None = None
    up_events: tuple[tuple[float, int], ...] = ()
    down_events: tuple[tuple[float, int], ...] = ()


def ev(changes: list[int], period: int = 120) -> tuple[tuple[float, int], ...]:
    return tuple(events(changes, period))


SCALING_WITH_RULES = {
    "prenormalized desired replicas within range": RateCase(5, 7, 3, 8, 7, "DesiredWithinRange"),
    "prenormalized desired replicas < minReplicas": RateCase(3, 1, 2, 8, 2, "TooFewReplicas"),
    "prenormalized desired replicas within range when minReplicas is 0": RateCase(
        1, 0, 0, 10, 0, "DesiredWithinRange"
    ),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": RateCase(
        20, 1000, 1, 10, 10, "TooManyReplicas"
    ),
    "desired replica count is more than the maximum replica count": RateCase(
        100, 1000, 100, 150, 150, "TooManyReplicas"
    ),
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies": RateCase(
        3, 1000, 1, 2000, 4, "ScaleUpLimit", up=rules(0, 0, 1, 60, 0)
    ),
    # Skipped upstream (testThis), but its expectation holds.
    "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies": RateCase(
        1000, 3, 3, 2000, 980, "ScaleDownLimit", down=rules(20, 60, 0, 0, 0)
    ),
    "scaleUp with default behavior": RateCase(10, 50, 1, 1000, 20, "ScaleUpLimit"),
    "scaleUp with pods policy larger than percent policy": RateCase(
        10, 500, 1, 1000, 110, "ScaleUpLimit", up=rules(100, 60, 100, 60, 0)
    ),
    "scaleUp with percent policy larger than pods policy": RateCase(
        10, 500, 1, 1000, 20, "ScaleUpLimit", up=rules(2, 60, 100, 60, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy": RateCase(
        10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(100, 60, 0, 0, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy": RateCase(
        10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(10000, 60, 0, 0, 0)
    ),
    "scaleUp with pod policy limitation": RateCase(
        10, 50, 1, 1000, 40, "ScaleUpLimit", up=rules(30, 60, 0, 0, 0)
    ),
    "scaleUp with percent policy limitation": RateCase(
        10, 50, 1, 1000, 30, "ScaleUpLimit", up=rules(0, 0, 200, 60, 0)
    ),
    "scaleDown with percent policy larger than pod policy": RateCase(
        100, 2, 1, 1000, 80, "ScaleDownLimit", down=rules(20, 60, 1, 60, 300)
    ),
    "scaleDown with pod policy larger than percent policy": RateCase(
        100, 2, 1, 1000, 98, "ScaleDownLimit", down=rules(2, 60, 1, 60, 300)
    ),
    "scaleDown with spec MinReplicas=nil limitation with large pod policy": RateCase(
        10, 0, 1, 1000, 1, "TooFewReplicas", down=rules(100, 60, 0, 0, 300)
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy": RateCase(
        10, 2, 5, 1000, 5, "TooFewReplicas", down=rules(0, 0, 100, 60, 300)
    ),
    "scaleDown with pod policy limitation": RateCase(
        10, 2, 1, 1000, 5, "ScaleDownLimit", down=rules(5, 60, 0, 0, 300)
    ),
    "scaleDown with percent policy limitation": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(0, 0, 50, 60, 300)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy and events": RateCase(
        100, 500, 1, 200, 200, "TooManyReplicas", up=rules(300, 60, 0, 0, 0), up_events=ev([1, 5, 9])
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy and events": RateCase(
        100, 500, 1, 200, 200, "TooManyReplicas", up=rules(0, 0, 10000, 60, 0), up_events=ev([1, 5, 9])
    ),
    (
        "scaleUp with currentReplicas limitation with"
        " rate.PeriodSeconds with a lot of recent scale up events"
    ): RateCase(
        100, 500, 1, 1000, 100, "ScaleUpLimit", up=rules(5, 120, 0, 0, 0), up_events=ev([1, 5, 9])
    ),
    "scaleUp with pod policy and previous scale up events": RateCase(
        100, 500, 1, 1000, 235, "ScaleUpLimit", up=rules(150, 120, 0, 0, 0), up_events=ev([1, 5, 9])
    ),
    "scaleUp with percent policy and previous scale up events": RateCase(
        100, 500, 1, 1000, 255, "ScaleUpLimit", up=rules(0, 0, 200, 120, 0), up_events=ev([1, 5, 9])
    ),
    "scaleUp with percent policy and previous scale up and down events": RateCase(
        6,
        24,
        1,
        1000,
        16,
        "ScaleUpLimit",
        up=rules(0, 0, 300, 300, 0),
        up_events=ev([4]),
        down_events=ev([2]),
    ),
    "scaleDown with default policy and previous events": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", down_events=ev([1, 5, 9])
    ),
    "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events": RateCase(
        100, 0, 1, 1000, 1, "TooFewReplicas", down=rules(115, 120, 0, 0, 300), down_events=ev([1, 5, 9])
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy and previous events": RateCase(
        100, 0, 5, 1000, 5, "TooFewReplicas", down=rules(130, 120, 0, 0, 300), down_events=ev([1, 5, 9])
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy and previous events": RateCase(
        100, 2, 5, 1000, 5, "TooFewReplicas", down=rules(0, 0, 100, 120, 300), down_events=ev([1, 5, 9])
    ),
    "scaleDown with pod policy limitation and previous events": RateCase(
        100, 2, 1, 1000, 100, "ScaleDownLimit", down=rules(5, 120, 0, 0, 300), down_events=ev([1, 5, 9])
    ),
    "scaleDown with percent policy limitation and previous events": RateCase(
        100, 0, 1, 1000, 56, "ScaleDownLimit", down=rules(0, 0, 50, 120, 300), down_events=ev([2, 4, 6])
    ),
    "scaleDown with percent policy and previous scale up and down events": RateCase(
        10,
        1,
        1,
        1000,
        6,
        "ScaleDownLimit",
        down=rules(0, 0, 50, 180, 0),
        up_events=ev([2]),
        down_events=ev([4]),
    ),
    "scaleDown with previous events preventing further scale down": RateCase(
        100, 0, 1, 1000, 100, "ScaleDownLimit", down=rules(0, 0, 10, 120, 300), down_events=ev([10, 10, 10])
    ),
    "scaleDown with with previous events still allowing more scale down": RateCase(
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(0, 0, 1000, 120, 300),
        down_events=ev([10, 10, 10]),
    ),
    "check 'outdated' flag for events for one behavior for up": RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 60, 0, 0, 0),
        up_events=ev([8, 12, 9, 11]),
    ),
    (
        "check that events were not marked 'outdated' for two"
        " different policies in the behavior for up"
    ): RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 120, 100, 60, 0),
        up_events=ev([8, 12, 9, 11]),
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for up": RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 30, 100, 60, 0),
        up_events=ev([8, 12, 9, 11]),
    ),
    "check 'outdated' flag for events for one behavior for down": RateCase(
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(1000, 60, 0, 0, 300),
        down_events=ev([8, 12, 9, 11]),
    ),
    (
        "check that events were not marked 'outdated' for two"
        " different policies in the behavior for down"
    ): RateCase(
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(1000, 120, 100, 60, 300),
        down_events=ev([8, 12, 9, 11]),
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for down": RateCase(
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(1000, 30, 100, 60, 300),
        down_events=ev([8, 12, 9, 11]),
    ),
}


@pytest.mark.parametrize("case", SCALING_WITH_RULES.values(), ids=SCALING_WITH_RULES.keys())
def test_rate_limits_match_kubernetes_scaling_with_rules(case: RateCase) -> None:
    """TestScalingWithRules (convertDesiredReplicasWithBehaviorRate); unset rules get HPA defaults."""
    behavior = Behavior(
        scale_up=case.up or ScalingRules.for_scale_up(), scale_down=case.down or ScalingRules.for_scale_down()
    )
    got = convert_with_behavior_rate(
        case.current,
        case.desired,
        min_replicas=case.min_replicas,
        max_replicas=case.max_replicas,
        behavior=behavior,
        scale_up_events=case.up_events,
        scale_down_events=case.down_events,
        now=NOW,
    )
    assert got == (case.expected, case.reason)


def _windows(up: int, down: int) -> Behavior:
    return Behavior(
        scale_up=ScalingRules.for_scale_up(stabilization_window_seconds=up),
        scale_down=ScalingRules.for_scale_down(stabilization_window_seconds=down),
    )


M = 60
STABILIZATION = {
    # name: (recommendations, current, desired, up window, down window, expected)
    "empty recommendations for scaling down": ([], 100, 5, 0, 0, 5),
    "simple scale down stabilization": ([(4, 2 * M), (5, M)], 100, 3, 0, 3 * M, 5),
    "simple scale up stabilization": ([(4, 2 * M), (5, M)], 1, 7, 5 * M, 0, 4),
    "no scale down stabilization": ([(1, 2 * M), (2, M)], 100, 3, 5 * M, 0, 3),
    "no scale up stabilization": ([(4, 2 * M), (5, M)], 1, 3, 0, 5 * M, 3),
    "no scale down stabilization, reuse recommendation element": (
        [(10, 10 * M), (9, 9 * M)],
        100,
        3,
        0,
        0,
        3,
    ),
    "no scale up stabilization, reuse recommendation element": (
        [(10, 10 * M), (9, 9 * M)],
        1,
        100,
        0,
        0,
        100,
    ),
    "scale down stabilization, reuse one of obsolete recommendation element": (
        [(10, 10 * M), (4, M), (5, 2 * M), (9, 9 * M)],
        100,
        3,
        0,
        3 * M,
        5,
    ),
    "scale up stabilization, reuse one of obsolete recommendation element": (
        [(10, 100 * M), (6, M), (5, 2 * M), (9, 3 * M)],
        1,
        100,
        300,
        0,
        5,
    ),
    "scale up and down stabilization, do not scale up when prenormalized rec goes down": (
        [(2, 100 * M), (3, 3 * M)],
        2,
        1,
        300,
        300,
        2,
    ),
    "scale up and down stabilization, do not scale down when prenormalized rec goes up": (
        [(2, 100 * M), (1, 3 * M)],
        2,
        3,
        300,
        300,
        2,
    ),
}


@pytest.mark.parametrize("case", STABILIZATION.values(), ids=STABILIZATION.keys())
def test_stabilization_matches_kubernetes_normalize_with_behavior(
    case: tuple[list[tuple[int, int]], int, int, int, int, int],
) -> None:
    """TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors)."""
    recs, current, desired, up, down, expected = case
    history = [(NOW - age, rec) for rec, age in recs]
    got, _ = stabilize_recommendation(current, desired, history, _windows(up, down), now=NOW)
    assert got == expected


LEGACY_STABILIZATION = {
    "empty log": ([], 5, 5),
    "stabilize": ([(4, 2 * M), (5, M)], 3, 5),
    "no stabilize": ([(1, 2 * M), (2, M)], 3, 3),
    "no stabilize - old recommendations": ([(10, 10 * M), (9, 9 * M)], 3, 3),
    "stabilize - old recommendations": ([(10, 10 * M), (4, M), (5, 2 * M), (9, 9 * M)], 3, 5),
}


@pytest.mark.parametrize("case", LEGACY_STABILIZATION.values(), ids=LEGACY_STABILIZATION.keys())
def test_legacy_stabilization_matches_kubernetes_normalize_desired_replicas(
    case: tuple[list[tuple[int, int]], int, int],
) -> None:
    """TestNormalizeDesiredReplicas (stabilizeRecommendation, 5 minute window)."""
    recs, desired, expected = case
    history = [(NOW - age, rec) for rec, age in recs]
    got = apply_legacy(5, desired, min_replicas=1, max_replicas=100, recommendations=history, now=NOW)
    assert got.stabilized_replicas == expected


CONVERT_WITH_RULES = {
    "prenormalized desired replicas within range": (5, 7, 3, 8, 7, "DesiredWithinRange"),
    "prenormalized desired replicas < minReplicas": (3, 1, 2, 8, 2, "TooFewReplicas"),
    "prenormalized desired zeroed replicas within range": (1, 0, 0, 10, 0, "DesiredWithinRange"),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": (20, 1000, 1, 10, 10, "TooManyReplicas"),
    # Go expects calculateScaleUpLimit(3); its test binary raises the factor to 8,
    # production uses 2, so the production value max(2 x 3, 4) = 6 is asserted.
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas": (3, 1000, 1, 2000, 6, "ScaleUpLimit"),
}


@pytest.mark.parametrize("case", CONVERT_WITH_RULES.values(), ids=CONVERT_WITH_RULES.keys())
def test_legacy_clamp_matches_kubernetes_convert_desired_replicas_with_rules(
    case: tuple[int, int, int, int, int, str],
) -> None:
    """TestConvertDesiredReplicasWithRules."""
    current, desired, lo, hi, expected, reason = case
    assert convert_with_rules(current, desired, min_replicas=lo, max_replicas=hi) == (expected, reason)


def test_legacy_scale_up_limit_is_double_or_four() -> None:
    assert [legacy_scale_up_limit(n) for n in (0, 1, 2, 3, 10)] == [4, 4, 4, 6, 20]


def _min_policy_rules() -> ScalingRules:
    return ScalingRules(
        (ScalingPolicy(PolicyType.PODS, 2, 60), ScalingPolicy(PolicyType.PERCENT, 50, 60)),
        SelectPolicy.MIN,
        300,
    )


def test_min_select_policy_scale_up_limit_matches_kubernetes() -> None:
    """TestCalculateScaleUpLimitWithScalingRules."""
    assert calculate_scale_up_limit(1, [], [], _min_policy_rules(), now=NOW) == 2


def test_min_select_policy_scale_down_limit_matches_kubernetes() -> None:
    """TestCalculateScaleDownLimitWithBehaviors."""
    assert calculate_scale_down_limit(5, [], [], _min_policy_rules(), now=NOW) == 3


def test_disabled_select_policy_freezes_that_direction() -> None:
    frozen = ScalingRules((ScalingPolicy(PolicyType.PODS, 4, 15),), SelectPolicy.DISABLED)
    behavior = Behavior(scale_up=frozen, scale_down=frozen)
    kw = {"min_replicas": 1, "max_replicas": 100, "behavior": behavior, "recommendations": []}
    up = apply_behavior(10, 50, scale_up_events=[], scale_down_events=[], now=NOW, **kw)  # type: ignore[arg-type]
    down = apply_behavior(10, 2, scale_up_events=[], scale_down_events=[], now=NOW, **kw)  # type: ignore[arg-type]
    assert (up.replicas, up.limit_reason, down.replicas, down.limit_reason) == (
        10,
        "ScaleUpLimit",
        10,
        "ScaleDownLimit",
    )


def test_events_exactly_one_period_old_no_longer_count() -> None:
    up_rules = ScalingRules((ScalingPolicy(PolicyType.PODS, 4, 60),))
    assert calculate_scale_up_limit(10, [(NOW - 60, 4)], [], up_rules, now=NOW) == 14
    assert calculate_scale_up_limit(10, [(NOW - 59.9, 4)], [], up_rules, now=NOW) == 10


# --- apply_behavior end to end: the conditions the HPA reports ----------------------


def test_default_behavior_waits_five_minutes_before_scaling_down() -> None:
    history = [(NOW - 200, 10), (NOW - 100, 8)]
    got = apply_behavior(
        10,
        4,
        min_replicas=1,
        max_replicas=20,
        behavior=Behavior.default(),
        recommendations=history,
        scale_up_events=[],
        scale_down_events=[],
        now=NOW,
    )
    assert (got.stabilized_replicas, got.replicas, got.able_to_scale_reason) == (
        10,
        10,
        "ScaleDownStabilized",
    )
    assert (got.rescale, got.record, got.scale_event) == (False, (NOW, 4), None)


def test_default_behavior_scale_up_is_rate_limited_and_says_so() -> None:
    got = apply_behavior(
        3,
        40,
        min_replicas=1,
        max_replicas=100,
        behavior=Behavior.default(),
        recommendations=[],
        scale_up_events=[],
        scale_down_events=[],
        now=NOW,
    )
    assert (got.replicas, got.able_to_scale_reason, got.scaling_limited, got.limit_reason) == (
        7,
        "ReadyForNewScale",
        True,
        "ScaleUpLimit",
    )
    assert got.limit_message == "the desired replica count is increasing faster than the maximum scale rate"
    assert got.scale_event == ("up", (NOW, 4))


def test_up_window_takes_the_lowest_recent_recommendation() -> None:
    behavior = _windows(up=120, down=300)
    got = apply_behavior(
        3,
        9,
        min_replicas=1,
        max_replicas=100,
        behavior=behavior,
        recommendations=[(NOW - 60, 5), (NOW - 30, 12)],
        scale_up_events=[],
        scale_down_events=[],
        now=NOW,
    )
    assert (got.stabilized_replicas, got.replicas, got.able_to_scale_reason) == (5, 5, "ScaleUpStabilized")


def test_bounds_prechecks_match_kubernetes_reconcile() -> None:
    """TestScaleDownRCImmediately / TestScaleUpRCImmediately, plus reconcileAutoscaler's zero branch."""
    disabled = bounds_precheck(0, min_replicas=3, max_replicas=5)
    assert disabled is not None and (disabled.replicas, disabled.rescale, disabled.reason) == (
        0,
        False,
        "ScalingDisabled",
    )
    above = bounds_precheck(6, min_replicas=2, max_replicas=5)
    assert above is not None and (above.replicas, above.rescale) == (5, True)
    below = bounds_precheck(1, min_replicas=2, max_replicas=6)
    assert below is not None and (below.replicas, below.rescale) == (2, True)
    assert bounds_precheck(0, min_replicas=0, max_replicas=5) is None
    assert bounds_precheck(3, min_replicas=2, max_replicas=5) is None


# --- API defaults and validation ---------------------------------------------------


def test_defaults_equal_the_hpa_api_defaults() -> None:
    b = Behavior.default()
    assert b.scale_up == ScalingRules(
        (ScalingPolicy(PolicyType.PODS, 4, 15), ScalingPolicy(PolicyType.PERCENT, 100, 15)),
        SelectPolicy.MAX,
        0,
    )
    assert b.scale_down == ScalingRules((ScalingPolicy(PolicyType.PERCENT, 100, 15),), SelectPolicy.MAX, 300)


def test_partial_rules_are_filled_like_generate_hpa_scale_rules() -> None:
    down = ScalingRules.for_scale_down(select_policy=SelectPolicy.MIN)
    assert (down.stabilization_window_seconds, down.policies[0].type) == (300, PolicyType.PERCENT)


@pytest.mark.parametrize("period", [0, -1, 1801])
def test_period_seconds_outside_0_1800_is_rejected(period: int) -> None:
    with pytest.raises(ValueError, match="periodSeconds"):
        ScalingPolicy(PolicyType.PODS, 1, period)


def test_period_seconds_bounds_are_inclusive_of_1800() -> None:
    assert ScalingPolicy(PolicyType.PERCENT, 1, 1800).period_seconds == 1800


@pytest.mark.parametrize("window", [-1, 3601])
def test_stabilization_window_outside_0_3600_is_rejected(window: int) -> None:
    with pytest.raises(ValueError, match="stabilizationWindowSeconds"):
        ScalingRules.for_scale_up(stabilization_window_seconds=window)


def test_rules_without_policies_and_non_positive_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one Policy"):
        ScalingRules(())
    with pytest.raises(ValueError):
        ScalingPolicy(PolicyType.PODS, 0, 15)


def test_per_direction_tolerance_falls_back_to_the_global_value() -> None:
    b = Behavior(scale_up=ScalingRules.for_scale_up(tolerance=0.02), scale_down=ScalingRules.for_scale_down())
    assert b.tolerances() == Tolerances(scale_down=0.1, scale_up=0.02)
    assert b.tolerances(default=0.05) == Tolerances(scale_down=0.05, scale_up=0.02)


def test_recommendation_exactly_at_the_window_edge_is_outside_with_behavior() -> None:
    # stabilizeRecommendationWithBehaviors keeps timestamps strictly after the cutoff.
    got, _ = stabilize_recommendation(3, 9, [(NOW - 60, 5)], _windows(up=60, down=300), now=NOW)
    assert got == 9
    got, _ = stabilize_recommendation(3, 9, [(NOW - 59, 5)], _windows(up=60, down=300), now=NOW)
    assert got == 5


def test_recommendation_exactly_at_the_window_edge_is_inside_without_behavior() -> None:
    # The legacy stabilizeRecommendation only drops samples strictly before the cutoff.
    at_edge = apply_legacy(5, 3, min_replicas=1, max_replicas=10, recommendations=[(NOW - 300, 5)], now=NOW)
    past_edge = apply_legacy(5, 3, min_replicas=1, max_replicas=10, recommendations=[(NOW - 301, 5)], now=NOW)
    assert (at_edge.replicas, past_edge.replicas) == (5, 3)


def test_percent_scale_down_limit_truncates_toward_zero_like_go() -> None:
    over = ScalingRules((ScalingPolicy(PolicyType.PERCENT, 150, 60),))
    assert calculate_scale_down_limit(3, [], [], over, now=NOW) == -1
