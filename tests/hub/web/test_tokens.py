"""Token sources (file, mounted Secret), rotation by reload, and the constant-time lookup."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
import yaml

from hub.metrics import HubMetrics
from hub.web import tokens as tokens_module
from hub.web.auth import Principal, Role
from hub.web.tokens import TokenSource, TokenTable, read_tokens_dir, read_tokens_file
from shared.errors import ConfigurationError
from tests.hub.credentials import secret_volume

OLD = "old-token-0123456789abcdef"
NEW = "new-token-0123456789abcdef"


def write(path: Path, entries: object) -> Path:
    path.write_text(yaml.safe_dump(entries))
    return path


def test_tokens_file_gives_principals_and_keeps_only_digests(tmp_path: Path) -> None:
    path = write(tmp_path / "t.yaml", {"tokens": [
        {"name": "grafana", "role": "viewer", "token": OLD},
        {"name": "ci", "role": "operator", "token_sha256": hashlib.sha256(NEW.encode()).hexdigest()},
    ]})
    creds = read_tokens_file(path)
    assert [c.principal for c in creds] == [Principal("grafana", Role.VIEWER), Principal("ci", Role.OPERATOR)]
    assert creds[0].digest == hashlib.sha256(OLD.encode()).digest()
    table = TokenTable(creds)
    assert table.lookup(OLD) == Principal("grafana", Role.VIEWER)
    assert table.lookup(NEW) == Principal("ci", Role.OPERATOR)  # by its hash only
    assert table.lookup(OLD[:-1]) is None and table.lookup("") is None
    assert OLD not in repr(creds) and OLD not in repr(vars(table))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a", "role": "root", "token": OLD}], "token #0: role"),
        ([{"name": "a", "role": "viewer", "token": "short"}], "token #0: token"),
        ([{"name": "a", "role": "viewer"}], "exactly one of token and token_sha256"),
        ([{"name": "a", "role": "viewer", "token": OLD, "token_sha256": "0" * 64}], "exactly one"),
        ([{"name": "a b", "role": "viewer", "token": OLD}], "token #0: name"),
        ([{"name": "a", "role": "viewer", "token": OLD, "extra": 1}], "token #0: extra"),
        ({"name": "a"}, "expected a list"),
    ],
)
def test_a_bad_tokens_file_is_refused_naming_the_entry_and_never_the_token(
    tmp_path: Path, entries: object, message: str
) -> None:
    path = write(tmp_path / "t.yaml", entries)
    with pytest.raises(ConfigurationError, match=message) as caught:
        read_tokens_file(path)
    assert "'short'" not in str(caught.value) and OLD not in str(caught.value)


def test_a_yaml_error_names_the_place_but_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"- {{name: a, role: admin, token: {OLD}")
    with pytest.raises(ConfigurationError, match="not valid YAML at line 1, column ") as caught:
        read_tokens_file(path)
    assert OLD not in str(caught.value)


def test_the_same_token_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.yaml", [{"name": "a", "role": "viewer", "token": OLD},
                                       {"name": "b", "role": "admin", "token": OLD}])
    with pytest.raises(ConfigurationError, match="the same token is given twice"):
        TokenSource(file=path).load()


def test_secret_directory_keys_are_name_dot_role_or_tokens_yaml(tmp_path: Path) -> None:
    root = secret_volume(tmp_path / "secret", {
        "grafana.viewer": OLD + "\n",  # --from-file keeps the newline
        "ops.team.admin": NEW,  # the name may contain dots: the role is the last part
        "tokens.yaml": yaml.safe_dump([{"name": "ci", "role": "operator", "token": "ci-token-0123456789abcdef"}]),
    })
    creds = read_tokens_dir(root)
    assert sorted((c.principal.name, c.principal.role.value) for c in creds) == [
        ("ci", "operator"), ("grafana", "viewer"), ("ops.team", "admin")]
    table = TokenTable(creds)
    assert table.lookup(OLD) == Principal("grafana", Role.VIEWER)
    assert table.lookup(OLD + "\n") is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("README", OLD, "`<name>.<role>`"), ("a.root", OLD, "role one of viewer, operator, admin"),
     ("a.viewer", "short\n", "shorter than 16")],
)
def test_a_bad_secret_key_is_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    root = secret_volume(tmp_path / "secret", {key: value})
    with pytest.raises(ConfigurationError, match=message):
        read_tokens_dir(root)


async def test_a_changed_tokens_file_is_reloaded_and_a_broken_one_keeps_the_old_tokens(tmp_path: Path) -> None:
    metrics = HubMetrics()
    path = write(tmp_path / "t.yaml", [{"name": "a", "role": "viewer", "token": OLD}])
    table = TokenTable.load(TokenSource(file=path), metrics=metrics)
    watcher = asyncio.create_task(table.watch(interval_s=0.01))
    try:
        write(path, [{"name": "a", "role": "admin", "token": NEW}])
        async with asyncio.timeout(5):
            while table.lookup(NEW) is None:
                await asyncio.sleep(0.01)
        assert table.lookup(OLD) is None and table.lookup(NEW) == Principal("a", Role.ADMIN)
        assert metrics.auth_tokens._value.get() == 1
        path.write_text("- {name: a, role: admin, token: tr")  # half written
        async with asyncio.timeout(5):
            while metrics.reload_failures.labels("tokens")._value.get() == 0:
                await asyncio.sleep(0.01)
        assert table.lookup(NEW) == Principal("a", Role.ADMIN)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_a_rotated_secret_volume_is_reloaded(tmp_path: Path) -> None:
    root = secret_volume(tmp_path / "secret", {"grafana.viewer": OLD})
    table = TokenTable.load(TokenSource(directory=root))
    watcher = asyncio.create_task(table.watch(interval_s=0.01))
    try:
        # The kubelet writes the new keys into a new ..<version> directory and swaps ..data.
        secret_volume(root, {"grafana.viewer": NEW}, version="v2")
        async with asyncio.timeout(5):
            while table.lookup(NEW) is None:
                await asyncio.sleep(0.01)
        assert table.lookup(OLD) is None
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def test_a_tokens_file_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read tokens file"):
        TokenTable.load(TokenSource(file=tmp_path / "missing.yaml"))


def test_lookup_compares_digests_in_constant_time_against_every_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = tokens_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", spy)
    table = TokenTable([
        tokens_module.Credential(Principal(f"p{i}", Role.VIEWER), tokens_module.token_digest(f"token-{i:020d}"), "t")
        for i in range(5)
    ])
    assert table.lookup(f"token-{0:020d}") == Principal("p0", Role.VIEWER)  # the first entry matches...
    assert len(calls) == 5  # ...and every other entry is still compared
    # Digests, not tokens, are compared: equal lengths whatever the token's length.
    assert {(len(a), len(b)) for a, b in calls} == {(32, 32)}
    calls.clear()
    assert table.lookup("x" * 1000) is None and len(calls) == 5
