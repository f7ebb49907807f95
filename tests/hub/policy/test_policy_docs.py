"""docs/policies.md is the reference of the policy model: every field is in it, its examples are valid.

Fields are walked recursively from ``AIInferenceAutoscalerPolicy.model_fields``, so a field added to
the model without a line in the reference fails here. In the doc, a field is a backticked dotted
path: ``[]`` (list items) and ``<key>`` (map keys) are ignored, and ``*`` matches any one segment
(``behavior.scale_*.tolerance`` covers both directions).
"""

from __future__ import annotations

import fnmatch
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from hub.policies.crd_watch import policy_of
from hub.policies.store import parse_policy_file
from hub.policy.model import AIInferenceAutoscalerPolicy, Policy

DOC = Path(__file__).parents[3] / "docs" / "policies.md"


def field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path
        for sub in _models_in(info.annotation):
            yield from field_paths(sub, f"{path}.")


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models a field holds, through Optional, tuples, lists and dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        args = args[:1]
    elif origin is dict:
        args = args[1:]
    elif origin not in (tuple, list, typing.Union, types.UnionType):
        return
    for arg in args:
        if arg is not Ellipsis:
            yield from _models_in(arg)


def documented_paths(text: str) -> set[str]:
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    out = set()
    for token in re.findall(r"`([^`\n]+)`", prose):
        token = re.sub(r"\.<[^>]+>", "", token.replace("[]", ""))
        if re.fullmatch(r"[a-z_]+(\.[a-z_*]+)*", token):
            out.add(token)
    return out


def is_documented(path: str, documented: set[str]) -> bool:
    return any(path == d or ("*" in d and fnmatch.fnmatchcase(path, d)) for d in documented)


MODEL_PATHS = sorted(set(field_paths(AIInferenceAutoscalerPolicy)))


def test_the_walk_sees_nested_fields() -> None:
    # The walk itself must reach through Optional, tuples and dicts, or the next test proves nothing.
    for deep in ("targets.selector.match_labels", "signals.percentile", "bounds.per_cluster.max_replicas",
                 "behavior.scale_down.policies.period_seconds", "fallback.replicas", "placement.prices"):
        assert deep in MODEL_PATHS


@pytest.mark.parametrize("path", MODEL_PATHS)
def test_every_model_field_is_in_the_reference(path: str) -> None:
    assert is_documented(path, documented_paths(DOC.read_text())), f"docs/policies.md does not mention `{path}`"


def test_the_reference_names_no_field_the_model_lacks() -> None:
    top = {p for p in MODEL_PATHS if "." not in p}
    stale = [d for d in documented_paths(DOC.read_text())
             if "." in d and d.split(".")[0] in top and not any(fnmatch.fnmatchcase(p, d) for p in MODEL_PATHS)]
    assert stale == []


def blocks(language: str) -> list[str]:
    return [b.split("```", 1)[0] for b in DOC.read_text().split(f"```{language}\n")[1:]]


def test_the_complete_example_is_the_same_policy_as_a_file_a_cr_and_json(tmp_path: Path) -> None:
    (as_file,) = [b for b in blocks("yaml") if b.startswith("- id: llama-3-8b\n  description:")]
    (as_cr,) = [b for b in blocks("yaml") if b.startswith("apiVersion: fleetscale.dev/")]
    (as_json,) = [b for b in blocks("json") if b.startswith('{\n  "id": "llama-3-8b"')]
    path = tmp_path / "policies.yaml"
    path.write_text(as_file)
    (from_file,) = parse_policy_file(path)
    assert policy_of(yaml.safe_load(as_cr)) == from_file
    assert Policy.model_validate(json.loads(as_json)) == from_file
    # It is complete: every section of the model is set.
    assert from_file.model_fields_set >= set(AIInferenceAutoscalerPolicy.model_fields) - {"revision", "scale_to_zero"}


def test_every_policy_file_example_is_valid(tmp_path: Path) -> None:
    examples = [b for b in blocks("yaml") if b.startswith("- id:")]
    assert len(examples) >= 3
    for i, example in enumerate(examples):
        path = tmp_path / f"{i}.yaml"
        path.write_text(example)
        assert parse_policy_file(path)


def test_the_seed_example_is_the_policy_the_seed_api_stores(tmp_path: Path) -> None:
    from hub.web.api.seed import AutoscalingRequest

    (seed,) = [b for b in blocks("json") if b.startswith('{"workload_name"')]
    (stored,) = [b for b in blocks("yaml") if b.startswith("- id: autoscaler-")]
    path = tmp_path / "seed.yaml"
    path.write_text(stored)
    (documented,) = parse_policy_file(path)
    assert Policy.model_validate(AutoscalingRequest.model_validate_json(seed).policy_json()) == documented
