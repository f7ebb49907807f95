"""Pure scaling policy math for the hub: no I/O, no clocks.

`hpa` reproduces the Kubernetes HPA's per-metric replica math and the merge
of several metrics; `behavior` reproduces its stabilisation windows, rate
limits and bounds. See docs/hpa-math.md.
"""

from hub.policy.behavior import (
    Behavior,
    BehaviorResult,
    BoundsOverride,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    apply_behavior,
    apply_legacy,
    bounds_precheck,
)
from hub.policy.hpa import (
    DEFAULT_TOLERANCE,
    MetricProposal,
    MetricsDecision,
    MetricSource,
    MetricTarget,
    PodSample,
    TargetType,
    Tolerances,
    replicas_for_metric,
    replicas_for_metrics,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "Behavior",
    "BehaviorResult",
    "BoundsOverride",
    "MetricProposal",
    "MetricSource",
    "MetricTarget",
    "MetricsDecision",
    "PodSample",
    "PolicyType",
    "ScalingPolicy",
    "ScalingRules",
    "SelectPolicy",
    "TargetType",
    "Tolerances",
    "apply_behavior",
    "apply_legacy",
    "bounds_precheck",
    "replicas_for_metric",
    "replicas_for_metrics",
]
