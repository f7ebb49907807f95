"""Render the Helm charts with the real Helm SDK and validate what comes out, offline.

helm-python-sdk runs Helm v4's Go SDK (render, lint, values.schema.json) in-process, and
kubernetes-validate holds the Kubernetes OpenAPI schemas per version; neither needs a helm binary
or a cluster. Both are dev-only tools (244 MB for the SDK), so the chart tests are skipped, not
failed, where they are not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip(
    "helm_python", reason="chart tests need helm-python-sdk (pip install helm-python-sdk kubernetes-validate)"
)
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="chart tests need kubernetes-validate (pip install kubernetes-validate)"
)

# kubernetes-validate depends on jsonschema; the CRD tests use it directly.
jsonschema = pytest.importorskip("jsonschema", reason="chart tests need jsonschema (from kubernetes-validate)")

CHARTS = Path(__file__).resolve().parents[2] / "charts"
SPOKE = CHARTS / "spoke"
HUB = CHARTS / "hub"
KUBE_VERSION = "1.33"
RELEASE_NAMESPACE = "fleetscale"

# Kinds whose schema kubernetes-validate does not carry (they come from CRDs), with the reason.
NOT_VALIDATED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator CRD; no offline schema in kubernetes-validate",
    ("monitoring.coreos.com/v1", "PodMonitor"): "Prometheus Operator CRD; no offline schema in kubernetes-validate",
    # Its rules are checked with promtool instead (check_prometheus_rules).
    ("monitoring.coreos.com/v1", "PrometheusRule"): "Prometheus Operator CRD; no offline schema in kubernetes-validate",
}

Manifest = dict[str, Any]


def render(chart: Path, values: dict[str, Any], name: str = "release") -> list[Manifest]:
    """Every Kubernetes object the chart renders for these values (NOTES.txt left out)."""
    with helm.Chart.load(str(chart)) as loaded:
        files = loaded.render(values, name=name, namespace=RELEASE_NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path, text in files.items():
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def notes(chart: Path, values: dict[str, Any]) -> str:
    with helm.Chart.load(str(chart)) as loaded:
        files = loaded.render(values, name="release", namespace=RELEASE_NAMESPACE, is_install=True)
    return next(text for path, text in files.items() if path.endswith("NOTES.txt"))


def crds(chart: Path) -> list[Manifest]:
    """The CRDs Helm would install from the chart's crds/ folder."""
    with helm.Chart.load(str(chart)) as loaded:
        return [d for f in loaded.crds for d in yaml.safe_load_all(f["data"]) if d]


def validate_strict(docs: list[Manifest]) -> list[str]:
    """Validate each object against the Kubernetes schema (unknown fields fail too).

    Returns the kinds skipped on purpose, so a caller can check nothing else slipped through.
    """
    skipped = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in NOT_VALIDATED:
            skipped.append(doc["kind"])
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {e.message}") from e
    return skipped


def only(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


LEAF_COMPONENT = "nats-leaf"
"""The spoke's optional NATS leaf node has a Deployment of its own, labelled with this component."""


def container(docs: list[Manifest]) -> Manifest:
    """The container of the chart's own process (the hub or the spoke, not the NATS leaf node)."""
    (deployment,) = [d for d in of_kind(docs, "Deployment")
                     if d["metadata"]["labels"].get("app.kubernetes.io/component") != LEAF_COMPONENT]
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def env(docs: list[Manifest]) -> dict[str, Manifest]:
    """The container's env entries by name (duplicates would be a bug, so they fail here)."""
    entries = container(docs)["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    return {e["name"]: e for e in entries}


def rbac_rules(docs: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(kind/namespace, rule) for every rule of every ClusterRole and Role."""
    return [
        (f"{d['kind']}/{d['metadata'].get('namespace', '')}", rule)
        for d in docs
        if d["kind"] in ("ClusterRole", "Role")
        for rule in d["rules"]
    ]


def grants(docs: list[Manifest]) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) any role grants."""
    return {
        (group, resource, verb)
        for _, rule in rbac_rules(docs)
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def check_prometheus_rules(rule: Manifest, tmp_dir: Path) -> str:
    """Run ``promtool check rules`` on a PrometheusRule's groups (PromQL parses, fields valid)."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (apt-get install prometheus)")
    path = tmp_dir / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
