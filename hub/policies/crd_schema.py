"""The ``AIInferenceAutoscalerPolicy`` CRD, generated from the pydantic model so the two cannot drift.

``python -m hub.policies.crd_schema`` writes ``charts/hub/crds/aiinferenceautoscalerpolicies.fleetscale.dev.yaml``;
a test fails when the committed file differs from what the model generates. The CRD's ``spec`` is
the model without ``id`` (the object's ``metadata.name``) and ``revision`` (set by the policy store),
in the model's camelCase aliases.

Kubernetes accepts only *structural* OpenAPI v3.0 schemas, so pydantic's JSON Schema (draft 2020-12)
is rewritten: ``$ref`` inlined, ``anyOf [X, null]`` → ``X`` with ``nullable: true``, numeric
``exclusiveMinimum: n`` → ``minimum: n, exclusiveMinimum: true``, ``const`` → a one-value ``enum``,
``additionalProperties: false`` and titles dropped (the API server prunes unknown fields, and
``kubectl`` refuses them with its default strict field validation). Scalar defaults stay, so the API
server fills in the same defaults the model has; object defaults are left to the model (pydantic
writes them with snake_case keys, which the API server would reject). Cross-field rules
(``max >= min``, duplicate signals...) stay in the model: the hub validates every object and reports
the field in the object's ``status.conditions`` (docs/policies.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from hub.policies.store import parse_policy_file
from hub.policy.budget import AIInferenceBudget
from hub.policy.model import AIInferenceAutoscalerPolicy, Policy

GROUP = "fleetscale.dev"
VERSION = "v1alpha1"
KIND = "AIInferenceAutoscalerPolicy"
PLURAL = "aiinferenceautoscalerpolicies"
API_VERSION = f"{GROUP}/{VERSION}"
CRD_PATH = Path("charts/hub/crds") / f"{PLURAL}.{GROUP}.yaml"

NOT_IN_SPEC = ("id", "revision")
"""Model fields that are not part of a CR's spec: the id is ``metadata.name``, the revision the store's."""

ACCEPTED = "Accepted"
"""The condition the hub sets on every object it has read."""

_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "Written by the hub: whether it accepted the policy, and its revision in the policy store.",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "revision": {"type": "integer", "format": "int64", "description": "The policy's revision in the hub's store"},
        "conditions": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "type": "object",
                "required": ["type", "status", "lastTransitionTime", "reason", "message"],
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

_PRINTER_COLUMNS = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Min", "type": "integer", "jsonPath": ".spec.bounds.minReplicas"},
    {"name": "Max", "type": "integer", "jsonPath": ".spec.bounds.maxReplicas"},
    {"name": "Accepted", "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{ACCEPTED}")].status'},
    {"name": "Revision", "type": "integer", "jsonPath": ".status.revision"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

BUDGET_KIND = "AIInferenceBudget"
BUDGET_PLURAL = "aiinferencebudgets"


def _status_of(what: str) -> dict[str, Any]:
    """The status schema, with ``what`` (a budget) in place of "policy" in its descriptions."""
    status = yaml.safe_load(yaml.safe_dump(_STATUS))
    status["description"] = status["description"].replace("policy", what)
    status["properties"]["revision"]["description"] = status["properties"]["revision"]["description"].replace(
        "policy", what)
    return dict(status)


@dataclass(frozen=True)
class CrdKind:
    """One of the hub's CRDs: the model its ``spec`` is, and how Kubernetes names and lists it."""

    model: type[BaseModel]
    kind: str
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[dict[str, Any], ...]
    description: str
    spec_description: str
    status: dict[str, Any]

    @property
    def path(self) -> Path:
        return Path("charts/hub/crds") / f"{self.plural}.{GROUP}.yaml"


