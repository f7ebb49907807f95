"""The policy model: defaults equal the HPA's, the seed API's fields map, errors name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.policy.behavior import PolicyType, SelectPolicy
from hub.policy.binding import bind
from hub.policy.model import Policy
from hub.state import WorkloadView
from tests.hub.factories import workload

BASE = {"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
        "signals": [{"metric": "ttft", "target": 1.0}]}


def fields(err: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in err.errors()]


def test_defaults_are_the_hpas() -> None:
    b = Policy.model_validate(BASE).behavior.behavior()
    assert b.scale_up.stabilization_window_seconds == 0 and b.scale_down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in b.scale_up.policies] == [
        (PolicyType.PODS, 4, 15), (PolicyType.PERCENT, 100, 15)]
    assert [(p.type, p.value, p.period_seconds) for p in b.scale_down.policies] == [(PolicyType.PERCENT, 100, 15)]
    assert b.scale_up.select_policy is SelectPolicy.MAX and b.tolerances().scale_up == 0.1


def test_latency_signals_default_to_p95_and_others_have_no_percentile() -> None:
    p = Policy.model_validate(BASE | {"signals": [{"metric": "ttft", "target": 1}, {"metric": "cpu", "target": 70}]})
    assert [s.name for s in p.signals] == ["ttft_p95", "cpu"]
    with pytest.raises(ValidationError, match="percentile: only latency metrics"):
        Policy.model_validate(BASE | {"signals": [{"metric": "cpu", "target": 70, "percentile": "p99"}]})


def test_the_crds_camel_case_spelling_validates_too() -> None:
    spec = {"id": "llama", "targets": {"selector": {"matchLabels": {"app": "llama"}}},
            "bounds": {"minReplicas": 2, "maxReplicas": 9, "perCluster": {"us-east": {"maxReplicas": 4}}},
            "signals": [{"metric": "queue_per_replica", "target": 5}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min"}},
            "placement": {"spreadMinPerCluster": 1, "prices": {"*": {"H100": 3.0}}}}
    p = Policy.model_validate(spec)
    assert p.bounds.per_cluster["us-east"].max_replicas == 4 and p.placement.price("eu", "H100") == 3.0
    assert p.behavior.behavior().scale_down.select_policy is SelectPolicy.MIN


def test_seed_max_scale_change_is_a_pods_policy_per_15s() -> None:
    p = Policy.model_validate(BASE | {"behavior": {"scale_up": {"stabilization_window_seconds": 60,
                                                                "max_scale_change": 3}}})
    rules = p.behavior.behavior().scale_up
    assert rules.stabilization_window_seconds == 60
    assert [(q.type, q.value, q.period_seconds) for q in rules.policies] == [(PolicyType.PODS, 3, 15)]


@pytest.mark.parametrize(("patch", "field", "message"), [
    ({"signals": [{"metric": "gpu_utilization", "target": 170}]}, "signals.0", "percentage"),
    ({"signals": [{"metric": "qps", "target": 1}]}, "signals.0.metric", "Input should be"),
    ({"signals": []}, "signals", "at least 1"),
    ({"bounds": {"min_replicas": 0}}, "", "scale_to_zero.enabled"),
    ({"bounds": {"min_replicas": 3, "max_replicas": 2}}, "bounds", "max_replicas must be >= min_replicas"),
    ({"behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 0, "period_seconds": 15}]}}},
     "behavior.scale_up.policies.0.value", "greater than 0"),
    ({"behavior": {"scale_down": {"select_policy": "Sometimes"}}}, "behavior.scale_down.select_policy", "Max"),
    ({"placement": {"strategy": "static_weights"}}, "placement", "weights: required"),
    ({"unknown": 1}, "unknown", "Extra inputs"),
    ({"id": "Not_A_Name"}, "id", "pattern"),
])
def test_errors_name_the_field(patch: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Policy.model_validate(BASE | patch)
    assert field in fields(err.value) and message in str(err.value)


def test_by_name_beats_by_labels_and_the_loser_is_reported() -> None:
    by_labels = Policy.model_validate(BASE | {"id": "a-labels", "targets": {"selector": {"match_labels": {"t": "x"}}}})
    by_name = Policy.model_validate(BASE | {"id": "z-name"})
    w = workload().model_copy(update={"labels": {"t": "x"}})
    views = {"inference/llama": WorkloadView("inference/llama", {"c": w})}
    (b,) = bind([by_labels, by_name], views)
    assert b.policy.id == "z-name" and b.overridden == ("a-labels",)
    other = {"inference/other": WorkloadView("inference/other", {"c": w})}
    (b2,) = bind([by_labels, by_name], other)
    assert b2.policy.id == "a-labels"
