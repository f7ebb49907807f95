"""Policy files and directories as the FILE source, against a real JetStream policy store."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.policies.files import PolicyFiles
from hub.policies.store import PolicyStore, Source
from hub.policy.model import Policy
from shared.errors import ConfigurationError
from tests.hub.policies.helpers import until

pytestmark = pytest.mark.nats


def policy(policy_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": policy_id,
        "targets": {"workloads": [{"namespace": "inference", "name": policy_id}]},
        "signals": [{"metric": "queue_per_replica", "target": 4}],
        **changes,
    }


def write(path: Path, *policies: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(list(policies)))
    return path


def ids(store: PolicyStore) -> list[str]:
    return [p.id for p in store.all()]


async def test_directory_files_are_added_changed_and_removed(store: PolicyStore, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy("llama"), policy("mistral"))
    write(tmp_path / "b.yml", policy("qwen"))
    (tmp_path / "notes.txt").write_text("not a policy file")
    files = PolicyFiles(store, directory=tmp_path)
    await files.apply()
    assert ids(store) == ["llama", "mistral", "qwen"] and files.errors == {}
    assert all(store.entry(i).source is Source.FILE for i in ids(store))
    revision = store.get("llama").revision

    write(tmp_path / "a.yaml", policy("llama", mode="dry-run"))
    (tmp_path / "b.yml").unlink()
    write(tmp_path / "c.yaml", policy("phi"))
    await files.apply()
    assert ids(store) == ["llama", "phi"]
    assert store.get("llama").mode == "dry-run" and store.get("llama").revision > revision


async def test_a_bad_file_is_named_and_the_others_still_apply(store: PolicyStore, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy("llama"))
    write(tmp_path / "b.yaml", policy("qwen"))
    files = PolicyFiles(store, directory=tmp_path)
    await files.apply()

    write(tmp_path / "a.yaml", policy("llama", bounds={"min_replicas": 1, "max_replicas": 0}))
    write(tmp_path / "b.yaml", policy("qwen", mode="dry-run"))
    write(tmp_path / "c.yaml", policy("phi"))
    reading = await files.apply()
    (message,) = reading.errors[tmp_path / "a.yaml"]
    assert str(tmp_path / "a.yaml") in message and "bounds.max_replicas" in message
    # b and c apply; llama keeps what a.yaml said last time it parsed.
    assert ids(store) == ["llama", "phi", "qwen"] and store.get("qwen").mode == "dry-run"
    assert store.get("llama").bounds.max_replicas == 10

    (tmp_path / "a.yaml").write_text("- id: llama\n  targets: [oops\n")  # not even YAML
    reading = await files.apply()
    assert "cannot read policy file" in reading.errors[tmp_path / "a.yaml"][0]
    assert store.get("llama") is not None


async def test_a_hub_restarted_with_a_bad_file_removes_nothing(store: PolicyStore, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy("llama"))
    write(tmp_path / "b.yaml", policy("qwen"))
    await PolicyFiles(store, directory=tmp_path).apply()

    (tmp_path / "a.yaml").write_text("- {id: llama, signals: []}\n")
    (tmp_path / "b.yaml").unlink()
    restarted = PolicyFiles(store, directory=tmp_path)  # knows nothing of a.yaml's last good content
    reading = await restarted.apply()
    assert not reading.complete and tmp_path / "a.yaml" in reading.errors
    assert ids(store) == ["llama", "qwen"]  # b.yaml's policy stays too: a.yaml might have held it

    write(tmp_path / "a.yaml", policy("llama"))
    await restarted.apply()
    assert ids(store) == ["llama"]


async def test_an_id_in_two_files_is_an_error_naming_both(store: PolicyStore, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy("llama"))
    write(tmp_path / "b.yaml", policy("llama", mode="dry-run"), policy("qwen"))
    reading = await PolicyFiles(store, directory=tmp_path).apply()
    (message,) = reading.errors[tmp_path / "b.yaml"]
    assert "'llama'" in message and str(tmp_path / "a.yaml") in message and str(tmp_path / "b.yaml") in message
    assert ids(store) == ["llama", "qwen"] and store.get("llama").mode == "enforce"

    write(tmp_path / "c.yaml", policy("phi"), policy("phi"))
    reading = await PolicyFiles(store, directory=tmp_path).apply()
    assert "given more than once" in reading.errors[tmp_path / "c.yaml"][0]


async def test_policy_file_and_directory_are_one_source(store: PolicyStore, tmp_path: Path) -> None:
    directory = tmp_path / "policies.d"
    directory.mkdir()
    inside = write(directory / "inside.yaml", policy("qwen"))
    single = write(tmp_path / "policies.yaml", policy("llama"))
    files = PolicyFiles(store, file=single, directory=directory)
    await files.apply()
    assert ids(store) == ["llama", "qwen"]
    # The file given twice (as HUB_POLICY_FILE and inside the directory) is read once.
    both = PolicyFiles(store, file=inside, directory=directory)
    assert both.paths() == [inside]
    reading = await both.apply()
    assert reading.errors == {} and ids(store) == ["qwen"]


async def test_a_policy_owned_by_rest_is_refused_and_left_alone(store: PolicyStore, tmp_path: Path) -> None:
    by_rest = await store.create(Policy.model_validate(policy("llama")), source=Source.REST)
    write(tmp_path / "a.yaml", policy("llama", mode="dry-run"), policy("qwen"))
    files = PolicyFiles(store, directory=tmp_path)
    await files.apply()
    (refused,) = files.refused
    assert refused.policy_id == "llama" and refused.details["owner"] == "rest"
    assert store.get("llama") == by_rest and store.get("qwen") is not None


def test_missing_paths_fail_fast(store: PolicyStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="HUB_POLICY_FILE"):
        PolicyFiles(store, file=tmp_path / "nope.yaml").check()
    with pytest.raises(ConfigurationError, match="HUB_POLICY_DIR"):
        PolicyFiles(store, directory=tmp_path / "nope").check()


async def test_watcher_follows_a_configmap_style_symlink_swap(store: PolicyStore, tmp_path: Path) -> None:
    # The kubelet writes a ConfigMap volume as ..<timestamp>/ dirs, a ..data link to the current one,
    # and one link per key through ..data; an update swaps ..data atomically.
    mount = tmp_path / "mount"
    mount.mkdir()
    first = mount / "..2025_01_01"
    first.mkdir()
    write(first / "policies.yaml", policy("llama"))
    (mount / "..data").symlink_to(first.name)
    (mount / "policies.yaml").symlink_to("..data/policies.yaml")

    files = PolicyFiles(store, directory=mount, poll_s=0.02)
    task = asyncio.create_task(files.watcher())
    try:
        await until(lambda: ids(store) == ["llama"], what="the first reading")
        second = mount / "..2025_01_02"
        second.mkdir()
        write(second / "policies.yaml", policy("llama", mode="dry-run"), policy("qwen"))
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        await until(lambda: ids(store) == ["llama", "qwen"], what="the swapped content")
        assert store.get("llama").mode == "dry-run"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert files.paths() == [mount / "policies.yaml"]  # the ..data links are not policy files


async def test_watcher_resyncs_so_a_refused_policy_takes_over_later(store: PolicyStore, tmp_path: Path) -> None:
    await store.create(Policy.model_validate(policy("llama")), source=Source.REST)
    write(tmp_path / "a.yaml", policy("llama", mode="dry-run"))
    files = PolicyFiles(store, directory=tmp_path, poll_s=0.02, resync_s=0.05)
    task = asyncio.create_task(files.watcher())
    try:
        await until(lambda: files.refused, what="the refusal")
        await store.delete("llama", source=Source.REST)
        await until(lambda: (e := store.entry("llama")) and e.source is Source.FILE, what="the file to take over")
        assert store.get("llama").mode == "dry-run"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
