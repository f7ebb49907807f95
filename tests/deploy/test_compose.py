"""compose.yaml and what it mounts: valid against the Compose specification's own JSON schema, its
services wired to each other, every local path present, and Prometheus's config accepted by promtool.

No Docker engine runs here, so nothing is started; this checks everything short of that.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hub.policies.store import parse_policy_file
from hub.settings import HubSettings
from shared.natsauth import AUTH_FILE, HUB, SEED_FILE, SERVER_DIR, issue, spoke_name
from shared.natsserver import find_binary
from spoke.settings import SpokeSettings
from tests.dashboards.promcheck import DASHBOARDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
SPOKES = ("spoke-h100", "spoke-l4")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """The service's volumes in the long syntax (``source``, ``target``, ``type``, ``volume``)."""
    out = []
    for volume in service.get("volumes", ()):
        if isinstance(volume, dict):
            out.append(volume)
            continue
        source, target = volume.split(":")[:2]
        out.append({"type": "bind" if source.startswith((".", "/")) else "volume", "source": source, "target": target})
    return out


def binds(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(host path, container path)`` of the service's bind mounts."""
    return [(m["source"], m["target"]) for m in mounts(service) if m["type"] == "bind"]


def subpaths(service: dict[str, Any], volume: str) -> dict[str, str]:
    """Container path -> the part of named volume ``volume`` mounted there."""
    return {m["target"]: m.get("volume", {}).get("subpath", "") for m in mounts(service) if m["source"] == volume}


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    assert errors(validator, compose) == []


@pytest.mark.parametrize("breakage", [
    lambda c: c["services"]["hub"].update(volumez=[]),
    lambda c: c["services"]["grafana"].update(ports="3000:3000"),
    lambda c: c["services"]["nats"].update(depends_on="hub"),
    lambda c: c.update(service={}),
])
def test_the_schema_rejects_a_broken_compose_file(
    compose: dict[str, Any], validator: jsonschema.Draft7Validator, breakage: Any
) -> None:
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert errors(validator, broken)


def test_services_and_their_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"nats-auth", "nats", "hub", *SPOKES, "prometheus", "grafana"}
    assert "-js" in services["nats"]["command"]
    assert services["nats"]["depends_on"]["nats-auth"] == {"condition": "service_completed_successfully"}
    assert services["hub"]["command"] == ["hub"] and services["hub"]["environment"]["HUB_NATS_URL"] == "nats://nats:4222"
    for name in SPOKES:
        env = services[name]["environment"]
        assert services[name]["command"] == ["spoke"] and env["SPOKE_BACKEND"] == "simulated"
        assert env["SPOKE_NATS_URL"] == "nats://nats:4222"
    assert len({services[name]["environment"]["SPOKE_CLUSTER_ID"] for name in SPOKES}) == 2
    for service in services.values():
        for dependency in service.get("depends_on", ()):
            assert dependency in services


