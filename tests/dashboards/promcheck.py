"""Checking dashboard PromQL with the real promtool against the metrics the code really exports.

Every expression becomes a recording rule (``promtool check rules`` parses them). Then
``promtool test rules`` evaluates each one over input series built from a scraped exposition and
requires a *non-empty* result, by asserting that ``absent(<rule>)`` returns nothing: a misspelt
metric, a label the code does not set, or a join that matches nothing all fail, not only syntax.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"

VARIABLES = {"cluster": ".*", "workload": ".*", "__rate_interval": "1m"}
"""Template variables and what stands in for them: "all" for the multi-value ones, as Grafana's
``allValue``; ``1m`` for ``$__rate_interval`` (four times the test's 15 s sample interval)."""

JOBS = {"hub": ("fleetscale-hub", "hub:8080")}
"""Scrape labels Prometheus adds (``deploy/prometheus.yml``); spokes get ``fleetscale-spoke``."""

_VARIABLE = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")
_METRIC = re.compile(r"\bfleetscale_[a-z0-9_]+\b")
_LABEL_VALUES = re.compile(r"^label_values\((\w+),\s*(\w+)\)$")
_RULE = re.compile(r"dashboard:q(\d+)")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref}: {self.expr}"


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]
    value: float

    def selector(self) -> str:
        return self.name + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.labels.items())) + "}"


def load(directory: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def queries(dashboards: Mapping[str, dict[str, Any]]) -> list[Query]:
    return [
        Query(name, panel.get("title", "?"), target.get("refId", "?"), target["expr"])
        for name, d in dashboards.items() for panel in d["panels"] for target in panel.get("targets", ())
    ]


def substitute(expr: str) -> str:
    """The expression as Grafana would send it with every multi-value variable on "All"."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in VARIABLES:
            raise KeyError(f"unknown template variable ${m.group(1)} in {expr!r}")
        return VARIABLES[m.group(1)]

    return _VARIABLE.sub(value, expr)


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def label_values_query(query: str) -> tuple[str, str]:
    """``(metric, label)`` of a Grafana ``label_values(metric, label)`` variable query."""
    m = _LABEL_VALUES.match(query.strip())
    if m is None:
        raise ValueError(f"not a label_values(metric, label) query: {query!r}")
    return m.group(1), m.group(2)


def scraped_series(expositions: Mapping[str, str]) -> list[Series]:
    """Every sample of each exposition, with the job and instance labels Prometheus would add."""
    out = []
    for source, text in expositions.items():
        job, instance = JOBS.get(source, ("fleetscale-spoke", f"spoke-{source}:8081"))
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if math.isfinite(s.value):
                    out.append(Series(s.name, {**s.labels, "job": job, "instance": instance}, s.value))
    return out


def check(checked: Iterable[Query], series: list[Series], workdir: Path) -> list[str]:
    """Problems with the expressions (empty when every one parses, names exported metrics, and
    returns data over ``series``)."""
    checked = list(checked)
    problems: list[str] = []
    exported = {s.name for s in series}
    for q in checked:
        problems += [f"{q}: names {name}, which the code does not export" for name in metric_names(q.expr) - exported]
    try:
        exprs = [substitute(q.expr) for q in checked]
    except KeyError as e:
        return [*problems, str(e)]
    rules = workdir / "dashboard-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    parsed = _promtool("check", "rules", str(rules))
    if parsed.returncode != 0:
        return [*problems, f"promtool check rules: {parsed.stdout}"]
    tests = workdir / "dashboard-tests.yml"
    tests.write_text(yaml.safe_dump({
        "rule_files": [rules.name],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s",
            "input_series": [{"series": s.selector(), "values": f"{s.value:f}+0x20"} for s in series],
            "promql_expr_test": [{"expr": f"absent(dashboard:q{i})", "eval_time": "5m", "exp_samples": []}
                                 for i in range(len(exprs))],
        }],
    }))
    evaluated = _promtool("test", "rules", tests.name, cwd=workdir)
    if evaluated.returncode != 0:
        empty = sorted({int(i) for i in _RULE.findall(evaluated.stdout)})
        problems += [f"{checked[i]}: returns no data over the real exposition" for i in empty]
        if not empty:
            problems.append(f"promtool test rules: {evaluated.stdout}")
    return problems


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=60, cwd=cwd)
