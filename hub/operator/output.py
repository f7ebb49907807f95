"""Printing what the hub answered: ``-o table`` for people, ``-o json|yaml`` for scripts.

JSON and YAML print the API's own objects unchanged, so a script sees the documented schema
(``/api/v1/openapi.json``); tables pick a few columns per kind, as ``kubectl get`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import yaml


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def render(data: Any, fmt: Format, rows: Sequence[dict[str, Any]] | None = None,
           columns: Sequence[Column] | None = None) -> str:
    if fmt is Format.JSON:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if fmt is Format.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    if rows is None or columns is None:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    return table(rows, columns)


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        return ",".join(cell(v) for v in value) or "—"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    header = [name.upper() for name, _ in columns]
    body = [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    return "\n".join(lines)
