"""The hub chart: valid objects, values mapped onto HubSettings, policies mounted where the hub reads them."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.policies.store import parse_policy_file
from hub.settings import HubSettings
from shared.natsauth import SEED_FILE
from tests.charts.chartkit import (
    HUB,
    check_prometheus_rules,
    container,
    env,
    grants,
    helm,
    of_kind,
    only,
    render,
    validate_strict,
)

REQUIRED: dict[str, Any] = {"nats": {"url": "nats://nats.fleetscale:4222"}}

POLICY = {
    "id": "llama-8b",
    "targets": {"workloads": [{"namespace": "inference", "name": "llama-3-8b"}]},
    "bounds": {"min_replicas": 1, "max_replicas": 16},
    "signals": [{"metric": "queue_per_replica", "target": 4}],
}

ALL_SETTINGS: dict[str, Any] = {
    "api_host": "0.0.0.0",
    "api_port": 9080,
    "tick_s": 0.5,
    "unready_after_failed_ticks": 5,
    "stale_after_intervals": 4,
    "startup_grace_s": 5,
    "change_tolerance": 0.05,
    "sweep_s": 20,
    "evaluation_batch": 128,
    "command_deadline_s": 30,
    "resize_settle_s": 120,
    "policy_file": "/etc/fleetscale/policies/policies.yaml",
    "policy_dir": "/etc/fleetscale/policies.d",
    "policy_poll_s": 5,
    "policy_resync_s": 30,
    "budget_file": "/etc/fleetscale/budgets/budgets.yaml",
    "budget_dir": "/etc/fleetscale/budgets.d",
    "crd_watch": True,
    "crd_namespace": "inference",
    "kubeconfig": "/etc/fleetscale/kube/config",
    "kube_context": "gitops",
    "gpu_prices": {"H100": 9.5, "L4": 0.7},
    "decision_log_size": 500,
    "history_interval_s": 5.0,
    "decisions_max_age_s": 86400,
    "decisions_max_msgs": 5000,
    "decisions_max_bytes": 67108864,
    "clusters": ["east-1", "west-2"],
    "max_clusters": 64,
    "max_workloads": 5000,
    "cluster_retention_s": 600,
    "max_clock_skew_s": 10,
    "intake_queue_size": 2000,
    "intake_queue_bytes": 16777216,
    "issued_commands_kept": 20000,
    "drift_backoff_base_s": 2.5,
    "drift_backoff_cap_s": 120,
    "sharded": True,
    "id": "hub-0",
    "partitions": 32,
    "lease_renew_s": 1.5,
    "lease_ttl_s": 6,
    "auth_open_paths": ["/healthz", "/readyz"],
    "auth_open_page": False,
    "auth_reload_interval_s": 10,
    "log_level": "WARNING",
    "log_format": "text",
    "shutdown_timeout_s": 15,
}

CHART_KEYS = {
    "global", "nats", "policies", "image", "imagePullSecrets", "nameOverride", "fullnameOverride", "serviceAccount",
    "rbac", "podAnnotations", "podLabels", "resources", "nodeSelector", "tolerations", "affinity", "service",
    "serviceMonitor", "extraVolumes", "extraVolumeMounts", "auth", "tls", "podDisruptionBudget", "prometheusRule",
}  # fmt: skip

NOT_RENDERED = {"auth_tokens_file": "the chart mounts the tokens Secret as a directory (auth_tokens_dir)"}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": REQUIRED,
    "token": {"nats": {**REQUIRED["nats"], "auth": "token", "existingSecret": "nats-auth"}},
    "creds": {"nats": {**REQUIRED["nats"], "auth": "creds", "existingSecret": "nats-auth"}},
    "nkey": {"nats": {**REQUIRED["nats"], "auth": "nkey", "existingSecret": "fleetscale-hub-nats"}},
    "service-monitor": {**REQUIRED, "serviceMonitor": {"enabled": True}},
    "policies": {**REQUIRED, "policies": [POLICY]},
    "no-policy-file": {**REQUIRED, "policy_file": None},
    "crd-namespace": {**REQUIRED, "crd_namespace": "inference"},
    "no-crd-watch": {**REQUIRED, "crd_watch": False},
    "custom-image": {**REQUIRED, "image": {"repository": "registry.example/fs", "tag": "1.2.3"}},
    "all-settings": {**ALL_SETTINGS, **REQUIRED},
    # The hub-side NATS cluster of three (docs/operations.md, "NATS topology").
    "nats-cluster": {"nats": {"url": ",".join(f"nats://nats-{i}.nats:4222" for i in range(3)), "streamReplicas": 3}},
    "auth-tls": {**REQUIRED, "auth": {"existingSecret": "hub-api-tokens"}, "tls": {"existingSecret": "hub-tls"},
                 "serviceMonitor": {"enabled": True, "tlsConfig": {"serverName": "fleetscale-hub"}}},
    "mtls": {**REQUIRED, "tls": {"existingSecret": "hub-tls", "clientAuth": True}},
    "production": yaml.safe_load((HUB / "ci" / "production-values.yaml").read_text()),
    "optional-objects": {**REQUIRED, "podDisruptionBudget": {"enabled": True}, "prometheusRule": {"enabled": True}},
}


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any]) -> None:
    docs = render(HUB, values)
    skipped = validate_strict(docs)
    assert skipped == [d["kind"] for d in docs if d["kind"] in ("ServiceMonitor", "PrometheusRule")]


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_lint_is_clean(values: dict[str, Any]) -> None:
    result = helm.lint(str(HUB), values, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({}, "at '/nats': missing property 'url'"),
        ({**REQUIRED, "api_port": -1}, "/api_port"),
        ({**REQUIRED, "api_port": "http"}, "/api_port"),
        ({**REQUIRED, "tick_s": 0}, "/tick_s"),
        ({**REQUIRED, "decision_log_size": 5}, "/decision_log_size"),
        ({**REQUIRED, "gpu_prices": {"H100": "cheap"}}, "/gpu_prices/H100"),
        ({**REQUIRED, "policy_file": "policies.yaml"}, "/policy_file"),
        ({**REQUIRED, "policy_dir": "policies.d"}, "/policy_dir"),
        ({**REQUIRED, "policy_poll_s": 0}, "/policy_poll_s"),
        ({**REQUIRED, "crd_watch": "yes"}, "/crd_watch"),
        ({**REQUIRED, "crd_namespace": "Team_A"}, "/crd_namespace"),
        ({**REQUIRED, "policies": [{"targets": {}}]}, "/policies/0"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "creds"}}, "/nats/existingSecret"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "nkey"}}, "/nats/existingSecret"),
        ({**REQUIRED, "nats": {**REQUIRED["nats"], "auth": "nkey", "existingSecret": "s", "nkeyKey": "a/b"}},
         "/nats/nkeyKey"),
        ({**REQUIRED, "tickS": 1}, "'tickS' not allowed"),
        ({**REQUIRED, "tls": {"clientAuth": True}}, "/tls/existingSecret"),
        ({**REQUIRED, "auth": {"existingSecret": "Not A Name"}}, "/auth/existingSecret"),
        ({**REQUIRED, "auth_open_paths": ["healthz"]}, "/auth_open_paths/0"),
        ({**REQUIRED, "decisions_max_msgs": 0}, "/decisions_max_msgs"),
        ({"nats": {**REQUIRED["nats"], "streamReplicas": 0}}, "/nats/streamReplicas"),
        ({"nats": {**REQUIRED["nats"], "streamReplicas": 6}}, "/nats/streamReplicas"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="fleetscale-hub") as caught:
        render(HUB, values)
    assert field in str(caught.value)


def test_env_sets_only_hub_settings_and_all_of_them() -> None:
    fields = set(HubSettings.model_fields)
    names = {
        n.removeprefix("HUB_").lower()
        for variant in ("all-settings", "token", "creds", "nkey", "auth-tls", "mtls", "nats-cluster")
        for n in env(render(HUB, VARIANTS[variant]))
    }
    assert names == fields - set(NOT_RENDERED)
    for values in VARIANTS.values():
        assert all(n.startswith("HUB_") and n[4:].lower() in fields for n in env(render(HUB, values)))


def test_values_keys_are_settings_or_chart_plumbing() -> None:
    with helm.Chart.load(str(HUB)) as chart:
        keys = set(chart.schema["properties"]) - CHART_KEYS
    assert keys == set(ALL_SETTINGS)


def test_rendered_env_parses_into_hub_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = env(render(HUB, {**ALL_SETTINGS, **VARIANTS["creds"]}))
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    for name, entry in entries.items():
        monkeypatch.setenv(name, entry["value"])
    settings = HubSettings()
    assert settings.api_host == "0.0.0.0"
    assert settings.api_port == 9080
    assert settings.tick_s == 0.5 and settings.unready_after_failed_ticks == 5
    assert settings.gpu_prices == {"H100": 9.5, "L4": 0.7}
    assert settings.policy_file == Path("/etc/fleetscale/policies/policies.yaml")
    assert settings.policy_dir == Path("/etc/fleetscale/policies.d") and settings.policy_poll_s == 5
    assert settings.crd_watch is True and settings.crd_namespace == "inference"
    assert settings.kubeconfig == Path("/etc/fleetscale/kube/config") and settings.kube_context == "gitops"
    assert settings.nats_creds_file == "/etc/fleetscale/nats/nats.creds"
    assert settings.auth_open_paths == ["/healthz", "/readyz"] and settings.auth_open_page is False
    assert (settings.decisions_max_age_s, settings.decisions_max_msgs) == (86400, 5000)


def test_api_binds_all_interfaces_by_default() -> None:
    # HubSettings defaults to 127.0.0.1, which no probe or Service reaches.
    assert env(render(HUB, REQUIRED))["HUB_API_HOST"]["value"] == "0.0.0.0"


def test_policies_are_mounted_where_the_hub_reads_them(tmp_path: Path) -> None:
    docs = render(HUB, VARIANTS["policies"])
    policy_file = env(docs)["HUB_POLICY_FILE"]["value"]
    configmap = only(docs, "ConfigMap")
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["mountPath"] == posixpath.dirname(policy_file)]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == configmap["metadata"]["name"]
    (item,) = source["items"]
    assert item["path"] == posixpath.basename(policy_file)
    # The file parses with the hub's own loader into the policy we gave.
    path = tmp_path / "policies.yaml"
    path.write_text(configmap["data"][item["key"]])
    (policy,) = parse_policy_file(path)
    assert policy.id == "llama-8b" and policy.bounds.max_replicas == 16


def test_empty_policy_list_is_a_valid_policy_file(tmp_path: Path) -> None:
    configmap = only(render(HUB, REQUIRED), "ConfigMap")
    path = tmp_path / "policies.yaml"
    path.write_text(configmap["data"]["policies.yaml"])
    assert parse_policy_file(path) == []


def test_policy_change_does_not_restart_the_hub() -> None:
    # The hub re-reads the mounted file when the kubelet updates it; a pod template change would
    # roll (Recreate) the hub and pause every decision for nothing.
    def template(values: dict[str, Any]) -> Any:
        return only(render(HUB, values), "Deployment")["spec"]["template"]

    assert template(REQUIRED) == template(VARIANTS["policies"])
    assert env(render(HUB, REQUIRED))["HUB_CRD_WATCH"]["value"] == "true"


def test_no_policy_file_means_no_configmap_and_no_setting() -> None:
    docs = render(HUB, VARIANTS["no-policy-file"])
    assert of_kind(docs, "ConfigMap") == []
    assert "HUB_POLICY_FILE" not in env(docs)


def test_nats_credentials_come_from_the_secret() -> None:
    token = env(render(HUB, VARIANTS["token"]))["HUB_NATS_TOKEN"]
    assert token["valueFrom"] == {"secretKeyRef": {"name": "nats-auth", "key": "token"}}
    docs = render(HUB, VARIANTS["creds"])
    path = env(docs)["HUB_NATS_CREDS_FILE"]["value"]
    (mount,) = [m for m in container(docs)["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mount["readOnly"] is True
    for values in VARIANTS.values():
        assert of_kind(render(HUB, values), "Secret") == []


def test_the_hubs_nkey_seed_is_its_secret_key_mounted_read_only(tmp_path: Path) -> None:
    docs = render(HUB, VARIANTS["nkey"])
    entries = env(docs)
    assert "HUB_NATS_TOKEN" not in entries and "HUB_NATS_CREDS_FILE" not in entries
    path = entries["HUB_NATS_NKEY_FILE"]["value"]
    (mount,) = [m for m in container(docs)["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "fleetscale-hub-nats"
    assert secret["items"] == [{"key": "nkey.seed", "path": posixpath.basename(path)}]
    # The key name is the file `fleetscale nats-auth` writes, so `--from-file=<dir>/hub/nkey.seed` fits.
    assert secret["items"][0]["key"] == SEED_FILE


def test_pod_runs_locked_down_and_probes_the_api_port() -> None:
    docs = render(HUB, {**REQUIRED, "api_port": 9080})
    c = container(docs)
    assert only(docs, "Deployment")["spec"]["replicas"] == 1
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["command"] + c["args"] == ["fleetscale", "hub"]
    (port,) = c["ports"]
    assert port["containerPort"] == 9080
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert only(docs, "Service")["spec"]["ports"][0]["port"] == 9080


def test_custom_image() -> None:
    assert container(render(HUB, VARIANTS["custom-image"]))["image"] == "registry.example/fs:1.2.3"


POLICY_RULES = {("fleetscale.dev", plural, verb) for plural in ("aiinferenceautoscalerpolicies", "aiinferencebudgets")
                for verb in ("get", "list", "watch")} | {
    ("fleetscale.dev", "aiinferenceautoscalerpolicies/status", "patch"),
    ("fleetscale.dev", "aiinferencebudgets/status", "patch"),
}
"""The hub reads policy and budget objects, and writes only their status."""


def test_rbac_reads_policies_and_writes_only_their_status() -> None:
    docs = render(HUB, REQUIRED)
    assert grants(docs) == POLICY_RULES
    assert of_kind(docs, "Role") == []
    binding = only(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == only(docs, "ServiceAccount")["metadata"]["name"]


def test_rbac_for_one_namespace_is_a_role_there() -> None:
    docs = render(HUB, VARIANTS["crd-namespace"])
    assert of_kind(docs, "ClusterRole") == [] and of_kind(docs, "ClusterRoleBinding") == []
    role, binding = only(docs, "Role"), only(docs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "inference"
    assert grants(docs) == POLICY_RULES
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"][0]["namespace"] == "fleetscale"


def test_no_crd_watch_means_no_rbac() -> None:
    docs = render(HUB, VARIANTS["no-crd-watch"])
    assert grants(docs) == set()
    assert env(docs)["HUB_CRD_WATCH"]["value"] == "false"


def test_service_monitor_scrapes_the_api_service() -> None:
    docs = render(HUB, VARIANTS["service-monitor"])
    monitor, service = only(docs, "ServiceMonitor"), only(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_values_yaml_documents_every_key() -> None:
    # values.yaml is the user's reference: each settings key appears there, commented or not.
    text = (HUB / "values.yaml").read_text()
    assert set(ALL_SETTINGS) <= set(yaml.safe_load(text))


def mounted_from(docs: list[dict[str, Any]], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume mount holding ``path`` and its volume."""
    (mount,) = [m for m in container(docs)["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    return mount, volumes[mount["name"]]


def test_api_tokens_come_from_a_mounted_secret_directory() -> None:
    docs = render(HUB, VARIANTS["auth-tls"])
    tokens_dir = env(docs)["HUB_AUTH_TOKENS_DIR"]["value"]
    mount, volume = mounted_from(docs, tokens_dir + "/grafana.viewer")
    assert mount["mountPath"] == tokens_dir and mount["readOnly"] is True
    # The whole Secret, as a directory: no items (every key is a token) and no subPath (it would
    # never see an update, and rotation relies on the kubelet updating the mount).
    assert volume["secret"] == {"secretName": "hub-api-tokens", "defaultMode": 0o440}
    assert "subPath" not in mount
    assert "HUB_AUTH_TOKENS_DIR" not in env(render(HUB, REQUIRED))


def test_tls_files_come_from_the_tls_secret_and_probes_and_monitor_speak_https() -> None:
    docs = render(HUB, VARIANTS["auth-tls"])
    variables = env(docs)
    assert "HUB_TLS_CLIENT_CA_FILE" not in variables
    for name, key in (("HUB_TLS_CERT_FILE", "tls.crt"), ("HUB_TLS_KEY_FILE", "tls.key")):
        path = variables[name]["value"]
        mount, volume = mounted_from(docs, path)
        assert mount["readOnly"] is True and volume["secret"]["secretName"] == "hub-tls"
        assert {"key": key, "path": posixpath.relpath(path, mount["mountPath"])} in volume["secret"]["items"]
    c = container(docs)
    (port,) = c["ports"]
    assert port["name"] == "https"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert only(docs, "Service")["spec"]["ports"][0]["name"] == "https"
    (endpoint,) = only(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"serverName": "fleetscale-hub"}


def test_mtls_mounts_the_client_ca_and_probes_only_the_port() -> None:
    docs = render(HUB, VARIANTS["mtls"])
    path = env(docs)["HUB_TLS_CLIENT_CA_FILE"]["value"]
    _, volume = mounted_from(docs, path)
    assert {"key": "ca.crt", "path": posixpath.basename(path)} in volume["secret"]["items"]
    c = container(docs)
    assert c["livenessProbe"]["tcpSocket"] == {"port": "https"} and "httpGet" not in c["livenessProbe"]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "https"}


def test_notes_warn_when_the_api_is_open() -> None:
    from tests.charts.chartkit import notes

    assert "WARNING: no tokens Secret" in notes(HUB, REQUIRED)
    text = notes(HUB, VARIANTS["auth-tls"])
    assert "WARNING" not in text and "Authorization: Bearer" in text and "https://localhost" in text


def test_default_values_parse_into_hub_settings_large_numbers_included(monkeypatch: pytest.MonkeyPatch) -> None:
    # Helm holds numbers as float64; 536870912 must reach the hub as an integer, not 5.36870912e+08.
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    for name, entry in env(render(HUB, REQUIRED)).items():
        monkeypatch.setenv(name, entry["value"])
    settings = HubSettings()
    assert settings.decisions_max_bytes == 512 * 1024 * 1024 and settings.decisions_max_msgs == 100_000
    assert settings.decisions_max_age_s == 7 * 86400 and settings.auth_open_paths == ["/healthz", "/readyz", "/metrics"]
    assert not settings.auth_enabled


def test_single_replica_with_a_pdb_that_allows_drains() -> None:
    docs = render(HUB, VARIANTS["optional-objects"])
    assert only(docs, "Deployment")["spec"]["replicas"] == 1
    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == only(docs, "Deployment")["spec"]["selector"]
    assert of_kind(render(HUB, REQUIRED), "PodDisruptionBudget") == []


def test_hub_alerts_pass_promtool_and_read_exported_metrics(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from hub.metrics import HubMetrics

    rule = only(render(HUB, VARIANTS["production"]), "PrometheusRule")
    assert "SUCCESS" in check_prometheus_rules(rule, tmp_path)
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "fleetscale_hub_tick_seconds_count" in alerts["FleetscaleHubNotDeciding"]
    metrics = HubMetrics()
    metrics.tick_seconds.observe(0.1)
    metrics.cluster_stale.labels(cluster="c").set(1)
    exported = generate_latest(metrics.registry).decode()
    assert "fleetscale_hub_tick_seconds_count" in exported and "fleetscale_hub_cluster_stale" in exported


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({**POLICY, "bounds": {"min_replicas": 20, "max_replicas": 16}}, "min_replicas 20 is above max_replicas 16"),
        ({**POLICY, "bounds": {"min_replicas": 12}}, "min_replicas 12 is above max_replicas 10"),
        ({**POLICY, "targets": {}}, "/policies/0/targets"),
        ({**POLICY, "targets": {"workloads": []}}, "/policies/0/targets"),
        ({k: v for k, v in POLICY.items() if k != "signals"}, "missing property 'signals'"),
    ],
)
def test_policies_with_inverted_bounds_or_no_targets_are_refused(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=r"fleetscale-hub|policies") as caught:
        render(HUB, {**REQUIRED, "policies": [policy]})
    assert message in str(caught.value)


def test_on_the_nats_cluster_the_hub_knows_every_server_and_replicates_r3(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = env(render(HUB, VARIANTS["nats-cluster"]))
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    for name, entry in entries.items():
        monkeypatch.setenv(name, entry["value"])
    settings = HubSettings()
    assert settings.nats_stream_replicas == 3
    assert len(settings.bus_options("hub").servers) == 3
    assert "HUB_NATS_STREAM_REPLICAS" not in env(render(HUB, REQUIRED))  # the process default, 1
