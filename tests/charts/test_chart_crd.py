"""The AIInferenceAutoscalerPolicy CRD shipped in the hub chart's crds/ folder.

kubernetes-validate checks the CRD object itself; the policy objects are checked against the CRD's
openAPIV3Schema with jsonschema (the OpenAPI v3.0 subset Kubernetes uses is draft-4 shaped, with a
boolean exclusiveMinimum). CEL rules (x-kubernetes-validations) need an API server and are not run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartkit import HUB, crds, jsonschema, validate_strict

POLICY: dict[str, Any] = {
    "apiVersion": "fleetscale.dev/v1alpha1",
    "kind": "AIInferenceAutoscalerPolicy",
    "metadata": {"name": "llama-8b", "namespace": "inference"},
    "spec": {
        "targets": [
            {"name": "llama-3-8b", "namespace": "inference"},
            {"selector": {"matchLabels": {"app": "llama"}}},
        ],
        "minReplicas": 1,
        "maxReplicas": 32,
        "perCluster": {"minReplicas": 0, "maxReplicas": 16},
        "signals": [
            {"type": "ttft", "percentile": "p95", "target": 0.5},
            {"type": "queue_per_replica", "target": 4},
            {"type": "gpu_utilization", "target": 0.8},
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "tolerance": 0.1,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 120}],
            },
        },
        "scaleToZero": {"enabled": True, "idleAfterSeconds": 900},
        "prediction": {"enabled": True, "horizonSeconds": 180},
        "placement": {
            "allowedClusters": ["gpu-us-east", "gpu-eu-west"],
            "allowedGpuTypes": ["H100", "L40S"],
            "prices": [
                {"gpuType": "H100", "usdPerGpuHour": 9.5},
                {"cluster": "gpu-eu-west", "gpuType": "L40S", "usdPerGpuHour": 1.5},
            ],
            "spread": {"minClusters": 2, "maxSkew": 4},
            "failover": {"enabled": True, "afterSeconds": 30},
        },
        "mode": "dry-run",
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    (only_crd,) = crds(HUB)
    return only_crd


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def test_crd_is_a_valid_custom_resource_definition(crd: dict[str, Any]) -> None:
    assert validate_strict([crd]) == []


def test_crd_names_and_scope(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["group"] == "fleetscale.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "AIInferenceAutoscalerPolicy"
    assert spec["names"]["plural"] == "aiinferenceautoscalerpolicies"
    assert spec["names"]["shortNames"] == ["aiap"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    # The API server rejects a v1 CRD whose schema nodes lack a type; kubernetes-validate does not check.
    untyped = [path or "<root>" for path, node in walk(schema) if "type" not in node]
    assert untyped == []
    # metadata stays a bare object: the API server owns its schema.
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_example_policy_is_valid(schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema).validate(POLICY)


def with_change(path: list[str | int], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(POLICY)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["spec", "signals", 0, "type"], "gpu_temperature"),
        (["spec", "signals", 0, "percentile"], "p90"),
        (["spec", "signals", 1, "target"], 0),
        (["spec", "behavior", "scaleDown", "stabilizationWindowSeconds"], 3601),
        (["spec", "behavior", "scaleUp", "selectPolicy"], "Sometimes"),
        (["spec", "behavior", "scaleUp", "policies", 0, "type"], "Nodes"),
        (["spec", "behavior", "scaleUp", "policies", 0, "periodSeconds"], 1801),
        (["spec", "behavior", "scaleUp", "policies", 0, "periodSeconds"], 0),
        (["spec", "mode"], "shadow"),
        (["spec", "maxReplicas"], 0),
        (["spec", "targets"], []),
        (["spec", "placement", "allowedClusters", 0], "GPU East"),
    ],
)
def test_schema_rejects_bad_policies(schema: dict[str, Any], path: list[str | int], value: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(with_change(path, value))


@pytest.mark.parametrize("field", ["targets", "maxReplicas", "signals"])
def test_schema_rejects_policies_missing_a_required_field(schema: dict[str, Any], field: str) -> None:
    doc = copy.deepcopy(POLICY)
    del doc["spec"][field]
    with pytest.raises(jsonschema.ValidationError, match=field):
        jsonschema.Draft4Validator(schema).validate(doc)


def test_documented_example_is_valid(schema: dict[str, Any]) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "charts.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    (example,) = [b for b in blocks if b.startswith("apiVersion: fleetscale.dev/")]
    jsonschema.Draft4Validator(schema).validate(yaml.safe_load(example))
