from __future__ import annotations

from pathlib import Path

import pytest

from hub.policies.store import parse_policy_file
from shared.errors import ConfigurationError

ROOT = Path(__file__).parents[3]


def test_the_example_policy_file_is_valid() -> None:
    (policy,) = parse_policy_file(ROOT / "docs" / "examples" / "policies.yaml")
    assert [w.key for w in policy.targets.workloads] == ["inference/llama-3-8b"]


def test_a_bad_policy_file_names_the_policy_and_the_field(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    head = "  targets: {workloads: [{namespace: a, name: b}]}\n"
    f.write_text(f"- id: ok\n{head}  signals: [{{metric: queue_per_replica, target: 5}}]\n"
                 f"- id: bad\n{head}  signals: [{{metric: qps, target: 5}}]\n")
    with pytest.raises(ConfigurationError, match=r"policy #1: signals.0.metric"):
        parse_policy_file(f)
    f.write_text(f"- id: x\n{head}  signals: [{{metric: ttft, target: 1}}]\n"
                 "  bounds: {min_replicas: 5, max_replicas: 2}\n")
    with pytest.raises(ConfigurationError, match="max_replicas must be >= min_replicas"):
        parse_policy_file(f)
    f.write_text(f"- id: x\n{head}  signals: [{{metric: ttft, target: 1}}]\n  extra: 1\n")
    with pytest.raises(ConfigurationError, match="extra"):
        parse_policy_file(f)


# --- the store's writes, on a real JetStream KV bucket -------------------------------------------

BASE = {"id": "llama", "targets": {"workloads": [{"namespace": "a", "name": "b"}]},
        "signals": [{"metric": "ttft", "target": 1.0}]}


@pytest.mark.nats
async def test_writes_check_the_revision_and_the_owner(policy_store) -> None:  # type: ignore[no-untyped-def]
    store = policy_store
    from hub.policies.store import OwnershipConflict, PolicyExists, PolicyNotFound, RevisionConflict, Source
    from hub.policy.model import Policy

    created = await store.create(Policy.model_validate(BASE), source=Source.REST, actor="alice")
    with pytest.raises(PolicyExists):
        await store.create(Policy.model_validate(BASE), source=Source.REST)
    changed = Policy.model_validate(BASE | {"mode": "dry-run"})
    updated = await store.update(changed, source=Source.REST, expected_revision=created.revision)
    assert updated.revision > created.revision and store.get("llama").mode == "dry-run"
    with pytest.raises(RevisionConflict) as stale:
        await store.update(changed, source=Source.REST, expected_revision=created.revision)
    assert stale.value.status == 409 and stale.value.details["current"] == updated.revision
    with pytest.raises(OwnershipConflict) as owned:
        await store.update(changed, source=Source.CRD)
    assert owned.value.details["owner"] == "rest"
    assert await store.sync([changed], source=Source.FILE) and store.entry("llama").source is Source.REST
    await store.delete("llama", source=Source.REST, expected_revision=updated.revision)
    with pytest.raises(PolicyNotFound):
        await store.delete("llama", source=Source.REST)
    assert (await store.create(Policy.model_validate(BASE), source=Source.FILE)).revision > updated.revision


@pytest.mark.nats
async def test_sync_adds_changes_and_removes_only_its_own(policy_store) -> None:  # type: ignore[no-untyped-def]
    store = policy_store
    from hub.policies.store import Source
    from hub.policy.model import Policy

    rest = await store.create(Policy.model_validate(BASE | {"id": "by-rest"}), source=Source.REST)
    one, two = (Policy.model_validate(BASE | {"id": i}) for i in ("one", "two"))
    assert await store.sync([one, two], source=Source.FILE) == []
    revision = store.get("one").revision
    assert await store.sync([one], source=Source.FILE) == []
    assert store.get("one").revision == revision  # unchanged: not rewritten
    assert store.get("two") is None and store.get("by-rest") == rest


@pytest.mark.nats
async def test_two_hubs_syncing_the_same_file_at_once_refuse_nothing(policy_store) -> None:  # type: ignore[no-untyped-def]
    """Sharded hubs (issue 11) share one store and read the same policy file: the one that writes second
    finds the other's identical policy, which is not a refusal."""
    from hub.policies.store import PolicyStore, Source
    from hub.policy.model import Policy

    first, second = policy_store, PolicyStore(policy_store.kv)
    await second.load()  # both start empty: neither has seen the other's writes
    wanted = [Policy.model_validate(BASE | {"id": i}) for i in ("one", "two")]
    assert await first.sync(wanted, source=Source.FILE) == []
    assert await second.sync(wanted, source=Source.FILE) == []
    assert second.get("one") is not None and second.get("one").revision == first.get("one").revision


@pytest.mark.nats
async def test_owner_actor_and_times_survive_a_reload_from_the_bucket(policy_store) -> None:  # type: ignore[no-untyped-def]
    store = policy_store
    from hub.policies.store import PolicyStore, Source
    from hub.policy.model import Policy

    created = await store.create(Policy.model_validate(BASE), source=Source.REST, actor="alice")
    await store.update(created.model_copy(update={"mode": "dry-run"}), source=Source.REST, actor="bob")
    before = store.entry("llama")
    assert before.created_at is not None and before.updated_at > before.created_at
    again = PolicyStore(store.kv)
    await again.load()
    assert again.entry("llama") == before and again.entry("llama").updated_by == "bob"
