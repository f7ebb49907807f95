"""`fleetscale nats-auth`: identities issued, kept, rotated and revoked, checked by a real nats-server."""

from __future__ import annotations

import asyncio
import stat
import subprocess
from pathlib import Path

import nats
import nats.errors
import pytest
from pydantic import ValidationError

from hub.settings import HubSettings
from shared import subjects
from shared.cli import main as fleetscale
from shared.errors import ConfigurationError
from shared.natsauth import IdentityDirectory, issue, public_key, read_seed, spoke_permissions
from shared.natsserver import NatsServer, find_binary
from spoke.settings import SpokeSettings
from tests.e2e.conftest import eventually


def keys(d: IdentityDirectory, *names: str) -> dict[str, str]:
    return {n: public_key(read_seed(d.seed_path(n))) for n in names}


def test_issue_writes_private_seeds_and_a_server_file_nats_server_accepts(tmp_path: Path) -> None:
    d = IdentityDirectory(tmp_path / "ids")
    changes = issue(d.root, ["alpha", "beta"])
    assert changes.added == ["hub", "spoke-alpha", "spoke-beta"]
    for name in ("hub", "spoke-alpha", "spoke-beta"):
        assert stat.S_IMODE(d.seed_path(name).stat().st_mode) == 0o600
        assert stat.S_IMODE(d.seed_path(name).parent.stat().st_mode) == 0o700
    conf = d.auth_conf.read_text()
    for name, key in keys(d, "hub", "spoke-alpha", "spoke-beta").items():
        assert conf.count(key) == 1, name
    for name in ("hub", "spoke-alpha", "spoke-beta"):
        assert read_seed(d.seed_path(name)) not in conf  # public keys only, never a seed
    main = d.auth_conf.parent / "nats-server.conf"
    main.write_text('include "auth.conf"\n')
    checked = subprocess.run([find_binary(), "-t", "-c", str(main)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_re_running_keeps_keys_rotating_changes_only_the_named_one(tmp_path: Path) -> None:
    d = IdentityDirectory(tmp_path)
    issue(d.root, ["alpha", "beta"])
    before = keys(d, "hub", "spoke-alpha", "spoke-beta")
    assert issue(d.root, ["beta", "alpha"]).kept == ["hub", "spoke-beta", "spoke-alpha"]
    assert keys(d, "hub", "spoke-alpha", "spoke-beta") == before
    changes = issue(d.root, ["alpha", "beta"], rotate=["alpha"])
    assert changes.rotated == ["spoke-alpha"] and changes.kept == ["hub", "spoke-beta"]
    after = keys(d, "hub", "spoke-alpha", "spoke-beta")
    assert after["spoke-alpha"] != before["spoke-alpha"] and after["spoke-beta"] == before["spoke-beta"]
    assert before["spoke-alpha"] not in d.auth_conf.read_text()


@pytest.mark.parametrize(("clusters", "options", "error"), [
    (["alpha"], {}, "beta has an identity"),  # left out by mistake: not silently locked out
    (["alpha", "beta"], {"revoke": ["beta"]}, "listed and revoked"),
    (["alpha", "beta"], {"revoke": ["gamma"]}, "cannot revoke"),
    (["alpha", "beta"], {"rotate": ["gamma"]}, "cannot rotate"),
    (["alpha", "beta", "Bad.Id"], {}, "not a valid cluster id"),
])
def test_inconsistent_arguments_change_nothing(
    tmp_path: Path, clusters: list[str], options: dict[str, list[str]], error: str
) -> None:
    d = IdentityDirectory(tmp_path)
    issue(d.root, ["alpha", "beta"])
    conf = d.auth_conf.read_text()
    with pytest.raises(ConfigurationError, match=error):
        issue(d.root, clusters, **options)
    assert d.auth_conf.read_text() == conf and d.existing_spokes() == {"alpha", "beta"}


def test_the_command_revokes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleetscale(["nats-auth", "--dir", str(tmp_path), "alpha", "beta"]) == 0
    assert "added: hub, spoke-alpha, spoke-beta" in capsys.readouterr().out
    assert fleetscale(["nats-auth", "--dir", str(tmp_path), "alpha"]) == 2
    assert "--revoke" in capsys.readouterr().err
    assert fleetscale(["nats-auth", "--dir", str(tmp_path), "alpha", "--revoke", "beta"]) == 0
    assert "revoked: spoke-beta" in capsys.readouterr().out
    assert not (tmp_path / "spoke-beta").exists() and "spoke-beta" not in (tmp_path / "server/auth.conf").read_text()


def test_a_spoke_may_publish_only_its_own_subjects() -> None:
    allowed = spoke_permissions("alpha")
    assert all("alpha" in s for s in allowed["publish"]["allow"])
    # Subscriptions: its own replies, and the hub's heartbeat (the one subject all spokes share).
    assert [s for s in allowed["subscribe"]["allow"] if "alpha" not in s] == [subjects.HUB_HEARTBEAT]
    assert not any(s.startswith(("$KV", "$JS.API.STREAM")) or "CREATE" in s for s in allowed["publish"]["allow"])


def test_settings_read_the_seed_once_and_refuse_a_bad_one_or_two_credentials(tmp_path: Path) -> None:
    issue(tmp_path, ["alpha"])
    seed = tmp_path / "spoke-alpha" / "nkey.seed"
    original = read_seed(seed)
    settings = SpokeSettings(cluster_id="alpha", nats_nkey_file=seed)
    seed.write_text("changed after start")
    assert settings.bus_options("x").nkey_seed == original  # read at start, unaffected by later changes
    assert original not in repr(settings.bus_options("x"))  # a secret never reaches a log line
    with pytest.raises(ValidationError, match="not an nkey user seed"):
        SpokeSettings(cluster_id="alpha", nats_nkey_file=seed)
    with pytest.raises(ValidationError, match="set one NATS credential"):
        HubSettings(nats_nkey_file=tmp_path / "hub" / "nkey.seed", nats_token="t")


# --- on a live server -----------------------------------------------------------------------------------


async def connect(server: NatsServer, d: IdentityDirectory, name: str) -> tuple[nats.aio.client.Client, list[str]]:
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    nc = await nats.connect(server.url, nkeys_seed_str=read_seed(d.seed_path(name)), error_cb=on_error,
                            max_reconnect_attempts=3, reconnect_time_wait=0.1, connect_timeout=2)
    return nc, errors


@pytest.mark.nats
async def test_revoking_a_spoke_and_reloading_disconnects_it_for_good(tmp_path: Path) -> None:
    d = IdentityDirectory(tmp_path / "ids")
    issue(d.root, ["alpha", "beta"])
    old_beta = read_seed(d.seed_path("spoke-beta"))
    config = d.auth_conf.parent / "nats-server.conf"
    config.write_text('include "auth.conf"\n')
    with NatsServer(config_file=config) as server:
        alpha, _ = await connect(server, d, "spoke-alpha")
        beta, beta_errors = await connect(server, d, "spoke-beta")
        try:
            issue(d.root, ["alpha"], revoke=["beta"])
            server.reload()
            await eventually(lambda: beta.is_closed or not beta.is_connected, timeout_s=10)
            await eventually(lambda: beta.is_closed, timeout_s=10)  # its reconnects are refused
            assert any("authorization violation" in e.lower() for e in beta_errors)
            await asyncio.sleep(0.2)
            assert alpha.is_connected
            with pytest.raises((nats.errors.Error, OSError)):
                await nats.connect(server.url, nkeys_seed_str=old_beta, max_reconnect_attempts=0,
                                   allow_reconnect=False, connect_timeout=2)
        finally:
            await alpha.close()
            await beta.close()


@pytest.mark.nats
async def test_a_rotated_key_replaces_the_old_one_after_a_reload(tmp_path: Path) -> None:
    d = IdentityDirectory(tmp_path / "ids")
    issue(d.root, ["alpha"])
    old = read_seed(d.seed_path("spoke-alpha"))
    config = d.auth_conf.parent / "nats-server.conf"
    config.write_text('include "auth.conf"\n')
    with NatsServer(config_file=config) as server:
        issue(d.root, ["alpha"], rotate=["alpha"])
        server.reload()
        new_nc = await eventually_connects(server, read_seed(d.seed_path("spoke-alpha")))
        await new_nc.close()
        with pytest.raises((nats.errors.Error, OSError)):
            await nats.connect(server.url, nkeys_seed_str=old, allow_reconnect=False, connect_timeout=2)


async def eventually_connects(server: NatsServer, seed: str) -> nats.aio.client.Client:
    """The reload is asynchronous: retry until the server knows the new key."""
    for _ in range(50):
        try:
            return await nats.connect(server.url, nkeys_seed_str=seed, allow_reconnect=False, connect_timeout=2)
        except (nats.errors.Error, OSError):  # (a connection the reloading server reset, too)
            await asyncio.sleep(0.1)
    raise AssertionError("the rotated key was never accepted")