POLICY_CRD = CrdKind(
    AIInferenceAutoscalerPolicy, KIND, PLURAL, ("aiap",), tuple(_PRINTER_COLUMNS),
    "How one set of inference workloads scales across the fleet (docs/policies.md). The policy id is metadata.name.",
    "The policy, as in a policy file or the REST API, without id (metadata.name) and revision.",
    _STATUS,
)
BUDGET_CRD = CrdKind(
    AIInferenceBudget, BUDGET_KIND, BUDGET_PLURAL, ("aib",),
    (
        {"name": "Team", "type": "string", "jsonPath": ".spec.team"},
        {"name": "USD/h", "type": "number", "jsonPath": ".spec.caps.costPerHour"},
        {"name": "Accepted", "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{ACCEPTED}")].status'},
        {"name": "Revision", "type": "integer", "jsonPath": ".status.revision"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    "A team's hard cap on GPUs and USD/h across the fleet (docs/budgets.md). The budget id is metadata.name.",
    "The budget, as in a budget file or the REST API, without id (metadata.name) and revision.",
    _status_of("budget"),
)
CRDS = (POLICY_CRD, BUDGET_CRD)

_DROPPED = {"title", "additionalProperties", "$defs"}
_UNSUPPORTED = {"$ref", "anyOf", "oneOf", "allOf", "not", "const", "prefixItems", "patternProperties", "$defs"}


class SchemaError(ValueError):
    """The model uses a JSON Schema construct with no structural equivalent; change the model."""


def spec_schema(crd: CrdKind = POLICY_CRD) -> dict[str, Any]:
    """The structural OpenAPI v3.0 schema of a CR's ``spec``."""
    schema = crd.model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    spec = _structural(schema, defs, "spec")
    for field in NOT_IN_SPEC:
        alias = crd.model.model_fields[field].alias or field
        spec["properties"].pop(alias, None)
        spec["required"] = [r for r in spec.get("required", []) if r != alias]
    spec["description"] = crd.spec_description
    return _ordered(spec)


def _structural(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}  # the field's own description wins over the class docstring
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
        if len(branches) != 1:
            raise SchemaError(f"{path}: a union of {len(branches)} types has no structural schema")
        node = {**_structural(branches[0], defs, path), **node, "nullable": True}
        if node.get("default", 0) is None:
            del node["default"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[flag] = node.pop(bound)
            node[bound] = True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in _UNSUPPORTED:
            raise SchemaError(f"{path}: {key} has no structural equivalent")
        if key == "default" and (value is None or isinstance(value, dict | list)):
            continue
        out[key] = value
    if "properties" in node:
        out["properties"] = {k: _structural(v, defs, f"{path}.{k}") for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs, f"{path}{{}}")
    if isinstance(node.get("items"), dict):
        out["items"] = _structural(node["items"], defs, f"{path}[]")
    if "type" not in out:
        raise SchemaError(f"{path}: no type (structural schemas need one on every node)")
    return _ordered(out)


_FIRST = ("type", "format", "description", "nullable", "enum", "default")
_LAST = ("required", "properties", "additionalProperties", "items")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Keys in a reading order (type and description first, children last), the rest sorted."""
    middle = sorted(k for k in node if k not in _FIRST and k not in _LAST)
    return {k: node[k] for k in (*_FIRST, *middle, *_LAST) if k in node}


def crd_manifest(crd: CrdKind = POLICY_CRD) -> dict[str, Any]:
    """The CustomResourceDefinition object, as the chart ships it."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "fleetscale"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.kind.lower(),
                "shortNames": list(crd.short_names),
                "categories": ["fleetscale"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(crd.columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": crd.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(crd),
                                "status": crd.status,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = """\
# GENERATED by `python -m hub.policies.crd_schema` from {model}: do not edit; change the model and
# re-run it (tests/charts/test_chart_crd.py fails when this file is stale).
# Helm installs files in crds/ on the first install only; upgrade with
# `kubectl apply --server-side -f charts/hub/crds/` (docs/charts.md).
"""


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-schemas in full: Kubernetes tooling reads YAML anchors, but people diff this file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd(crd: CrdKind = POLICY_CRD) -> str:
    model = "hub/policy/model.py" if crd is POLICY_CRD else "hub/policy/budget.py"
    return HEADER.format(model=model) + yaml.dump(crd_manifest(crd), Dumper=_Dumper, sort_keys=False, width=120)


def to_custom_resource(policy: Policy, *, namespace: str | None = None) -> dict[str, Any]:
    """The CR that holds ``policy``: what a user would ``kubectl apply`` instead of a file entry."""
    spec = policy.model_dump(
        mode="json", by_alias=True, exclude=set(NOT_IN_SPEC), exclude_unset=True, exclude_none=True
    )
    metadata: dict[str, Any] = {"name": policy.id}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


USAGE = """\
usage: python -m hub.policies.crd_schema [--out PATH]
       python -m hub.policies.crd_schema --to-cr POLICY_FILE [--namespace NS]

Write the CRDs generated from the models (default: charts/hub/crds/...; --out: the policy CRD only),
or print the policies of a policy file as AIInferenceAutoscalerPolicy objects (multi-document YAML)
for kubectl apply."""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if args[:1] == ["--to-cr"] and len(args) in (2, 4):
        namespace = args[3] if len(args) == 4 and args[2] == "--namespace" else None
        docs = [to_custom_resource(p, namespace=namespace) for p in parse_policy_file(Path(args[1]))]
        print(yaml.safe_dump_all(docs, sort_keys=False), end="")
        return 0
    if args and (args[0] != "--out" or len(args) != 2):
        print(USAGE, file=sys.stderr)
        return 2
    if args:
        out = Path(args[1])
        out.write_text(render_crd())
        print(out)
        return 0
    for crd in CRDS:
        crd.path.write_text(render_crd(crd))
        print(crd.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
