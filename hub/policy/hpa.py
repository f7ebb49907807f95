"""HPA-exact replica math for one metric, and for a set of metrics.

This module owns the part of the Kubernetes HorizontalPodAutoscaler that turns
metric readings into a replica proposal: `replica_calculator.go`
(`GetResourceReplicas`, `calcPlainMetricReplicas`, `GetObjectMetricReplicas`,
`GetObjectPerPodMetricReplicas`, `GetExternalMetricReplicas`,
`GetExternalPerPodMetricReplicas`, `getUsageRatioReplicaCount`, `groupPods`)
and the multi-metric merge of `horizontal.go: computeReplicasForMetrics`.

Users migrating from the HPA must get the same answers, so the arithmetic is
the HPA's, quirks included: readings are quantised to integer milli-units the
way `resource.Quantity.MilliValue()` does (rounding up), averages and
utilisation percentages are truncated integers, and the usage ratio is formed
from those truncated numbers. Rate limits and stabilisation live in
`behavior.py`. Everything here is pure: no clocks, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

DEFAULT_TOLERANCE = 0.1
"""`--horizontal-pod-autoscaler-tolerance` default."""

_MAX_INT32 = 2**31 - 1


class MetricSource(StrEnum):
    """The HPA's `MetricSourceType` values that we model."""

    RESOURCE = "Resource"
    PODS = "Pods"
    OBJECT = "Object"
    EXTERNAL = "External"


class TargetType(StrEnum):
    """The HPA's `MetricTargetType` values."""

    UTILIZATION = "Utilization"
    AVERAGE_VALUE = "AverageValue"
    VALUE = "Value"


_ALLOWED_TARGETS: dict[MetricSource, frozenset[TargetType]] = {
    MetricSource.RESOURCE: frozenset({TargetType.UTILIZATION, TargetType.AVERAGE_VALUE}),
    MetricSource.PODS: frozenset({TargetType.AVERAGE_VALUE}),
    MetricSource.OBJECT: frozenset({TargetType.VALUE, TargetType.AVERAGE_VALUE}),
    MetricSource.EXTERNAL: frozenset({TargetType.VALUE, TargetType.AVERAGE_VALUE}),
}

# The condition reason the HPA sets (ScalingActive=False) when a metric of this
# source cannot be computed; `replicas_for_metrics` reports the first one.
_FAILED_REASON: dict[MetricSource, str] = {
    MetricSource.RESOURCE: "FailedGetResourceMetric",
    MetricSource.PODS: "FailedGetPodsMetric",
    MetricSource.OBJECT: "FailedGetObjectMetric",
    MetricSource.EXTERNAL: "FailedGetExternalMetric",
}


@dataclass(frozen=True)
class MetricTarget:
    """One entry of `spec.metrics`.

    `value` is a percentage of the pods' requests for `Utilization` (an
    integer, as in the HPA API) and a quantity in the metric's own unit
    otherwise. For `Resource` metrics `name` is the resource ("cpu",
    "memory"): the HPA applies its pod-readiness rule to "cpu" only.
    """

    source: MetricSource
    type: TargetType
    value: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.type not in _ALLOWED_TARGETS[self.source]:
            raise ValueError(f"{self.source} metrics do not support a {self.type} target")
        if not math.isfinite(self.value) or self.value <= 0:
            raise ValueError(f"target value must be a positive number, got {self.value!r}")
        if self.type is TargetType.UTILIZATION and not float(self.value).is_integer():
            raise ValueError("a Utilization target is an integer percentage")
        if self.source is MetricSource.RESOURCE and not self.name:
            raise ValueError("a Resource metric needs the resource name (e.g. 'cpu')")


@dataclass(frozen=True)
class PodSample:
    """One pod matched by the target's selector, with its reading.

    `value` is None when the metrics API returned nothing for the pod
    ("missing"). `ready=False` is the caller's verdict that the HPA would
    count the pod as not yet ready (unready, or CPU sample predating readiness
    within the initialisation period); the HPA only honours it for the "cpu"
    resource. `pending` is phase Pending, which counts as unready for every
    metric. `request` is the pod's request for the resource (Utilization only).
    """

    value: float | None
    ready: bool = True
    failed: bool = False
    deleted: bool = False
    pending: bool = False
    request: float | None = None


@dataclass(frozen=True)
class Tolerances:
    """Per-direction tolerance on the usage ratio (KEP-4951)."""

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.scale_down < 0 or self.scale_up < 0:
            raise ValueError("tolerances must be >= 0")

    def is_within(self, usage_ratio: float) -> bool:
        """True when the ratio is too close to 1 to act on (`Tolerances.isWithin`)."""
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True)
class MetricProposal:
    """What one metric proposes, plus what the HPA would put in its status.

    `usage_ratio` is the first, un-adjusted ratio (the one status reflects).
    `value_milli` is the status value in milli-units: the per-pod average for
    Resource/Pods, the total for Object/External `Value`, the per-pod share
    for `AverageValue`. `computed` is False when the metric could not be
    computed; `reason` then carries the HPA's condition reason.
    """

    target: MetricTarget
    replicas: int
    usage_ratio: float | None = None
    utilization: int | None = None
    value_milli: int | None = None
    computed: bool = True
    reason: str = "ValidMetricFound"
    error: str | None = None

    @property
    def value(self) -> float | None:
        return None if self.value_milli is None else self.value_milli / 1000


