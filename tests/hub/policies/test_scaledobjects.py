"""``fleetscale keda render``: a policy as KEDA objects, checked against KEDA's and Kubernetes' schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from hub.policies.scaledobjects import Untranslatable, check_keda, render
from hub.policies.store import parse_policy_file
from hub.policy.model import Policy

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "docs" / "examples" / "policies.yaml"

POLICY = {
    "id": "llama",
    "targets": {"workloads": [{"namespace": "inference", "name": "llama"}, {"namespace": "batch", "name": "llama"}]},
    "bounds": {"min_replicas": 0, "max_replicas": 12},
    "signals": [{"metric": "queue_per_replica", "target": 4}, {"metric": "kv_cache", "target": 80},
                {"metric": "ttft", "percentile": "p99", "target": 2}],
    "scale_to_zero": {"enabled": True, "idle_seconds": 600, "activation_threshold": 1},
    "fallback": {"failure_threshold": 3, "replicas": 4},
    "behavior": {"scale_up": {"max_scale_change": 4}, "scale_down": {"stabilization_window_seconds": 120}},
}


def kinds(objects: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [o["kind"] for o in objects]


def test_every_policy_field_keda_has_lands_in_the_scaled_object() -> None:
    objects = render(Policy.model_validate(POLICY), "https://prometheus.example:9090")
    assert kinds(objects) == ["ServiceAccount", "Secret", "Role", "RoleBinding", "TriggerAuthentication"] * 2 + [
        "ScaledObject"] * 2
    so = objects[-2]
    assert so["metadata"] == {"name": "llama", "namespace": "inference", "labels": so["metadata"]["labels"]}
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 12, 600)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 4}
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                        "scaleDown": {"stabilizationWindowSeconds": 120}}
    queue, kv, ttft = spec["triggers"]
    assert queue["metricType"] == "AverageValue" and queue["metadata"]["threshold"] == "4"
    assert queue["metadata"]["activationThreshold"] == "1"
    assert 'namespace="inference",pod=~"llama-.*"' in queue["metadata"]["query"]
    assert kv["metricType"] == "Value" and "kv_cache_usage_perc" in kv["metadata"]["query"]
    assert ttft["metadata"]["query"].startswith("histogram_quantile(0.99,")
    assert all(t["authenticationRef"] == {"name": "llama-keda-metrics"} for t in spec["triggers"])
    assert all(t["metadata"]["authModes"] == "bearer" for t in spec["triggers"])


def test_kubernetes_objects_pass_strict_schema_validation() -> None:
    for policy in [*parse_policy_file(EXAMPLES), Policy.model_validate(POLICY)]:
        for obj in render(policy):
            if obj["apiVersion"].startswith("keda.sh/"):
                continue  # checked by check_keda inside render, and below
            kubernetes_validate.validate(obj, "1.33", strict=True)


def test_a_field_keda_does_not_know_is_refused_by_name() -> None:
    objects = render(Policy.model_validate(POLICY))
    so = objects[-1]
    so["spec"]["minReplicas"] = 1  # the HPA's spelling, not KEDA's minReplicaCount
    with pytest.raises(Untranslatable, match=r"ScaledObject\.spec\.minReplicas"):
        check_keda([so])
    auth = objects[4]
    auth["spec"]["secretTargetRef"][0]["paramter"] = "x"
    with pytest.raises(Untranslatable, match=r"secretTargetRef\[0\]\.paramter"):
        check_keda([auth])


@pytest.mark.parametrize(("change", "field"), [
    ({"signals": [{"metric": "cpu", "target": 70}]}, "signals.cpu"),
    ({"targets": {"selector": {"match_labels": {"app": "llama"}}}}, "targets.selector"),
    ({"prediction": {"enabled": True}}, "prediction"),
])
def test_what_keda_cannot_express_is_refused_naming_the_field(change: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(Untranslatable, match=field):
        render(Policy.model_validate(POLICY | change))


def test_the_command_writes_yaml_documents_and_names_what_it_refuses(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "shared.cli", "keda", "render", str(EXAMPLES)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    docs = list(yaml.safe_load_all(run.stdout))
    assert "ScaledObject" in kinds(docs) and "TriggerAuthentication" in kinds(docs)
    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump([POLICY | {"signals": [{"metric": "memory", "target": 80}]}]))
    refused = subprocess.run([sys.executable, "-m", "shared.cli", "keda", "render", str(bad)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "policy llama: signals.memory" in refused.stderr
