"""The NATS topology's configs: generated, accepted by the real nats-server, and complete."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.settings import HubSettings
from shared.bus import BusOptions
from shared.natsserver import find_binary
from shared.natstopology import JS_DOMAIN, HubNode, client_urls, hub_node_config, leaf_config, main
from spoke.settings import SpokeSettings

NODES = [HubNode(f"hub-{i}", f"nats-{i}.hub.example", listen_host="0.0.0.0") for i in range(3)]


def accepted(tmp_path: Path, text: str) -> None:
    """``nats-server -t``: the server parses the file as it would at start (and says why not)."""
    path = tmp_path / "server.conf"
    path.write_text(text)
    done = subprocess.run([find_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("store_dir", [None, "/data/jetstream"])
def test_every_hub_side_config_is_accepted_by_nats_server(tmp_path: Path, store_dir: str | None) -> None:
    for node in NODES:
        text = hub_node_config(node, NODES, store_dir=store_dir)
        accepted(tmp_path, text)
        # A full mesh: each server routes to the two others, never to itself.
        assert node.route_url not in text
        assert all(n.route_url in text for n in NODES if n != node)
        assert f'domain: "{JS_DOMAIN}"' in text and "no_advertise: true" in text


@pytest.mark.parametrize("credentials", [None, "/etc/nats-leaf/leaf.creds"])
def test_a_leaf_config_is_accepted_and_names_every_hub_side_server(tmp_path: Path, credentials: str | None) -> None:
    text = leaf_config("gpu-us-east", [n.leafnode_url for n in NODES], credentials_file=credentials)
    accepted(tmp_path, text)
    assert all(n.leafnode_url in text for n in NODES)
    assert "jetstream" not in text.split("\n", 2)[2]  # no JetStream on the leaf (only the comment names it)
    assert (credentials is not None) == ("credentials:" in text)


def test_bad_topologies_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        hub_node_config(NODES[0], [NODES[0], NODES[0]])
    with pytest.raises(ValueError, match="not one of"):
        hub_node_config(HubNode("other", "x"), NODES)
    with pytest.raises(ValueError, match="not a valid cluster id"):
        leaf_config("GPU East", ["nats-leaf://x:7422"])
    with pytest.raises(ValueError, match="at least one"):
        leaf_config("alpha", [])


def test_the_command_writes_the_configs_and_prints_the_settings(tmp_path: Path, capsys) -> None:
    out = tmp_path / "conf"
    argv = ["--out", str(out), *(a for n in NODES for a in ("--hub-host", n.host)), "--spoke", "alpha"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["hub-0.conf", "hub-1.conf", "hub-2.conf", "leaf-alpha.conf"]
    printed = capsys.readouterr().out
    assert f"HUB_NATS_URL={client_urls(NODES)} HUB_NATS_STREAM_REPLICAS=3" in printed
    assert f"SPOKE_NATS_JS_DOMAIN={JS_DOMAIN}" in printed
    assert main(["--out", str(out), "--hub-host", "a", "--hub-host", "b"]) == 2  # no majority of two
    assert main(["--out", str(out), "--hub-host", "a", "--spoke", "Bad!"]) == 2


def test_settings_for_the_topology() -> None:
    assert BusOptions(url=" nats://a:4222, nats://b:4222 ,").servers == ["nats://a:4222", "nats://b:4222"]
    with pytest.raises(ValidationError, match="names no NATS server"):
        HubSettings(nats_url=" , ")
    assert HubSettings(nats_stream_replicas=3).nats_stream_replicas == 3
    for bad in (0, 6):
        with pytest.raises(ValidationError, match="nats_stream_replicas"):
            HubSettings(nats_stream_replicas=bad)
    assert SpokeSettings(cluster_id="a", nats_js_domain="hub").bus_options("s", js_domain="hub").js_domain == "hub"
    with pytest.raises(ValidationError, match="nats_js_domain"):
        SpokeSettings(cluster_id="a", nats_js_domain="hub.side")