@dataclass(frozen=True)
class MetricsDecision:
    """The merge of several proposals (`computeReplicasForMetrics`).

    `replicas` is None when the HPA would not scale this cycle: every metric
    failed, or some failed and the valid ones point down.
    """

    replicas: int | None
    metric: MetricProposal | None
    invalid: int
    reason: str
    error: str | None = None


def _milli(value: float) -> int:
    # Quantity.MilliValue() rounds up; going through the shortest decimal repr
    # keeps 0.3 at 300 milli instead of 300.00000000000006 -> 301.
    if not math.isfinite(value):
        raise ValueError(f"metric readings must be finite, got {value!r}")
    return int((Decimal(repr(value)) * 1000).to_integral_value(rounding=ROUND_CEILING))


def _div(a: int, b: int) -> int:
    """Go integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _as_tolerances(tolerance: float | Tolerances) -> Tolerances:
    return tolerance if isinstance(tolerance, Tolerances) else Tolerances(tolerance, tolerance)


def _ceil_capped(x: float) -> int:
    # The HPA caps proposals that would overflow int32.
    return _MAX_INT32 if x > _MAX_INT32 else math.ceil(x)


def replicas_for_metric(
    current_replicas: int,
    observed: Sequence[PodSample] | Sequence[float] | float,
    target: MetricTarget,
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
    ready_pods: int | None = None,
    status_replicas: int | None = None,
) -> MetricProposal:
    """Propose a replica count for one metric, as the HPA would.

    `observed` is a sequence of `PodSample` for Resource and Pods metrics, one
    value for Object metrics, and one value or the list of series values
    (summed, as the HPA does) for External metrics. `ready_pods` is the
    number of Running+Ready pods, needed by Object/External `Value` targets
    when `current_replicas` > 0. `status_replicas` (the scale's
    `status.replicas`, default `current_replicas`) divides `AverageValue`
    Object/External readings. Failures are returned, not raised, with
    `computed=False`, because the multi-metric merge must see them.
    """
    if current_replicas < 0:
        raise ValueError("current_replicas must be >= 0")
    tol = _as_tolerances(tolerance)
    if target.source in (MetricSource.RESOURCE, MetricSource.PODS):
        if isinstance(observed, (int, float)) or any(not isinstance(s, PodSample) for s in observed):
            raise TypeError(f"{target.source} metrics take a sequence of PodSample")
        samples: Sequence[PodSample] = observed  # type: ignore[assignment]
        return _per_pod(current_replicas, samples, target, tol)
    if isinstance(observed, (int, float)):
        values: list[float] = [float(observed)]
    else:
        if target.source is MetricSource.OBJECT or any(isinstance(v, PodSample) for v in observed):
            raise TypeError("Object metrics take one value; External metrics take values, not pods")
        values = [float(v) for v in observed]  # type: ignore[arg-type]
    if not values:
        return _failed(target, "no metrics returned from external metrics API")
    usage = sum(_milli(v) for v in values)
    if target.type is TargetType.AVERAGE_VALUE:
        replicas_now = current_replicas if status_replicas is None else status_replicas
        return _per_pod_share(replicas_now, usage, target, tol)
    ratio = usage / _milli(target.value)
    return MetricProposal(
        target=target,
        replicas=_usage_ratio_replicas(current_replicas, ratio, tol, ready_pods),
        usage_ratio=ratio,
        value_milli=usage,
    )


def _usage_ratio_replicas(current: int, ratio: float, tol: Tolerances, ready_pods: int | None) -> int:
    """`getUsageRatioReplicaCount`: from zero, tolerance and readiness are ignored."""
    if current == 0:
        return math.ceil(ratio)
    if tol.is_within(ratio):
        return current
    if ready_pods is None:
        raise ValueError("ready_pods (Running and Ready pods) is needed for a Value target")
    return _ceil_capped(ratio * ready_pods)


def _per_pod_share(replicas_now: int, usage: int, target: MetricTarget, tol: Tolerances) -> MetricProposal:
    """`GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas`."""
    per_pod_target = _milli(target.value)
    # Go divides by float64(0) here and gets +Inf, which is never within tolerance.
    ratio = usage / (per_pod_target * replicas_now) if replicas_now else math.inf
    replicas = replicas_now
    if not tol.is_within(ratio):
        replicas = _ceil_capped(usage / per_pod_target)
    # The status share is undefined in Go at zero replicas; report the total.
    share = math.ceil(usage / replicas_now) if replicas_now else usage
    return MetricProposal(target=target, replicas=replicas, usage_ratio=ratio, value_milli=share)


def _failed(target: MetricTarget, error: str) -> MetricProposal:
    return MetricProposal(
        target=target, replicas=0, computed=False, reason=_FAILED_REASON[target.source], error=error
    )


def _per_pod(
    current: int, samples: Sequence[PodSample], target: MetricTarget, tol: Tolerances
) -> MetricProposal:
    """`GetResourceReplicas` (Utilization) and `calcPlainMetricReplicas` (AverageValue)."""
    if not samples:
        return _failed(target, "no pods returned by selector while calculating replica count")
    honour_readiness = target.source is MetricSource.RESOURCE and target.name == "cpu"
    # groupPods: the order of these checks decides which bucket a pod lands in.
    metrics: dict[int, int] = {}
    unready: list[int] = []
    missing: list[int] = []
    for i, pod in enumerate(samples):
        if pod.deleted or pod.failed:
            continue
        if pod.pending:
            unready.append(i)
        elif pod.value is None:
            missing.append(i)
        elif honour_readiness and not pod.ready:
            unready.append(i)
        else:
            metrics[i] = _milli(pod.value)
    ready_count = len(metrics)
    if not metrics:
        return _failed(target, "did not receive metrics for targeted pods (pods might be unready)")

    utilization_target = int(target.value)
    if target.type is TargetType.UTILIZATION:
        requests: dict[int, int] = {}
        for i, pod in enumerate(samples):
            if pod.request is None:
                return _failed(target, f"missing request for {target.name} in pod #{i}")
            requests[i] = _milli(pod.request)

        def ratio_of(m: dict[int, int]) -> tuple[float, int, int]:
            total, requested = sum(m.values()), sum(requests[i] for i in m)
            if requested == 0:
                raise ZeroDivisionError
            utilization = _div(total * 100, requested)
            return utilization / utilization_target, utilization, _div(total, len(m))

        try:
            usage_ratio, utilization, value_milli = ratio_of(metrics)
        except ZeroDivisionError:
            return _failed(target, "no metrics returned matched known pods")
        # Missing pods on a scale-down count as their full request, or as the
        # target itself when the target is above 100 %.
        fallback: dict[int, int] = {
            i: _div(requests[i] * max(100, utilization_target), 100) for i in missing
        }
        status_utilization: int | None = utilization
    else:
        target_milli = _milli(target.value)

        def ratio_of(m: dict[int, int]) -> tuple[float, int, int]:
            usage = _div(sum(m.values()), len(m))
            return usage / target_milli, 0, usage

        usage_ratio, _, value_milli = ratio_of(metrics)
        fallback = dict.fromkeys(missing, target_milli)
        status_utilization = None

    def proposal(replicas: int) -> MetricProposal:
        return MetricProposal(
            target=target,
            replicas=replicas,
            usage_ratio=usage_ratio,
            utilization=status_utilization,
            value_milli=value_milli,
        )

    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.is_within(usage_ratio):
            return proposal(current)
        return proposal(math.ceil(usage_ratio * ready_count))

    # Conservative recompute: assume the worst for pods we cannot see.
    adjusted = dict(metrics)
    if usage_ratio < 1.0:
        adjusted.update(fallback)
    elif usage_ratio > 1.0:
        adjusted.update(dict.fromkeys(missing, 0))
    if scale_up_with_unready:
        adjusted.update(dict.fromkeys(unready, 0))
    try:
        new_ratio, _, _ = ratio_of(adjusted)
    except ZeroDivisionError:
        return _failed(target, "no metrics returned matched known pods")
    flipped = (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio)
    if tol.is_within(new_ratio) or flipped:
        return proposal(current)
    new_replicas = math.ceil(new_ratio * len(adjusted))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        # Counting the extra pods changed the direction: hold still.
        return proposal(current)
    return proposal(new_replicas)


def replicas_for_metrics(current_replicas: int, proposals: Sequence[MetricProposal]) -> MetricsDecision:
    """Merge per-metric proposals the way `computeReplicasForMetrics` does.

    The largest valid proposal wins. If every metric failed, or any failed
    while the valid ones would scale below `current_replicas`, the decision
    is "do not scale" (`replicas=None`): a broken metric must not shrink a
    workload. A scale-up proceeds, with the error still reported.
    """
    if not proposals:
        # The API defaults an empty metric list to CPU at 80 %; an empty list here is a caller bug.
        raise ValueError("at least one metric proposal is needed")
    replicas = 0
    winner: MetricProposal | None = None
    invalid: list[MetricProposal] = []
    for p in proposals:
        if not p.computed:
            invalid.append(p)
            continue
        # Same test as the HPA, so a later 0 also replaces an earlier 0.
        if replicas == 0 or p.replicas > replicas:
            replicas, winner = p.replicas, p
    error = None
    if invalid:
        error = (
            f"invalid metrics ({len(invalid)} invalid out of {len(proposals)}), "
            f"first error is: {invalid[0].error}"
        )
    if len(invalid) == len(proposals) or (invalid and replicas < current_replicas):
        return MetricsDecision(
            replicas=None, metric=None, invalid=len(invalid), reason=invalid[0].reason, error=error
        )
    return MetricsDecision(
        replicas=replicas, metric=winner, invalid=len(invalid), reason="ValidMetricFound", error=error
    )
