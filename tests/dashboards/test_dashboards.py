"""The Grafana dashboards: well-formed, templated on datasource and cluster, and every PromQL expression
parses and returns data over the metrics the hub and spokes really export (checked with promtool)."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards import promcheck
from tests.dashboards.fleet_run import scrape
from tests.dashboards.promcheck import DASHBOARDS, Series

pytestmark = pytest.mark.nats

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {"fleet-overview.json", "workload-slo-cost.json", "decisions-commands.json", "spoke-health.json"}


@pytest.fixture(scope="module")
def series(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> list[Series]:
    """The hub's and both spokes' /metrics after a few seconds of a real fleet (``fleet_run``)."""
    expositions = asyncio.run(scrape(nats_url, tmp_path_factory.mktemp("fleet")))
    return promcheck.scraped_series(expositions)


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return promcheck.load()


def panels(dashboards: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, d in dashboards.items():
        for panel in d["panels"]:
            yield name, panel


def test_the_four_dashboards_load_with_unique_uids_and_a_current_schema(dashboards: dict[str, Any]) -> None:
    assert set(dashboards) == EXPECTED
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    for d in dashboards.values():
        assert 36 <= d["schemaVersion"] <= 41 and d["title"].startswith("Fleetscale / ")
        ids = [p["id"] for p in d["panels"]]
        assert len(set(ids)) == len(ids)


def test_every_panel_queries_the_datasource_variable(dashboards: dict[str, Any]) -> None:
    for name, panel in panels(dashboards):
        assert panel["datasource"] == DATASOURCE, (name, panel["title"])
        assert panel["targets"], (name, panel["title"])
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (name, panel["title"])


def test_panels_fit_the_grid_without_overlapping(dashboards: dict[str, Any]) -> None:
    for name, d in dashboards.items():
        cells: set[tuple[int, int]] = set()
        for p in d["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, (name, p["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, (name, p["title"])
            cells |= mine


def test_datasource_and_cluster_variables_use_real_metrics(dashboards: dict[str, Any], series: list[Series]) -> None:
    for name, d in dashboards.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = variables["datasource"]
        assert ds["type"] == "datasource" and ds["query"] == "prometheus", name
        for v in variables.values():
            if v["type"] != "query":
                continue
            assert v["datasource"] == DATASOURCE, (name, v["name"])
            metric, label = promcheck.label_values_query(v["query"]["query"])
            assert v["definition"] == v["query"]["query"]
            assert any(s.name == metric and label in s.labels for s in series), (name, v["name"], metric, label)
            assert v["includeAll"] and v["allValue"] == ".*", (name, v["name"])
        assert variables["cluster"]["type"] == "query", name


def test_every_selector_of_a_metric_with_a_cluster_label_filters_by_the_cluster_variable(
    dashboards: dict[str, Any], series: list[Series]
) -> None:
    with_cluster = {s.name for s in series if "cluster" in s.labels}
    selector = re.compile(r"\b(fleetscale_[a-z0-9_]+)(\{[^}]*\})?")
    for q in promcheck.queries(dashboards):
        for metric, matchers in selector.findall(q.expr):
            if metric in with_cluster:
                assert 'cluster=~"$cluster"' in matchers, f"{q}: {metric} is not filtered by $cluster"


def test_every_expression_parses_and_returns_data_from_what_the_code_exports(
    dashboards: dict[str, Any], series: list[Series], tmp_path: Path
) -> None:
    checked = promcheck.queries(dashboards)
    assert len(checked) >= 30
    assert promcheck.check(checked, series, tmp_path) == []


@pytest.mark.parametrize(("edit", "complaint"), [
    (lambda e: e.replace("fleetscale_hub_ready_replicas", "fleetscale_hub_replicas_ready"),
     "names fleetscale_hub_replicas_ready, which the code does not export"),
    (lambda e: e.replace('cluster=~"$cluster"', 'cluster=~"$cluster", gpu="H100"'), "returns no data"),
    (lambda e: e.replace("sum by (gpu_type) (", "sum by (gpu_type) ((("), "promtool check rules"),
    (lambda e: e.replace("$cluster", "$region"), "unknown template variable $region"),
])
def test_a_dashboard_the_code_does_not_back_fails_the_check(
    dashboards: dict[str, Any], series: list[Series], tmp_path: Path, edit: Any, complaint: str
) -> None:
    broken = copy.deepcopy(dashboards)
    (panel,) = [p for p in broken["fleet-overview.json"]["panels"] if p["title"] == "Ready replicas by GPU type"]
    panel["targets"][0]["expr"] = edit(panel["targets"][0]["expr"])
    problems = promcheck.check(promcheck.queries(broken), series, tmp_path)
    assert problems and all("Ready replicas by GPU type" in p or complaint in p for p in problems), problems
    assert any(complaint in p for p in problems), problems


def test_substitution_covers_every_variable_form() -> None:
    q = 'rate(x{cluster=~"${cluster}", workload=~"$workload"}[$__rate_interval])'
    assert promcheck.substitute(q) == 'rate(x{cluster=~".*", workload=~".*"}[1m])'
    assert promcheck.metric_names("sum(fleetscale_hub_a_total) / fleetscale_spoke_b") == {
        "fleetscale_hub_a_total", "fleetscale_spoke_b"}


def test_provisioning_points_grafana_at_prometheus_and_at_the_dashboards() -> None:
    datasources = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources.yaml").read_text())
    (ds,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1 and ds["type"] == "prometheus" and ds["url"].startswith("http")
    providers = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")

