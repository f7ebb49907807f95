"""The AIInferenceAutoscalerPolicy CRD shipped in the hub chart's crds/ folder, generated from the model.

kubernetes-validate checks the CRD object itself; policy objects are checked against the CRD's
openAPIV3Schema with jsonschema (the OpenAPI v3.0 subset Kubernetes uses is draft-4 shaped, with a
boolean exclusiveMinimum). The model's cross-field rules are not in the schema: the hub checks them
and reports them in the object's status (tests/hub/policies).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hub.policies.crd_schema import CRD_PATH, crd_manifest, render_crd, to_custom_resource
from hub.policies.crd_watch import policy_of
from hub.policies.store import parse_policy_file
from tests.charts.chartkit import HUB, crds, jsonschema, validate_strict

ROOT = Path(__file__).resolve().parents[2]

POLICY: dict[str, Any] = {
    "apiVersion": "fleetscale.dev/v1alpha1",
    "kind": "AIInferenceAutoscalerPolicy",
    "metadata": {"name": "llama-8b", "namespace": "inference"},
    "spec": {
        "description": "Llama 3 8B chat, latency first",
        "targets": {
            "workloads": [{"namespace": "inference", "name": "llama-3-8b"}],
            "selector": {"namespace": "inference", "matchLabels": {"app": "llama"}},
        },
        "bounds": {"minReplicas": 1, "maxReplicas": 32, "perCluster": {"gpu-eu-west": {"maxReplicas": 16}}},
        "signals": [
            {"metric": "ttft", "percentile": "p95", "target": 0.5, "headroomPercent": 20},
            {"metric": "queue_per_replica", "target": 4},
            {"metric": "gpu_utilization", "target": 80},
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}],
            },
            "scaleDown": {"stabilizationWindowSeconds": 300, "tolerance": 0.1, "maxScaleChange": 2},
        },
        "panic": {"enabled": True, "stableWindowSeconds": 60},
        "prediction": {"enabled": True, "horizonSeconds": 180, "seasonSeconds": 86400},
        "fallback": {"failureThreshold": 3, "replicas": 4},
        "placement": {
            "clusters": ["gpu-us-east", "gpu-eu-west"],
            "gpuTypes": ["H100", "L40S"],
            "prices": {"*": {"H100": 9.5}, "gpu-eu-west": {"L40S": 1.5}},
            "strategy": "cost",
            "spreadMinPerCluster": 1,
            "failover": True,
        },
        "mode": "dry-run",
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return next(c for c in crds(HUB) if c["spec"]["names"]["kind"] == "AIInferenceAutoscalerPolicy")


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def test_committed_crd_is_generated_from_the_model() -> None:
    committed = (ROOT / CRD_PATH).read_text()
    assert committed == render_crd(), f"{CRD_PATH} is stale: run python -m hub.policies.crd_schema"


def test_chart_ships_the_generated_crd(crd: dict[str, Any]) -> None:
    assert crd == crd_manifest()


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
    # The API server rejects a v1 CRD whose schema nodes lack a type, use $ref, or mix properties
    # with additionalProperties; kubernetes-validate checks none of that.
    nodes = list(walk(schema))
    assert [path or "<root>" for path, node in nodes if "type" not in node] == []
    assert [path for path, node in nodes if "properties" in node and "additionalProperties" in node] == []
    banned = {"$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "const", "title"}
    assert [(path, key) for path, node in nodes for key in node if key in banned] == []
    # Defaults the API server would write must be valid scalars (object defaults are the model's job).
    assert [
        path for path, node in nodes if isinstance(node.get("default"), dict | list | type(None)) and "default" in node
    ] == []
    # metadata stays a bare object: the API server owns its schema.
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_spec_has_every_model_field_but_the_id_and_revision(schema: dict[str, Any]) -> None:
    from hub.policy.model import AIInferenceAutoscalerPolicy

    aliases = {f.alias or name for name, f in AIInferenceAutoscalerPolicy.model_fields.items()}
    assert set(schema["properties"]["spec"]["properties"]) == aliases - {"id", "revision"}


def test_example_policy_is_valid_for_the_schema_and_the_model(schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema).validate(POLICY)
    assert policy_of(POLICY).placement.prices["gpu-eu-west"]["L40S"] == 1.5


def test_example_policy_files_are_valid_custom_resources(schema: dict[str, Any]) -> None:
    files = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
    policies = [p for f in files for p in parse_policy_file(f)]
    assert policies
    for policy in policies:
        cr = to_custom_resource(policy, namespace="inference")
        jsonschema.Draft4Validator(schema).validate(cr)
        assert policy_of(cr) == policy.with_revision(0)


def documented_custom_resources() -> list[dict[str, Any]]:
    found = []
    for doc in ("policies.md", "charts.md"):
        text = (ROOT / "docs" / doc).read_text()
        blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
        found += [yaml.safe_load(b) for b in blocks if b.startswith("apiVersion: fleetscale.dev/")]
    return found


def test_documented_custom_resources_are_valid(schema: dict[str, Any]) -> None:
    examples = documented_custom_resources()
    assert len(examples) >= 2
    for example in examples:
        jsonschema.Draft4Validator(schema).validate(example)
        policy_of(example)


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
        (["spec", "signals", 0, "metric"], "gpu_temperature"),
        (["spec", "signals", 0, "percentile"], "p90"),
        (["spec", "signals", 1, "target"], 0),
        (["spec", "signals", 0, "headroomPercent"], 101),
        (["spec", "signals"], []),
        (["spec", "behavior", "scaleDown", "stabilizationWindowSeconds"], 3601),
        (["spec", "behavior", "scaleUp", "selectPolicy"], "Sometimes"),
        (["spec", "behavior", "scaleUp", "policies", 0, "type"], "Nodes"),
        (["spec", "behavior", "scaleUp", "policies", 0, "periodSeconds"], 1801),
        (["spec", "behavior", "scaleUp", "policies", 0, "periodSeconds"], 0),
        (["spec", "behavior", "scaleDown", "tolerance"], 1),
        (["spec", "mode"], "shadow"),
        (["spec", "bounds", "maxReplicas"], 0),
        (["spec", "targets", "workloads", 0, "name"], ""),
        (["spec", "panic", "stableWindowSeconds"], 5),
        (["spec", "placement", "strategy"], "cheapest"),
        (["spec", "placement", "failover"], "maybe"),
    ],
)
def test_schema_and_model_reject_the_same_bad_fields(schema: dict[str, Any], path: list[str | int], value: Any) -> None:
    bad = with_change(path, value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(bad)
    with pytest.raises(ValidationError):
        policy_of(bad)


@pytest.mark.parametrize("field", ["targets", "signals"])
def test_schema_rejects_policies_missing_a_required_field(schema: dict[str, Any], field: str) -> None:
    doc = copy.deepcopy(POLICY)
    del doc["spec"][field]
    with pytest.raises(jsonschema.ValidationError, match=field):
        jsonschema.Draft4Validator(schema).validate(doc)