def test_every_mounted_local_path_exists_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file(), name
        for source, _ in binds(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
        for mount in mounts(service):
            if mount["type"] == "volume":
                assert mount["source"] in compose.get("volumes", {}), f"{name} uses undeclared volume {mount}"


@pytest.mark.parametrize("service", ["hub", *SPOKES])
def test_environment_names_real_settings_with_valid_values(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = compose["services"][service]["environment"]
    settings_type = HubSettings if service == "hub" else SpokeSettings
    prefix = "HUB_" if service == "hub" else "SPOKE_"
    issue(tmp_path, [])  # the seed the nats-auth service puts where the nkey file points
    for key, value in env.items():
        assert key.startswith(prefix) and key.removeprefix(prefix).lower() in settings_type.model_fields, key
        if key.endswith("_NATS_NKEY_FILE"):
            value = str(tmp_path / HUB / SEED_FILE)
        monkeypatch.setenv(key, str(value))
    settings_type()  # type: ignore[call-arg]  # as the container reads it; raises on a bad value


def test_the_hub_gets_a_policy_file_that_loads(compose: dict[str, Any]) -> None:
    hub = compose["services"]["hub"]
    mounted = {target: source for source, target in binds(hub)}
    policies = parse_policy_file(ROOT / mounted[hub["environment"]["HUB_POLICY_FILE"]])
    spoke_workloads = {compose["services"][s]["environment"]["SPOKE_SIM_WORKLOAD"] for s in SPOKES}
    assert {w.key for p in policies for w in p.targets.workloads} <= spoke_workloads


def test_prometheus_config_passes_promtool_and_scrapes_the_hub_and_every_spoke(compose: dict[str, Any]) -> None:
    ((source, target),) = binds(compose["services"]["prometheus"])
    assert f"--config.file={target}" in compose["services"]["prometheus"]["command"]
    checked = subprocess.run(["promtool", "check", "config", str(ROOT / source)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((ROOT / source).read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    hub_env = compose["services"]["hub"]["environment"]
    hub_port = hub_env.get("HUB_API_PORT", HubSettings.model_fields["api_port"].default)
    spoke_port = SpokeSettings.model_fields["health_port"].default
    assert targets == {f"hub:{hub_port}", *(f"{s}:{spoke_port}" for s in SPOKES)}


def test_grafana_gets_the_datasource_the_provider_and_the_dashboards_where_the_provider_looks(
    compose: dict[str, Any]
) -> None:
    mounts = {target: ROOT / source for source, target in binds(compose["services"]["grafana"])}
    provider_files = [s for t, s in mounts.items() if t.startswith("/etc/grafana/provisioning/dashboards/")]
    datasource_files = [s for t, s in mounts.items() if t.startswith("/etc/grafana/provisioning/datasources/")]
    assert datasource_files == [DASHBOARDS / "provisioning" / "datasources.yaml"]
    (provider_file,) = provider_files
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    assert mounts[provider["options"]["path"]].resolve() == DASHBOARDS
    (datasource,) = yaml.safe_load(datasource_files[0].read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DASHBOARDS / Path(home).relative_to(provider["options"]["path"])).is_file()


def test_each_process_mounts_only_its_own_nats_identity_and_the_server_only_public_keys(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    clusters = [services[s]["environment"]["SPOKE_CLUSTER_ID"] for s in SPOKES]
    assert services["nats-auth"]["command"] == clusters  # an identity for exactly the spokes that run
    ((auth_dir, server_part),) = subpaths(services["nats"], "nats-auth").items()
    assert server_part == SERVER_DIR
    config_target = services["nats"]["command"][services["nats"]["command"].index("-c") + 1]
    (config_source,) = [s for s, t in binds(services["nats"]) if t == config_target]
    include = re.search(r'^include "(.+)"$', (ROOT / config_source).read_text(), re.M)
    assert include is not None
    assert str(Path(config_target).parent / include.group(1)) == f"{auth_dir}/{AUTH_FILE}"
    for name, prefix, identity in [("hub", "HUB_", HUB), *((s, "SPOKE_", spoke_name(c)) for s, c in
                                                         zip(SPOKES, clusters, strict=True))]:
        seed_file = Path(services[name]["environment"][f"{prefix}NATS_NKEY_FILE"])
        assert subpaths(services[name], "nats-auth") == {str(seed_file.parent): identity}, name
        assert seed_file.name == SEED_FILE


def test_the_shipped_server_config_with_generated_identities_passes_nats_server_test(tmp_path: Path) -> None:
    issue(tmp_path / "ids", ["sim-h100", "sim-l4"])
    config = tmp_path / "nats-server.conf"
    config.write_text((ROOT / "deploy/nats/nats-server.conf").read_text())
    (tmp_path / "auth").symlink_to(tmp_path / "ids" / SERVER_DIR)
    checked = subprocess.run([find_binary(), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
