"""Ports of kubernetes/kubernetes pkg/controller/podautoscaler/replica_calculator_test.go.

Each case names the Go test it ports. The Go harness builds pods with two
containers; a `levels` entry is the per-container usage in milli-units, so a
pod's reading is 2 x level (or the single chosen container for the
`...Container...` tests), and each container requests the listed quantity.
A pod whose index is beyond `levels` has no metric ("missing"). For CPU, the
harness's unready or "hot" (started within the initialisation period, sample
predating readiness) pods are what groupPods calls unready: `ready=False`.
Expected replicas, utilisation and raw values are the Go expectations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from hub.policy.behavior import apply_legacy
from hub.policy.hpa import (
    MetricProposal,
    MetricSource,
    MetricTarget,
    PodSample,
    TargetType,
    Tolerances,
    replicas_for_metric,
    replicas_for_metrics,
)

R, F, P = "Running", "Failed", "Pending"


@dataclass(frozen=True)
class ResourceCase:
    current: int
    expected_replicas: int
    levels: list[int]
    requests: list[float]
    target: int
    expected_utilization: int
    expected_value: int
    readiness: list[bool] = field(default_factory=list)
    hot: list[bool] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    deleted: list[bool] = field(default_factory=list)
    containers: int = 2


def _pods(case: ResourceCase) -> list[PodSample]:
    pods = []
    for i in range(max(case.current, len(case.phases))):
        ready = (case.readiness[i] if i < len(case.readiness) else True) and not (
            i < len(case.hot) and case.hot[i]
        )
        phase = case.phases[i] if case.phases else R
        level = case.levels[i] if i < len(case.levels) else None
        pods.append(
            PodSample(
                value=None if level is None else case.containers * level / 1000,
                ready=ready,
                failed=phase == F,
                pending=phase == P,
                deleted=bool(case.deleted and case.deleted[i]),
                request=case.containers * case.requests[i] if i < len(case.requests) else None,
            )
        )
    return pods


RESOURCE_CASES = {
    "TestReplicaCalcScaleUp": ResourceCase(3, 5, [300, 500, 700], [1.0] * 3, 30, 50, 1000),
    "TestReplicaCalcContainerScaleUp": ResourceCase(
        3, 5, [300, 500, 700], [1.0] * 3, 30, 50, 500, containers=1
    ),
    "TestReplicaCalcScaleUpUnreadyLessScale": ResourceCase(
        3, 4, [300, 500, 700], [1.0] * 3, 30, 60, 1200, readiness=[False, True, True]
    ),
    "TestReplicaCalcScaleUpContainerHotCpuLessScale": ResourceCase(
        3, 4, [300, 500, 700], [1.0] * 3, 30, 60, 600, hot=[True, False, False], containers=1
    ),
    "TestReplicaCalcScaleUpHotCpuLessScale": ResourceCase(
        3, 4, [300, 500, 700], [1.0] * 3, 30, 60, 1200, hot=[True, False, False]
    ),
    "TestReplicaCalcScaleUpUnreadyNoScale": ResourceCase(
        3, 3, [400, 500, 700], [1.0] * 3, 30, 40, 800, readiness=[True, False, False]
    ),
    "TestReplicaCalcScaleHotCpuNoScale": ResourceCase(
        3, 3, [400, 500, 700], [1.0] * 3, 30, 40, 800,
        readiness=[True, False, False], hot=[False, True, True],
    ),
    "TestReplicaCalcScaleUpIgnoresFailedPods": ResourceCase(
        2, 4, [500, 700], [1.0] * 4, 30, 60, 1200,
        readiness=[True, True, False, False], phases=[R, R, F, F],
    ),
    "TestReplicaCalcMissingContainerMetricScaleUpIgnoresFailedPods": ResourceCase(
        2, 4, [500, 700], [1.0] * 4, 30, 60, 600,
        readiness=[True, True, False, False], phases=[R, R, F, F], containers=1,
    ),
    "TestReplicaCalcScaleUpContainerIgnoresFailedPods": ResourceCase(
        2, 4, [500, 700], [1.0] * 4, 30, 60, 600,
        readiness=[True, True, False, False], phases=[R, R, F, F], containers=1,
    ),
    "TestReplicaCalcScaleUpIgnoresDeletionPods": ResourceCase(
        2, 4, [500, 700], [1.0] * 4, 30, 60, 1200,
        readiness=[True, True, False, False], phases=[R] * 4, deleted=[False, False, True, True],
    ),
    "TestReplicaCalcScaleDown": ResourceCase(5, 3, [100, 300, 500, 250, 250], [1.0] * 5, 50, 28, 560),
    "TestReplicaCalcContainerScaleDown": ResourceCase(
        5, 3, [100, 300, 500, 250, 250], [1.0] * 5, 50, 28, 280, containers=1
    ),
    "TestReplicaCalcScaleDownExcludeUnreadyPods": ResourceCase(
        5, 2, [100, 300, 500, 250, 250], [1.0] * 5, 50, 30, 600, readiness=[True] * 3 + [False] * 2
    ),
    "TestReplicaCalcScaleDownContainerExcludeUnreadyPods": ResourceCase(
        5, 2, [100, 300, 500, 250, 250], [1.0] * 5, 50, 30, 300,
        readiness=[True] * 3 + [False] * 2, containers=1,
    ),
    "TestReplicaCalcScaleDownExcludeUnscheduledPods": ResourceCase(
        5, 1, [100], [1.0] * 5, 50, 10, 200, readiness=[True] + [False] * 4, phases=[R] + [P] * 4
    ),
    "TestReplicaCalcScaleDownContainerExcludeUnscheduledPods": ResourceCase(
        5, 1, [100, 300, 500, 250, 250], [1.0] * 5, 50, 10, 100,
        readiness=[True] + [False] * 4, phases=[R] + [P] * 4, containers=1,
    ),
    "TestReplicaCalcScaleDownIgnoreHotCpuPods": ResourceCase(
        5, 2, [100, 300, 500, 250, 250], [1.0] * 5, 50, 30, 600, hot=[False] * 3 + [True] * 2
    ),
    "TestReplicaCalcScaleDownContainerIgnoreHotCpuPods": ResourceCase(
        5, 2, [100, 300, 500, 1000, 1000], [1.0] * 5, 50, 30, 300,
        hot=[False] * 3 + [True] * 2, containers=1,
    ),
    "TestReplicaCalcScaleDownIgnoresFailedPods": ResourceCase(
        5, 3, [100, 300, 500, 250, 250], [1.0] * 7, 50, 28, 560,
        readiness=[True] * 5 + [False] * 2, phases=[R] * 5 + [F] * 2,
    ),
    "TestReplicaCalcScaleDownContainerIgnoresFailedPods": ResourceCase(
        5, 3, [100, 300, 500, 250, 250], [1.0] * 7, 50, 28, 280,
        readiness=[True] * 5 + [False] * 2, phases=[R] * 5 + [F] * 2, containers=1,
    ),
    "TestReplicaCalcScaleDownIgnoresDeletionPods": ResourceCase(
        5, 3, [100, 300, 500, 250, 250], [1.0] * 7, 50, 28, 560,
        readiness=[True] * 5 + [False] * 2, phases=[R] * 7, deleted=[False] * 5 + [True] * 2,
    ),
    "TestReplicaCalcScaleDownIgnoresDeletionPods_StillRunning": ResourceCase(
        5, 3, [100, 300, 500, 250, 250], [1.0] * 7, 50, 28, 280,
        readiness=[True] * 5 + [False] * 2, phases=[R] * 7, deleted=[False] * 5 + [True] * 2, containers=1,
    ),
    "TestReplicaCalcTolerance": ResourceCase(3, 3, [1010, 1030, 1020], [0.9, 1.0, 1.1], 100, 102, 2040),
    # The Go case also returns metrics for two pods that no longer exist; the
    # HPA skips them in the ratio, and a per-pod input cannot carry them.
    "TestReplicaCalcSuperfluousMetrics": ResourceCase(
        4, 24, [4000, 9500, 3000, 7000], [1.0] * 4, 100, 587, 11750
    ),
    "TestReplicaCalcMissingMetrics": ResourceCase(4, 3, [400, 95], [1.0] * 4, 100, 24, 495),
    "TestReplicaCalcMissingMetricsNoChangeEq": ResourceCase(2, 2, [1000], [1.0] * 2, 100, 100, 2000),
    "TestReplicaCalcMissingMetricsNoChangeGt": ResourceCase(2, 2, [1900], [1.0] * 2, 100, 190, 3800),
    "TestReplicaCalcMissingMetricsNoChangeLt": ResourceCase(2, 2, [600], [1.0] * 2, 100, 60, 1200),
    "TestReplicaCalcMissingMetricsUnreadyChange": ResourceCase(
        3, 3, [100, 450], [1.0] * 3, 50, 45, 900, readiness=[False, True, True]
    ),
    "TestReplicaCalcMissingMetricsHotCpuNoChange": ResourceCase(
        3, 3, [100, 450], [1.0] * 3, 50, 45, 900, hot=[True, False, False]
    ),
    "TestReplicaCalcMissingMetricsUnreadyScaleUp": ResourceCase(
        3, 4, [100, 2000], [1.0] * 3, 50, 200, 4000, readiness=[False, True, True]
    ),
    "TestReplicaCalcMissingMetricsHotCpuScaleUp": ResourceCase(
        3, 4, [100, 2000], [1.0] * 3, 50, 200, 4000, readiness=[False, True, True], hot=[True, False, False]
    ),
    "TestReplicaCalcMissingMetricsUnreadyScaleDown": ResourceCase(
        4, 3, [100, 100, 100], [1.0] * 4, 50, 10, 200, readiness=[False, True, True, True]
    ),
    "TestReplicaCalcMissingMetricsScaleDownTargetOver100": ResourceCase(
        4, 2, [200, 100, 100], [1.0, 1.0, 2.0, 2.0], 300, 6, 200, readiness=[False, True, True, True]
    ),
    "TestReplicaCalcDuringRollingUpdateWithMaxSurge": ResourceCase(
        2, 2, [100, 100], [1.0] * 3, 50, 10, 200, phases=[R] * 3
    ),
}


@pytest.mark.parametrize("case", RESOURCE_CASES.values(), ids=RESOURCE_CASES.keys())
def test_cpu_utilization_matches_kubernetes_replica_calculator(case: ResourceCase) -> None:
    target = MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, case.target, name="cpu")
    got = replicas_for_metric(case.current, _pods(case), target)
    assert got.computed, got.error
    assert (got.replicas, got.utilization, got.value_milli) == (
        case.expected_replicas,
        case.expected_utilization,
        case.expected_value,
    )


def test_computed_tolerance_boundary_matches_kubernetes() -> None:
    """TestReplicaCalcComputedToleranceAlgImplementation: just outside, then just inside, tolerance."""
    start_pods, used, requested = 10, 1500, 3000
    per_pod = requested // start_pods
    offsets = [100, -100, 10, -10, 2, -2, 1, -1, 0, 0]
    pods = [PodSample(value=2 * used / 10 / 1000, request=2 * (per_pod + o) / 1000) for o in offsets]
    requested_to_used = float(requested // used)
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.01
    final_pods = math.ceil(used / (requested * target) * start_pods)
    cpu = MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, int(target * 100), "cpu")
    scaled = replicas_for_metric(start_pods, pods, cpu)
    assert (scaled.replicas, scaled.utilization) == (final_pods, used * 100 // requested)
    near = abs(1 / (requested_to_used * (1 - 0.1))) + 0.004
    held = replicas_for_metric(
        start_pods, pods, MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, int(near * 100), "cpu")
    )
    assert held.replicas == start_pods


@pytest.mark.parametrize(
    ("go_test", "pods", "error"),
    [
        # EmptyMetrics and DisjointResourcesMetrics: no pod has a usable reading.
        ("TestReplicaCalcEmptyMetrics", [PodSample(None, request=2.0)] * 4, "did not receive metrics"),
        ("TestReplicaCalcDisjointResourcesMetrics", [PodSample(None, request=2.0)], "did not receive"),
        ("TestReplicaCalcEmptyCPURequest", [PodSample(0.4)], "missing request for cpu"),
    ],
)
def test_resource_metric_without_usable_data_is_not_computed(
    go_test: str, pods: list[PodSample], error: str
) -> None:
    target = MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, 100, name="cpu")
    got = replicas_for_metric(len(pods), pods, target)
    assert not got.computed
    assert got.reason == "FailedGetResourceMetric"
    assert error in (got.error or "")


# --- Pods (custom per-pod) metrics: calcPlainMetricReplicas ----------------------------

PLAIN_CASES = {
    # (current, levels (milli), target (milli), expected replicas, expected usage (milli), unready pods)
    "TestReplicaCalcScaleUpCM": (3, [20000, 10000, 30000], 15000, 4, 20000, ()),
    # Readiness is a CPU-only rule: unready pods still count for Pods metrics.
    "TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale": (3, [50000, 10000, 30000], 15000, 6, 30000, (2,)),
    "TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown": (
        3, [50000, 15000, 30000], 15000, 7, 31666, (0, 2),
    ),
    "TestReplicaCalcScaleUpCMExternal": (1, [8600], 4400, 2, 8600, ()),
    "TestReplicaCalcScaleUpCMExternalNoLabels": (1, [8600], 4400, 2, 8600, ()),
    "TestReplicaCalcScaleDownCM": (5, [12000] * 5, 20000, 3, 12000, ()),
    "TestReplicaCalcToleranceCM": (3, [20000, 21000, 21000], 20000, 3, 20666, ()),
    "TestPlainMetricReplicaCalcMissingMetricsNoChangeEq": (5, [20000, 19000, 21000], 20000, 5, 20000, ()),
    "TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM": (3, [10000, 10000], 17000, 2, 10000, ()),
}


@pytest.mark.parametrize("case", PLAIN_CASES.values(), ids=PLAIN_CASES.keys())
def test_pods_metric_matches_kubernetes_replica_calculator(
    case: tuple[int, list[int], int, int, int, tuple[int, ...]],
) -> None:
    pods_count, levels, target_milli, expected, usage, unready = case
    # DuringRollingUpdateWithMaxSurgeCM lists 3 pods for 2 current replicas.
    current = 2 if pods_count == 3 and len(levels) == 2 else pods_count
    pods = [
        PodSample(value=levels[i] / 1000 if i < len(levels) else None, ready=i not in unready)
        for i in range(pods_count)
    ]
    target = MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, target_milli / 1000, name="qps")
    got = replicas_for_metric(current, pods, target)
    assert (got.replicas, got.value_milli) == (expected, usage)


# --- Object and External metrics ------------------------------------------------------

OBJECT_CASES = {
    # (source, target type, current, value (milli), target (milli), ready pods, expected, usage (milli))
    "TestReplicaCalcScaleUpCMObject": ("Object", "Value", 3, 20000, 15000, 3, 4, 20000),
    "TestReplicaCalcScaleUpCMPerPodObject": ("Object", "AverageValue", 3, 20000, 5000, 3, 4, 6667),
    "TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods": ("Object", "Value", 3, 50000, 10000, 1, 5, 50000),
    "TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods": ("External", "Value", 3, 8600, 4400, 1, 2, 8600),
    "TestReplicaCalcScaleUpPerPodCMExternal": ("External", "AverageValue", 3, 8600, 2150, 3, 4, 2867),
    "TestReplicaCalcScaleDownPerPodCMObject": ("Object", "AverageValue", 5, 6000, 2000, 5, 3, 1200),
    "TestReplicaCalcScaleDownCMObject": ("Object", "Value", 5, 12000, 20000, 5, 3, 12000),
    "TestReplicaCalcScaleDownCMExternal": ("External", "Value", 5, 8600, 14334, 5, 3, 8600),
    "TestReplicaCalcScaleDownPerPodCMExternal": ("External", "AverageValue", 5, 8600, 2867, 5, 3, 1720),
    "TestReplicaCalcToleranceCMObject": ("Object", "Value", 3, 20666, 20000, 3, 3, 20666),
    "TestReplicaCalcTolerancePerPodCMObject": ("Object", "AverageValue", 4, 20166, 5000, 4, 4, 5042),
    "TestReplicaCalcToleranceCMExternal": ("External", "Value", 3, 8600, 8888, 3, 3, 8600),
    "TestReplicaCalcTolerancePerPodCMExternal": ("External", "AverageValue", 3, 8600, 2900, 3, 3, 2867),
}


@pytest.mark.parametrize("case", OBJECT_CASES.values(), ids=OBJECT_CASES.keys())
def test_object_and_external_metrics_match_kubernetes_replica_calculator(
    case: tuple[str, str, int, int, int, int, int, int],
) -> None:
    source, kind, current, value, target_milli, ready, expected, usage = case
    target = MetricTarget(MetricSource(source), TargetType(kind), target_milli / 1000, name="qps")
    got = replicas_for_metric(current, value / 1000, target, ready_pods=ready)
    assert (got.replicas, got.value_milli) == (expected, usage)


def test_external_metric_sums_all_series() -> None:
    target = MetricTarget(MetricSource.EXTERNAL, TargetType.VALUE, 10, name="queue")
    got = replicas_for_metric(2, [12.0, 13.0], target, ready_pods=2)
    assert (got.value, got.usage_ratio, got.replicas) == (25.0, 2.5, 5)


def test_external_metric_with_no_series_is_not_computed() -> None:
    target = MetricTarget(MetricSource.EXTERNAL, TargetType.VALUE, 10, name="queue")
    got = replicas_for_metric(2, [], target, ready_pods=2)
    assert (got.computed, got.reason) == (False, "FailedGetExternalMetric")


@pytest.mark.parametrize(("value", "expected"), [(20.0, 2), (15.0, 1), (0.0, 0), (15.001, 2)])
def test_object_value_from_zero_replicas_is_ceil_of_ratio_ignoring_tolerance(
    value: float, expected: int
) -> None:
    target = MetricTarget(MetricSource.OBJECT, TargetType.VALUE, 15, name="qps")
    assert replicas_for_metric(0, value, target).replicas == expected


def test_value_target_needs_ready_pod_count_when_replicas_exist() -> None:
    target = MetricTarget(MetricSource.OBJECT, TargetType.VALUE, 15, name="qps")
    with pytest.raises(ValueError, match="ready_pods"):
        replicas_for_metric(3, 30.0, target)


# --- Tolerance (global and KEP-4951 per direction) -------------------------------------


def _qps_pods(per_pod: float, n: int = 10) -> list[PodSample]:
    return [PodSample(per_pod)] * n


QPS = MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, 100, name="qps")


def test_per_direction_tolerance_lets_a_small_rise_scale_up() -> None:
    assert replicas_for_metric(10, _qps_pods(105), QPS).replicas == 10
    tight_up = Tolerances(scale_down=0.1, scale_up=0.02)
    assert replicas_for_metric(10, _qps_pods(105), QPS, tolerance=tight_up).replicas == 11


def test_per_direction_tolerance_can_hold_a_large_drop() -> None:
    assert replicas_for_metric(10, _qps_pods(70), QPS).replicas == 7
    loose_down = Tolerances(scale_down=0.5, scale_up=0.1)
    assert replicas_for_metric(10, _qps_pods(70), QPS, tolerance=loose_down).replicas == 10


def test_tolerance_band_edges_are_inclusive() -> None:
    assert replicas_for_metric(10, _qps_pods(110), QPS).replicas == 10
    assert replicas_for_metric(10, _qps_pods(90), QPS).replicas == 10
    assert replicas_for_metric(10, _qps_pods(110.001), QPS).replicas == 12


def test_readings_are_quantised_to_milli_units_like_quantity() -> None:
    # 0.3 must be 300 milli, not 301: the average is then exactly the target.
    target = MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, 0.3, name="x")
    got = replicas_for_metric(4, [PodSample(0.3)] * 4, target, tolerance=0.0)
    assert (got.value_milli, got.usage_ratio, got.replicas) == (300, 1.0, 4)


def test_target_validation_rejects_combinations_the_hpa_api_rejects() -> None:
    with pytest.raises(ValueError):
        MetricTarget(MetricSource.PODS, TargetType.UTILIZATION, 50)
    with pytest.raises(ValueError):
        MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, 50.5, name="cpu")
    with pytest.raises(ValueError):
        MetricTarget(MetricSource.EXTERNAL, TargetType.VALUE, 0)


# --- Several metrics: computeReplicasForMetrics --------------------------------------

CPU30 = MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, 30, name="cpu")
CPU50 = MetricTarget(MetricSource.RESOURCE, TargetType.UTILIZATION, 50, name="cpu")
QPS_EXT = MetricTarget(MetricSource.EXTERNAL, TargetType.VALUE, 0.1, name="qps")


def _cpu(levels: list[int]) -> list[PodSample]:
    return [PodSample(level / 1000, request=1.0) for level in levels]


def _broken(target: MetricTarget, reason: str = "FailedGetExternalMetric") -> MetricProposal:
    return MetricProposal(
        target=target, replicas=0, computed=False, reason=reason, error="something went wrong"
    )


@pytest.mark.parametrize(
    ("go_test", "broken_reason"),
    [("TestScaleUpOneMetricInvalid", "InvalidMetricSourceType"), ("TestScaleUpOneMetricEmpty", None)],
)
def test_scale_up_proceeds_when_another_metric_fails(go_test: str, broken_reason: str | None) -> None:
    cpu = replicas_for_metric(3, _cpu([300, 400, 500]), CPU30)
    broken = _broken(QPS_EXT, broken_reason or "FailedGetExternalMetric")
    decision = replicas_for_metrics(3, [cpu, broken])
    assert (decision.replicas, decision.reason, decision.invalid) == (4, "ValidMetricFound", 1)
    assert decision.error == "invalid metrics (1 invalid out of 2), first error is: something went wrong"
    # No behavior on the HPA: the legacy path; initial recommendation = current.
    final = apply_legacy(3, 4, min_replicas=2, max_replicas=6, recommendations=[(0.0, 3)], now=0.0)
    assert (final.replicas, final.limit_reason) == (4, "DesiredWithinRange")


@pytest.mark.parametrize(
    ("go_test", "broken_reason"),
    [
        ("TestNoScaleDownOneMetricInvalid", "InvalidMetricSourceType"),
        ("TestNoScaleDownOneMetricEmpty", "FailedGetExternalMetric"),
    ],
)
def test_scale_down_is_skipped_when_another_metric_fails(go_test: str, broken_reason: str) -> None:
    cpu = replicas_for_metric(5, _cpu([100, 300, 500, 250, 250]), CPU50)
    assert cpu.replicas == 3
    decision = replicas_for_metrics(5, [cpu, _broken(QPS_EXT, broken_reason)])
    assert (decision.replicas, decision.reason) == (None, broken_reason)


def test_largest_valid_proposal_wins() -> None:
    cpu = replicas_for_metric(3, _cpu([300, 400, 500]), CPU30)
    qps = replicas_for_metric(3, 1.0, QPS_EXT, ready_pods=3)
    decision = replicas_for_metrics(3, [cpu, qps])
    assert (decision.replicas, decision.metric) == (30, qps)


def test_all_metrics_failing_means_no_scaling() -> None:
    decision = replicas_for_metrics(3, [_broken(QPS_EXT), _broken(CPU30, "FailedGetResourceMetric")])
    assert (decision.replicas, decision.invalid, decision.reason) == (None, 2, "FailedGetExternalMetric")


def test_a_later_zero_proposal_is_the_reported_metric_like_the_hpa() -> None:
    # The HPA's "replicas == 0 ||" test lets a later zero replace an earlier one.
    first = replicas_for_metric(0, 0.0, QPS_EXT)
    second = replicas_for_metric(0, 0.0, MetricTarget(MetricSource.OBJECT, TargetType.VALUE, 5, name="rps"))
    decision = replicas_for_metrics(0, [first, second])
    assert (decision.replicas, decision.metric) == (0, second)


def test_sub_milli_readings_round_up_like_quantity_milli_value() -> None:
    target = MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, 1, name="x")
    assert replicas_for_metric(1, [PodSample(0.0001)], target).value_milli == 1
