"""The AIInferenceBudget CRD shipped beside the policy CRD, generated from hub/policy/budget.py.

As for policies: the committed file is what the model generates, the chart ships it, kubernetes-validate
accepts it, it is structural, and the schema and the model accept and refuse the same objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hub.policies.crd_schema import BUDGET_CRD, crd_manifest, render_crd
from hub.policies.crd_watch import budget_of
from hub.policy.budget import Budget
from tests.charts.chartkit import HUB, crds, jsonschema, validate_strict
from tests.charts.test_chart_crd import walk

ROOT = Path(__file__).resolve().parents[2]

BUDGET: dict[str, Any] = {
    "apiVersion": "fleetscale.dev/v1alpha1",
    "kind": "AIInferenceBudget",
    "metadata": {"name": "team-search", "namespace": "inference"},
    "spec": {
        "team": "search",
        "workloads": {"namespaces": ["search"], "selector": {"matchLabels": {"team": "search"}}},
        "caps": {"gpus": {"H100": 8, "*": 12}, "costPerHour": 60.0},
    },
}


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return next(c for c in crds(HUB) if c["spec"]["names"]["kind"] == "AIInferenceBudget")


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"])


def test_committed_crd_is_generated_from_the_model() -> None:
    assert (ROOT / BUDGET_CRD.path).read_text() == render_crd(BUDGET_CRD), \
        f"{BUDGET_CRD.path} is stale: run python -m hub.policies.crd_schema"


def test_chart_ships_the_generated_crd_and_it_is_valid(crd: dict[str, Any]) -> None:
    assert crd == crd_manifest(BUDGET_CRD)
    assert validate_strict([crd]) == []
    assert crd["spec"]["names"]["plural"] == "aiinferencebudgets" and crd["spec"]["scope"] == "Namespaced"


def test_schema_is_structural_and_has_every_field_but_id_and_revision(schema: dict[str, Any]) -> None:
    nodes = list(walk(schema))
    assert [path or "<root>" for path, node in nodes if "type" not in node] == []
    banned = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title"}
    assert [(path, key) for path, node in nodes for key in node if key in banned] == []
    aliases = {f.alias or name for name, f in Budget.model_fields.items()}
    assert set(schema["properties"]["spec"]["properties"]) == aliases - {"id", "revision"}


def test_example_budget_is_valid_for_the_schema_and_the_model(schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema).validate(BUDGET)
    budget = budget_of(BUDGET)
    assert budget.id == "team-search" and budget.caps.gpus == {"H100": 8, "*": 12}
    assert budget.workloads.selects("search/llama", {}) and budget.workloads.selects("other/x", {"team": "search"})
    assert not budget.workloads.selects("other/x", {"team": "ads"})


def test_documented_budget_objects_are_valid(schema: dict[str, Any]) -> None:
    text = (ROOT / "docs" / "budgets.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    objects = [yaml.safe_load(b) for b in blocks if b.startswith("apiVersion: fleetscale.dev/")]
    assert objects
    for obj in objects:
        jsonschema.Draft4Validator(schema).validate(obj)
        budget_of(obj)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["spec", "caps", "gpus", "H100"], -1),
        (["spec", "caps", "costPerHour"], -5),
        (["spec", "workloads", "namespaces", 0], ""),
        (["spec", "workloads", "selector", "matchLabels"], {}),
    ],
)
def test_schema_and_model_reject_the_same_bad_fields(schema: dict[str, Any], path: list[str | int], value: Any) -> None:
    doc = copy.deepcopy(BUDGET)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(doc)
    with pytest.raises(ValidationError):
        budget_of(doc)


def test_the_model_refuses_a_budget_without_caps_or_selector_naming_the_field() -> None:
    for spec, field in (({"workloads": {"namespaces": ["a"]}, "caps": {}}, "caps"),
                        ({"workloads": {}, "caps": {"gpus": {"*": 1}}}, "workloads")):
        with pytest.raises(ValidationError) as caught:
            Budget.model_validate({"id": "x", **spec})
        assert field in str(caught.value)
