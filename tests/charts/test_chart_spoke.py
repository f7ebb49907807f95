"""The spoke chart: renders valid Kubernetes objects, maps values onto SpokeSettings, least-privilege RBAC."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.natsauth import SEED_FILE, issue
from shared.natstopology import JS_DOMAIN, leaf_config
from spoke.settings import SpokeSettings
from tests.charts.chartkit import (
    LEAF_COMPONENT,
    RELEASE_NAMESPACE,
    SPOKE,
    check_prometheus_rules,
    container,
    env,
    grants,
    helm,
    notes,
    of_kind,
    only,
    rbac_rules,
    render,
    validate_strict,
)

REQUIRED = {"cluster_id": "gpu-us-east", "nats": {"url": "nats://nats.fleetscale:4222"}}

LEAF_REMOTES = [f"nats-leaf://nats-{i}.hub.example:7422" for i in range(3)]
LEAF_CREDENTIALS_KEY = "leaf.creds"

# Chart keys the Kubernetes backend and the telemetry sources will read, not yet SpokeSettings
# fields. The chart renders them only when set; drop a name here once SpokeSettings has the field.
PLANNED_SETTINGS: set[str] = set()

# values keys with no setting behind them (nats is rendered as SPOKE_NATS_*, tested apart).
CHART_KEYS = {
    "global",
    "nats",
    "image",
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "serviceAccount",
    "rbac",
    "podAnnotations",
    "podLabels",
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "service",
    "serviceMonitor",
    "extraVolumes",
    "extraVolumeMounts",
    "topologySpreadConstraints",
    "priorityClassName",
    "startupProbe",
    "podDisruptionBudget",
    "networkPolicy",
    "podMonitor",
    "prometheusRule",
}

# Every settings key of the chart set to a valid non-default value.
ALL_SETTINGS: dict[str, Any] = {
    "cluster_id": "gpu-us-east",
    "backend": "kubernetes",
    "report_interval_s": 2.5,
    "hub_away_after_s": 20,
    "autonomy_hold_s": 600,
    "health_host": "0.0.0.0",
    "health_port": 9091,
    "actuator": "keda",
    "keda_scaler_host": "0.0.0.0",
    "keda_scaler_port": 9095,
    "log_level": "DEBUG",
    "log_format": "text",
    "shutdown_timeout_s": 20,
    "kube_managed_label": "fleetscale.dev/managed=true",
    "kube_namespaces": ["inference", "batch"],
    "kube_create_variants": True,
    "kube_apply_resources": True,
    "kube_measure_starts": False,
    "dcgm_endpoints": ["http://10.0.3.7:9400/metrics"],
    "dcgm_discover": True,
    "dcgm_pod_selector": "app=nvidia-dcgm-exporter",
    "dcgm_pod_namespace": "gpu-operator",
    "dcgm_pod_port": 9401,
    "dcgm_pod_path": "/metrics",
    "nvml_enabled": False,
    "metrics_api_enabled": True,
    "engine_metrics_port": 8000,
    "engine_metrics_path": "/metrics",
    "prometheus_url": "https://prometheus.monitoring:9090",
    "prometheus_token_file": "/var/run/secrets/prometheus/token",
    "prometheus_ca_file": "/etc/prometheus-ca/ca.crt",
    "prometheus_insecure_skip_verify": False,
    "prometheus_queries": {"requests_waiting": 'sum(vllm:num_requests_waiting{namespace="{namespace}"})'},
    "source_timeout_s": 3.0,
}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": REQUIRED,
    "token": {**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "token", "existingSecret": "nats-auth"}},
    "creds": {**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "creds", "existingSecret": "nats-auth"}},
    "nkey": {**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "nkey", "existingSecret": "fleetscale-spoke-nats"}},
    "service-monitor": {**REQUIRED, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "namespaced": {**REQUIRED, "kube_namespaces": ["inference", "batch"]},
    "create-variants": {**REQUIRED, "kube_create_variants": True},
    "custom-image": {
        **REQUIRED,
        "image": {"repository": "registry.example/fs", "tag": "1.2.3", "pullPolicy": "Always"},
    },
    "simulated": {**REQUIRED, "backend": "simulated"},
    "leaf": {"cluster_id": REQUIRED["cluster_id"], "nats": {"leaf": {"enabled": True, "remotes": LEAF_REMOTES}}},
    "leaf-credentials": {
        "cluster_id": REQUIRED["cluster_id"],
        "nats": {"leaf": {"enabled": True, "remotes": LEAF_REMOTES, "credentialsSecret": "leaf-creds"}},
    },
    "all-settings": {**ALL_SETTINGS, "nats": REQUIRED["nats"]},
    "production": yaml.safe_load((SPOKE / "ci" / "production-values.yaml").read_text()),
    "optional-objects": {
        **REQUIRED,
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "podMonitor": {"enabled": True, "relabelings": [{"targetLabel": "team", "replacement": "ml"}]},
        "prometheusRule": {"enabled": True},
        "serviceMonitor": {"enabled": True, "metricRelabelings": [{"action": "labeldrop", "regex": "pod"}]},
        "priorityClassName": "system-cluster-critical",
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
    },
}
CRD_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


def settings_fields() -> set[str]:
    return set(SpokeSettings.model_fields)


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any]) -> None:
    docs = render(SPOKE, values)
    skipped = validate_strict(docs)
    # Only the Prometheus Operator's CRD objects go unvalidated (their rules go through promtool).
    assert skipped == [d["kind"] for d in docs if d["kind"] in CRD_KINDS]


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_lint_is_clean(values: dict[str, Any]) -> None:
    result = helm.lint(str(SPOKE), values, strict=True)
    assert result["errors"] == []
    # Helm reports problems as messages too; severity 1 is INFO (e.g. "icon is recommended").
    assert [m for m in result["messages"] if m["severity"] > 1] == []


def test_lint_reports_missing_required_values() -> None:
    result = helm.lint(str(SPOKE), {"nats": REQUIRED["nats"]})
    assert any("cluster_id" in str(e) for e in result["errors"] + result["messages"])


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"nats": REQUIRED["nats"]}, "missing property 'cluster_id'"),
        ({**REQUIRED, "cluster_id": "GPU_East!"}, "/cluster_id"),
        ({**REQUIRED, "cluster_id": "-leading-dash"}, "/cluster_id"),
        ({**REQUIRED, "cluster_id": "x" * 64}, "/cluster_id"),
        ({"cluster_id": "a"}, "at '/nats': missing property 'url'"),
        ({**REQUIRED, "health_port": -1}, "/health_port"),
        ({**REQUIRED, "health_port": 70000}, "/health_port"),
        ({**REQUIRED, "report_interval_s": "fast"}, "/report_interval_s"),
        ({**REQUIRED, "report_interval_s": 0}, "/report_interval_s"),
        ({**REQUIRED, "backend": "docker"}, "/backend"),
        ({**REQUIRED, "log_format": "xml"}, "/log_format"),
        ({**REQUIRED, "kube_namespaces": "inference"}, "/kube_namespaces"),
        ({**REQUIRED, "kube_create_variants": "yes"}, "/kube_create_variants"),
        ({**REQUIRED, "dcgm_endpoints": ["dcgm-exporter:9400"]}, "/dcgm_endpoints/0"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "token"}}, "/nats/existingSecret"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "nkey"}}, "/nats/existingSecret"),
        ({**REQUIRED, "clusterid": "typo"}, "'clusterid' not allowed"),
        ({**REQUIRED, "resources": {"limit": {"memory": "1Gi"}}}, "'limit' not allowed"),
        ({**REQUIRED, "resources": {"requests": {"memroy": "1Gi"}}}, "'memroy' not allowed"),
        ({**REQUIRED, "prometheus_queries": {"requests_wating": "sum(x)"}}, "invalid propertyName 'requests_wating'"),
        ({**REQUIRED, "prometheus_queries": {"ttft.p90_s": "x"}}, "invalid propertyName 'ttft.p90_s'"),
        ({**REQUIRED, "podDisruptionBudget": {"enabeld": True}}, "'enabeld' not allowed"),
        ({**REQUIRED, "dcgm_discover": True, "kube_namespaces": ["inference"]}, "dcgm_pod_namespace"),
        # A leaf node needs the hub side's leafnode URLs, and takes no client credentials.
        ({"cluster_id": "a", "nats": {"leaf": {"enabled": True}}}, "at '/nats/leaf/remotes': minItems: got 0"),
        ({"cluster_id": "a", "nats": {"leaf": {"enabled": True, "remotes": ["http://hub:7422"]}}},
         "/nats/leaf/remotes/0"),
        ({"cluster_id": "a", "nats": {"auth": "nkey", "existingSecret": "s",
                                      "leaf": {"enabled": True, "remotes": LEAF_REMOTES}}}, "/nats/auth"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "jsDomain": "hub.side"}}, "/nats/jsDomain"),
        # There is no key for a secret value: credentials come only from an existing Secret.
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "token": "s3cret"}}, "'token' not allowed"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="fleetscale-spoke") as caught:
        render(SPOKE, values)
    assert field in str(caught.value)


@pytest.mark.parametrize("values", [v for k, v in VARIANTS.items() if k != "all-settings"], ids=str)
def test_env_sets_only_spoke_settings(values: dict[str, Any]) -> None:
    names = set(env(render(SPOKE, values)))
    unknown = {
        n for n in names if not n.startswith("SPOKE_") or n.removeprefix("SPOKE_").lower() not in settings_fields()
    }
    # kube_namespaces / kube_create_variants are set in some variants: those are planned settings.
    assert {n.removeprefix("SPOKE_").lower() for n in unknown} <= PLANNED_SETTINGS & set(values)


def test_chart_covers_every_setting_and_nothing_else() -> None:
    names = {
        n.removeprefix("SPOKE_").lower()
        for variant in ("all-settings", "token", "creds", "nkey", "leaf")
        for n in env(render(SPOKE, VARIANTS[variant]))
    }
    fields = settings_fields()
    # sim_* tune the demo's simulated backend only; they have no place in a cluster install.
    assert {f for f in fields if not f.startswith("sim_")} <= names
    assert names - fields <= PLANNED_SETTINGS


def test_values_keys_are_settings_or_chart_plumbing() -> None:
    # One for one: each values key that is not chart plumbing is a setting rendered as SPOKE_<KEY>.
    with helm.Chart.load(str(SPOKE)) as chart:
        keys = set(chart.schema["properties"]) - CHART_KEYS
    assert keys == set(ALL_SETTINGS)
    names = set(env(render(SPOKE, VARIANTS["all-settings"])))
    assert {f"SPOKE_{k.upper()}" for k in keys} <= names


def test_unset_planned_settings_are_not_rendered() -> None:
    names = set(env(render(SPOKE, REQUIRED)))
    assert not {f"SPOKE_{k.upper()}" for k in PLANNED_SETTINGS} & names


def test_rendered_env_parses_into_spoke_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {**VARIANTS["all-settings"], "nats": VARIANTS["token"]["nats"]}
    entries = env(render(SPOKE, values))
    for name in [n for n in os.environ if n.startswith("SPOKE_")]:
        monkeypatch.delenv(name)
    for name, entry in entries.items():
        if name.removeprefix("SPOKE_").lower() not in settings_fields():
            continue
        # The kubelet fills secretKeyRef entries; stand in for it.
        monkeypatch.setenv(name, entry["value"] if "value" in entry else "token-from-secret")
    settings = SpokeSettings()  # type: ignore[call-arg]  # fields come from the environment
    assert settings.cluster_id == "gpu-us-east"
    assert settings.report_interval_s == 2.5
    assert settings.health_port == 9091
    assert settings.shutdown_timeout_s == 20.0
    assert settings.log_format == "text"
    assert settings.nats_url == "nats://nats.fleetscale:4222"
    assert settings.nats_token == "token-from-secret"
    for key in PLANNED_SETTINGS:
        if key in settings_fields():  # once the field exists, its JSON/str form must parse back
            assert getattr(settings, key) == ALL_SETTINGS[key]


def test_list_and_map_settings_are_json() -> None:
    entries = env(render(SPOKE, VARIANTS["all-settings"]))
    assert json.loads(entries["SPOKE_KUBE_NAMESPACES"]["value"]) == ["inference", "batch"]
    assert json.loads(entries["SPOKE_PROMETHEUS_QUERIES"]["value"]) == ALL_SETTINGS["prometheus_queries"]
    assert entries["SPOKE_KUBE_CREATE_VARIANTS"]["value"] == "true"


def test_token_comes_from_the_secret_never_a_plain_value() -> None:
    entries = env(render(SPOKE, VARIANTS["token"]))
    assert entries["SPOKE_NATS_TOKEN"] == {
        "name": "SPOKE_NATS_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "nats-auth", "key": "token"}},
    }
    assert "SPOKE_NATS_CREDS_FILE" not in entries


def test_creds_file_is_the_secret_mounted_read_only() -> None:
    docs = render(SPOKE, VARIANTS["creds"])
    entries = env(docs)
    assert "SPOKE_NATS_TOKEN" not in entries
    path = entries["SPOKE_NATS_CREDS_FILE"]["value"]
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    (name,) = [n for n, m in mounts.items() if path.startswith(m["mountPath"] + "/")]
    assert mounts[name]["readOnly"] is True
    secret = volumes[name]["secret"]
    assert secret["secretName"] == "nats-auth"
    assert [i["path"] for i in secret["items"]] == [path.rsplit("/", 1)[1]]


def test_the_spokes_own_nkey_seed_is_mounted_read_only_and_parses_into_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(SPOKE, VARIANTS["nkey"])
    entries = env(docs)
    assert "SPOKE_NATS_TOKEN" not in entries and "SPOKE_NATS_CREDS_FILE" not in entries
    path = entries["SPOKE_NATS_NKEY_FILE"]["value"]
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    (name,) = [n for n, m in mounts.items() if path.startswith(m["mountPath"] + "/")]
    assert mounts[name]["readOnly"] is True
    secret = volumes[name]["secret"]
    assert secret["secretName"] == "fleetscale-spoke-nats"
    # Only the seed: the key is the file name `fleetscale nats-auth` writes (spoke-<id>/nkey.seed).
    assert secret["items"] == [{"key": SEED_FILE, "path": path.rsplit("/", 1)[1]}]
    # The kubelet puts the Secret's seed there; a real one read back by the spoke's settings.
    issue(tmp_path, [REQUIRED["cluster_id"]])
    monkeypatch.setenv("SPOKE_CLUSTER_ID", REQUIRED["cluster_id"])
    monkeypatch.setenv("SPOKE_NATS_NKEY_FILE", str(tmp_path / f"spoke-{REQUIRED['cluster_id']}" / SEED_FILE))
    assert (SpokeSettings().bus_options("x").nkey_seed or "").startswith("SU")  # type: ignore[call-arg]


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_chart_creates_no_secret(values: dict[str, Any]) -> None:
    assert of_kind(render(SPOKE, values), "Secret") == []


def test_pod_runs_locked_down() -> None:
    docs = render(SPOKE, REQUIRED)
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = container(docs)
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["command"] + c["args"] == ["fleetscale", "spoke"]


def test_probes_and_service_use_health_port() -> None:
    docs = render(SPOKE, {**REQUIRED, "health_port": 9191})
    c = container(docs)
    (port,) = c["ports"]
    assert port["containerPort"] == 9191
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    (service_port,) = only(docs, "Service")["spec"]["ports"]
    assert service_port["port"] == 9191 and service_port["targetPort"] == port["name"]


def test_service_monitor_scrapes_the_service() -> None:
    docs = render(SPOKE, VARIANTS["service-monitor"])
    monitor, service = only(docs, "ServiceMonitor"), only(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert of_kind(render(SPOKE, REQUIRED), "ServiceMonitor") == []


def test_custom_image() -> None:
    c = container(render(SPOKE, VARIANTS["custom-image"]))
    assert c["image"] == "registry.example/fs:1.2.3"
    assert c["imagePullPolicy"] == "Always"
    assert container(render(SPOKE, REQUIRED))["image"] == "ghcr.io/fleetscale/fleetscale:0.1.0"


# -- RBAC ----------------------------------------------------------------------------------------

SCALE = {"deployments/scale", "statefulsets/scale", "replicasets/scale"}
# Every write the spoke may make, with the reason in docs/charts.md; anything else is a regression.
ALLOWED_WRITES = {
    *{("apps", r, v) for r in SCALE for v in ("patch", "update")},
    ("", "pods", "patch"),
    ("", "events", "create"),
    ("", "events", "patch"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
}
READ = {"get", "list", "watch"}


@pytest.mark.parametrize("variant", ["defaults", "namespaced", "create-variants", "production"])
def test_rbac_is_least_privilege(variant: str) -> None:
    docs = render(SPOKE, VARIANTS[variant])
    granted = grants(docs)
    for field in (0, 1, 2):
        assert "*" not in {g[field] for g in granted}
    assert not {g for g in granted if g[1] in ("secrets", "configmaps")}
    writes = {g for g in granted if g[2] not in READ}
    creates = variant in ("create-variants", "production")
    extra = {("apps", r, "create") for r in ("deployments", "statefulsets")} if creates else set()
    assert writes == ALLOWED_WRITES | extra
    assert {("apps", r, "patch") for r in SCALE} <= granted
    assert ("", "nodes", "list") in granted
    assert {("autoscaling", "horizontalpodautoscalers", "list"), ("keda.sh", "scaledobjects", "list")} <= granted


def test_cluster_wide_by_default() -> None:
    docs = render(SPOKE, REQUIRED, name="fleetscale-spoke")
    assert of_kind(docs, "Role") == [] and of_kind(docs, "RoleBinding") == []
    binding = only(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == only(docs, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": only(docs, "ServiceAccount")["metadata"]["name"],
            "namespace": RELEASE_NAMESPACE,
        }
    ]
    assert only(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "fleetscale-spoke"


def test_kube_namespaces_gives_one_role_per_namespace() -> None:
    docs = render(SPOKE, VARIANTS["namespaced"])
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(roles) == set(bindings) == {"inference", "batch"}
    for ns, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[ns]["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    # Cluster-wide, only the cluster-scoped read of nodes remains.
    cluster_rules = [rule for where, rule in rbac_rules(docs) if where.startswith("ClusterRole/")]
    assert cluster_rules == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]


def test_create_variants_default_agrees_with_rbac() -> None:
    # The process default is true; the chart renders its own default (false) so that the spoke
    # never tries a create RBAC does not grant (a 403 instead of "variant creation is disabled").
    docs = render(SPOKE, REQUIRED)
    assert env(docs)["SPOKE_KUBE_CREATE_VARIANTS"]["value"] == "false"
    assert not {g for g in grants(docs) if g[2] == "create" and g[0] == "apps"}
    enabled = render(SPOKE, VARIANTS["create-variants"])
    assert env(enabled)["SPOKE_KUBE_CREATE_VARIANTS"]["value"] == "true"
    # Both kinds the spoke scales can get variants, so both can be created.
    assert {("apps", "deployments", "create"), ("apps", "statefulsets", "create")} <= grants(enabled)


def test_each_optional_object_renders() -> None:
    docs = render(SPOKE, VARIANTS["optional-objects"], name="fleetscale-spoke")
    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": only(docs, "Deployment")["spec"]["selector"]}
    policy = only(docs, "NetworkPolicy")
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {53, 443, 4222, 8000, 9400} <= egress_ports
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8081, "protocol": "TCP"}]
    (endpoint,) = only(docs, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["relabelings"] == [{"targetLabel": "team", "replacement": "ml"}]
    (sm_endpoint,) = only(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert sm_endpoint["metricRelabelings"] == [{"action": "labeldrop", "regex": "pod"}]
    alerts = {r["alert"] for g in only(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert {"FleetscaleSpokeStale", "FleetscaleSpokeCommandsFailing", "FleetscaleSpokeUnknownEngine"} <= alerts
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert container(docs)["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "PodMonitor", "PrometheusRule"):
        assert of_kind(render(SPOKE, REQUIRED), kind) == []


def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    rule = only(render(SPOKE, VARIANTS["production"]), "PrometheusRule")
    assert "SUCCESS" in check_prometheus_rules(rule, tmp_path)


def test_alerts_read_metric_names_the_spoke_exports() -> None:
    from prometheus_client import generate_latest

    from spoke.metrics import SpokeMetrics

    metrics = SpokeMetrics(cluster="c")
    metrics.init_sources(["engines"])
    metrics.commands.labels(status="failed", reason="forbidden").inc()
    exported = generate_latest(metrics.registry).decode()
    rule = only(render(SPOKE, VARIANTS["optional-objects"]), "PrometheusRule")
    for name in ("fleetscale_spoke_last_report_timestamp_seconds", "fleetscale_spoke_commands_total",
                 "fleetscale_spoke_source_failures_total", "fleetscale_spoke_unknown_engine_pods"):
        assert name in json.dumps(rule) and name in exported


def test_dcgm_discovery_in_a_namespaced_install_gets_a_role_where_the_exporters_run() -> None:
    docs = render(SPOKE, VARIANTS["production"])
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    assert roles["gpu-operator"]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    entries = env(docs)
    assert entries["SPOKE_DCGM_DISCOVER"]["value"] == "true"
    assert entries["SPOKE_DCGM_POD_NAMESPACE"]["value"] == "gpu-operator"


def test_simulated_backend_gets_no_rbac() -> None:
    assert grants(render(SPOKE, VARIANTS["simulated"])) == set()


def test_notes_name_the_cluster_and_scope() -> None:
    text = notes(SPOKE, VARIANTS["namespaced"])
    assert '"gpu-us-east"' in text and "inference, batch" in text


def test_values_yaml_documents_every_key() -> None:
    # values.yaml is the user's reference: each settings key appears there (cluster_id commented out,
    # since it has no sensible default).
    text = (SPOKE / "values.yaml").read_text()
    assert all(f"{key}:" in text for key in ALL_SETTINGS)


def test_keda_actuator_exposes_the_external_scaler_port_on_the_pod_and_service() -> None:
    docs = render(SPOKE, {**REQUIRED, "actuator": "keda", "keda_scaler_port": 9095})
    assert {"name": "keda", "containerPort": 9095, "protocol": "TCP"} in container(docs)["ports"]
    service = only(docs, "Service")
    assert {"name": "keda", "port": 9095, "targetPort": "keda", "protocol": "TCP"} in service["spec"]["ports"]
    assert not any(p["name"] == "keda" for p in only(render(SPOKE, REQUIRED), "Service")["spec"]["ports"])


@pytest.mark.parametrize("variant", ["leaf", "leaf-credentials"])
def test_the_leaf_node_runs_the_config_natstopology_generates(variant: str) -> None:
    values = VARIANTS[variant]
    docs = render(SPOKE, values)
    leaf = values["nats"]["leaf"]
    credentials = f"/etc/nats-leaf/{LEAF_CREDENTIALS_KEY}" if leaf.get("credentialsSecret") else None
    (config,) = [d for d in of_kind(docs, "ConfigMap") if "leaf.conf" in d["data"]]
    assert config["data"]["leaf.conf"].rstrip() == leaf_config(
        values["cluster_id"], leaf["remotes"], credentials_file=credentials).rstrip()
    (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"]
                     == LEAF_COMPONENT]
    pod = deployment["spec"]["template"]["spec"]
    (nats,) = pod["containers"]
    assert nats["args"] == ["-c", "/etc/nats/leaf.conf"] and nats["securityContext"]["readOnlyRootFilesystem"]
    mounts = {m["mountPath"] for m in nats["volumeMounts"]}
    assert ("/etc/nats-leaf" in mounts) == (credentials is not None)
    if credentials is not None:
        (secret,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
        assert secret["secretName"] == leaf["credentialsSecret"]
        assert secret["items"] == [{"key": LEAF_CREDENTIALS_KEY, "path": LEAF_CREDENTIALS_KEY}]


def test_with_a_leaf_node_the_spoke_connects_to_it_in_the_hub_sides_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(SPOKE, VARIANTS["leaf"])
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    leaf_service = services["release-fleetscale-spoke-leaf"]
    variables = env(docs)
    assert variables["SPOKE_NATS_URL"]["value"] == "nats://release-fleetscale-spoke-leaf.fleetscale.svc:4222"
    assert variables["SPOKE_NATS_JS_DOMAIN"]["value"] == JS_DOMAIN
    # Each Service selects its own pods only: the spoke's /metrics never lands on the leaf.
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in of_kind(docs, "Deployment")}
    for name, service in services.items():
        selector = service["spec"]["selector"].items()
        assert [p for p, labels in pods.items() if selector <= labels.items()] == [name]
    assert leaf_service["spec"]["ports"][0]["port"] == 4222
    for name in [n for n in os.environ if n.startswith("SPOKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SPOKE_CLUSTER_ID", "a")
    for name in ("SPOKE_NATS_URL", "SPOKE_NATS_JS_DOMAIN"):
        monkeypatch.setenv(name, variables[name]["value"])
    settings = SpokeSettings()  # type: ignore[call-arg]
    assert settings.nats_js_domain == JS_DOMAIN and settings.nats_url.endswith(".svc:4222")
    # Without a leaf: no domain unless one is given.
    assert "SPOKE_NATS_JS_DOMAIN" not in env(render(SPOKE, REQUIRED))
    given = env(render(SPOKE, {**REQUIRED, "nats": {**REQUIRED["nats"], "jsDomain": "edge"}}))
    assert given["SPOKE_NATS_JS_DOMAIN"]["value"] == "edge"
