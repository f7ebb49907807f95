"""Kubernetes label selectors: rendering a ``LabelSelector`` to the query string, and matching one.

The API server filters lists by ``labelSelector`` strings; the backend also needs the same
semantics locally, to tell whether an object named explicitly in a command is managed (it was
read by name, not listed by selector) and whether a pod belongs to a base object or a variant.
Only the equality- and set-based grammar of ``kubectl -l`` is supported, which is all the API has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SET_EXPR = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")


def render(selector: Mapping[str, Any] | None) -> str:
    """The query-string form of a ``LabelSelector`` dict (matchLabels + matchExpressions)."""
    parts: list[str] = []
    for key, value in sorted(((selector or {}).get("matchLabels") or {}).items()):
        parts.append(f"{key}={value}")
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown label selector operator {op!r}")
    return ",".join(parts)


def matches(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a selector string; an empty selector matches everything."""
    labels = labels or {}
    return all(_requirement(part, labels) for part in _split(selector or ""))


def _split(selector: str) -> list[str]:
    # Commas separate requirements, except inside the parentheses of a set expression.
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _requirement(part: str, labels: Mapping[str, str]) -> bool:
    if found := _SET_EXPR.match(part):
        values = {v.strip() for v in found["values"].split(",") if v.strip()}
        key = found["key"]
        if found["op"] == "in":
            return key in labels and labels[key] in values
        return key not in labels or labels[key] not in values
    if "!=" in part:
        key, value = (s.strip() for s in part.split("!=", 1))
        return labels.get(key) != value
    if "=" in part:
        key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
        return labels.get(key) == value
    if part.startswith("!"):
        return part[1:].strip() not in labels
    return part in labels


def annotation_matches(spec: str | None, annotations: Mapping[str, str] | None) -> bool:
    """``key=value`` or ``key`` against an object's annotations (no server-side filter exists)."""
    if not spec:
        return False
    annotations = annotations or {}
    key, sep, value = spec.partition("=")
    return key in annotations if not sep else annotations.get(key) == value
