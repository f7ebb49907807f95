"""The CRD source against a Kubernetes API at the HTTP wire (kmock) and a real JetStream policy store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import kmock as km
import pytest
from kubernetes_asyncio import client as k8s

from hub.policies.crd_schema import ACCEPTED, GROUP, PLURAL, VERSION
from hub.policies.crd_watch import CrdSource, Verdict, kube_configuration, policy_of, status_for
from hub.policies.store import PolicyStore, Source
from hub.policy.model import Policy
from shared.errors import ConfigurationError
from tests.hub.policies.helpers import RESOURCE, policy_object, until

pytestmark = pytest.mark.nats

SPEC: dict[str, Any] = {
    "targets": {"workloads": [{"namespace": "inference", "name": "llama-3-8b"}]},
    "bounds": {"minReplicas": 1, "maxReplicas": 8},
    "signals": [{"metric": "ttft", "percentile": "p95", "target": 1.0}],
}


@asynccontextmanager
async def running(source: CrdSource) -> AsyncIterator[CrdSource]:
    task = asyncio.create_task(source.run())
    try:
        yield source
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not task.done() or task.cancelled(), task.exception()


def crd_source(store: PolicyStore, configuration: k8s.Configuration, **kwargs: Any) -> CrdSource:
    return CrdSource(store, configuration, backoff_base_s=0.01, backoff_cap_s=0.05, **kwargs)


def condition(kube: km.KubernetesEmulator, name: str, namespace: str = "inference") -> dict[str, Any] | None:
    obj = kube.objects[RESOURCE, namespace, name]
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == ACCEPTED), None)


async def create(kubectl: k8s.CustomObjectsApi, obj: dict[str, Any]) -> None:
    await kubectl.create_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"], PLURAL, obj)


async def test_created_object_becomes_a_policy_and_its_status_says_accepted(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any
) -> None:
    async with running(crd_source(store, configuration)) as source:
        await until(lambda: source._listed, what="the first list")
        await create(kubectl, policy_object("llama", SPEC))
        policy = await until(lambda: store.get("llama"), what="the policy in the store")
        assert store.entry("llama").source is Source.CRD
        assert policy.bounds.max_replicas == 8 and policy.signals[0].percentile == "p95"
        accepted = await until(lambda: condition(kube, "llama"), what="the status")
        assert accepted["status"] == "True" and accepted["reason"] == "Synced"
        assert kube.objects[RESOURCE, "inference", "llama"]["status"]["revision"] == policy.revision


async def test_changed_object_updates_the_policy_with_a_new_revision(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any
) -> None:
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", SPEC)
    async with running(crd_source(store, configuration)):
        first = await until(lambda: store.get("llama"), what="the listed policy")
        await kubectl.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "inference",
            PLURAL,
            "llama",
            {"spec": {"bounds": {"maxReplicas": 12}, "mode": "dry-run"}},
            _content_type="application/merge-patch+json",
        )
        changed = await until(lambda: (p := store.get("llama")) and p.revision > first.revision and p, what="update")
        assert changed.bounds.max_replicas == 12 and changed.mode == "dry-run"
        await until(
            lambda: kube.objects[RESOURCE, "inference", "llama"]["status"]["revision"] == changed.revision,
            what="the status to carry the new revision",
        )


async def test_deleted_object_removes_the_policy(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any
) -> None:
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", SPEC)
    kube.objects[RESOURCE, "inference", "other"] = policy_object("other", SPEC)
    async with running(crd_source(store, configuration)):
        await until(lambda: store.get("llama") and store.get("other"), what="both policies")
        await kubectl.delete_namespaced_custom_object(GROUP, VERSION, "inference", PLURAL, "llama")
        await until(lambda: store.get("llama") is None, what="the policy to go")
        assert store.get("other") is not None


async def test_invalid_object_is_not_stored_and_its_status_names_the_field(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any
) -> None:
    async with running(crd_source(store, configuration)) as source:
        await until(lambda: source._listed, what="the first list")
        bad = {**SPEC, "bounds": {"minReplicas": 1, "maxReplicas": 0}}
        await create(kubectl, policy_object("llama", bad))
        await create(kubectl, policy_object("Not_A_Name", SPEC))
        await create(kubectl, policy_object("zero", {**SPEC, "bounds": {"minReplicas": 0}}))
        refused = await until(lambda: condition(kube, "llama"), what="the status")
        assert refused["status"] == "False" and refused["reason"] == "Invalid"
        assert "spec.bounds.maxReplicas: Input should be greater than or equal to 1" in refused["message"]
        named = await until(lambda: condition(kube, "Not_A_Name"), what="the status")
        assert named["message"].startswith("metadata.name: String should match pattern")
        cross = await until(lambda: condition(kube, "zero"), what="the status")
        assert cross["message"] == "spec: bounds.min_replicas: 0 needs scale_to_zero.enabled"
        assert store.all() == []
        # Fixing the object makes it a policy, and the condition flips.
        await kubectl.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "inference",
            PLURAL,
            "llama",
            {"spec": {"bounds": {"maxReplicas": 4}}},
            _content_type="application/merge-patch+json",
        )
        await until(lambda: store.get("llama"), what="the fixed policy")
        await until(lambda: condition(kube, "llama")["status"] == "True", what="Accepted=True")


async def test_policy_owned_by_rest_is_refused_until_rest_lets_go(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator
) -> None:
    by_rest = await store.create(Policy.model_validate({**SPEC, "id": "llama"}), source=Source.REST, actor="alice")
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", {**SPEC, "mode": "dry-run"})
    async with running(crd_source(store, configuration, resync_s=0.1)):
        refused = await until(lambda: condition(kube, "llama"), what="the status")
        assert refused["status"] == "False" and refused["reason"] == "OwnedByOtherSource"
        assert "owned by the rest source" in refused["message"]
        assert store.get("llama") == by_rest and store.entry("llama").source is Source.REST
        # Once the REST policy is deleted, the next resync lets the object take over.
        await store.delete("llama", source=Source.REST)
        taken = await until(lambda: store.get("llama"), what="the CRD to take over")
        assert store.entry("llama").source is Source.CRD and taken.mode == "dry-run"
        await until(lambda: condition(kube, "llama")["status"] == "True", what="Accepted=True")


async def test_same_name_in_two_namespaces_the_older_object_wins(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator
) -> None:
    kube.objects[RESOURCE, "team-b", "llama"] = policy_object(
        "llama", {**SPEC, "mode": "dry-run"}, namespace="team-b", creationTimestamp="2025-01-02T00:00:00Z"
    )
    kube.objects[RESOURCE, "team-a", "llama"] = policy_object(
        "llama", SPEC, namespace="team-a", creationTimestamp="2025-01-03T00:00:00Z"
    )
    async with running(crd_source(store, configuration)):
        duplicate = await until(lambda: condition(kube, "llama", "team-a"), what="the status")
        assert duplicate["reason"] == "DuplicateName" and "team-b/llama" in duplicate["message"]
        assert store.get("llama").mode == "dry-run"


async def test_only_the_configured_namespace_is_watched(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any
) -> None:
    kube.objects[RESOURCE, "other", "elsewhere"] = policy_object("elsewhere", SPEC, namespace="other")
    async with running(crd_source(store, configuration, namespace="inference")) as source:
        await until(lambda: source._listed, what="the first list")
        await create(kubectl, policy_object("llama", SPEC))
        await until(lambda: store.get("llama"), what="the policy")
        assert store.get("elsewhere") is None and ("other", "elsewhere") not in source.objects


async def test_listing_at_start_removes_crd_policies_whose_object_is_gone(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator
) -> None:
    gone = Policy.model_validate({**SPEC, "id": "gone"})
    await store.sync([gone], source=Source.CRD)
    await store.create(Policy.model_validate({**SPEC, "id": "by-file"}), source=Source.FILE)
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", SPEC)
    async with running(crd_source(store, configuration)):
        await until(lambda: store.get("llama") and store.get("gone") is None, what="the re-sync")
        assert store.get("by-file") is not None


async def test_an_unreachable_api_removes_nothing_and_is_retried(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator
) -> None:
    kept = Policy.model_validate({**SPEC, "id": "kept"})
    await store.sync([kept], source=Source.CRD)
    # The first three lists fail; then the emulator answers.
    kube.override[km.method.GET][:3] << km.Response(status=503, payload={"kind": "Status", "code": 503})
    syncs_after: list[int] = []  # how many GETs the API had seen at each sync
    real_sync = store.sync

    async def sync(*args: Any, **kwargs: Any) -> Any:
        syncs_after.append(len([r for r in kube if r.method == km.method.GET]))
        return await real_sync(*args, **kwargs)

    store.sync = sync  # type: ignore[method-assign]
    source = crd_source(store, configuration, resync_s=0.01)  # many chances to sync too early
    async with running(source):
        await until(lambda: store.get("kept") is None, what="the sync after a list that works")
    assert syncs_after and min(syncs_after) >= 4  # nothing synced (so nothing removed) before that


async def test_expired_resource_version_lists_again_and_keeps_watching(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, kubectl: Any, caplog: Any
) -> None:
    expired = 1

    async def gone(request: km.Request) -> Any:
        nonlocal expired
        if not expired:
            return None
        expired -= 1

        async def stream() -> AsyncIterator[Any]:
            yield {
                "type": "ERROR",
                "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"},
            }

        return stream()

    kube.override[km.method.GET, km.params(watch="True")] << gone
    caplog.set_level(logging.INFO, "hub.policies.crd_watch")
    async with running(crd_source(store, configuration)):
        await until(lambda: expired == 0, what="the expired watch")
        await create(kubectl, policy_object("llama", SPEC))
        await until(lambda: store.get("llama"), what="the policy after the re-list")
    lists = [r for r in kube if r.method == km.method.GET and "watch" not in r.params]
    assert len(lists) >= 2
    assert any("resourceVersion expired; listing again" in r.message for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)  # an expected event, not a failure


async def test_status_is_best_effort_without_rbac(
    store: PolicyStore, configuration: k8s.Configuration, kube: km.KubernetesEmulator, caplog: Any
) -> None:
    kube.override[km.method.PATCH] << km.Response(status=403, payload={"kind": "Status", "code": 403})
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", SPEC)
    kube.objects[RESOURCE, "inference", "bad"] = policy_object("bad", {**SPEC, "signals": []})
    caplog.set_level(logging.WARNING, "hub.policies.crd_watch")
    source = crd_source(store, configuration, resync_s=0.05)
    reconcile, reconciled = source.reconcile, 0

    async def counted(*args: Any) -> dict[Any, Verdict]:
        nonlocal reconciled
        reconciled += 1
        return await reconcile(*args)

    source.reconcile = counted  # type: ignore[method-assign]
    async with running(source):
        await until(lambda: store.get("llama"), what="the policy")
        await until(lambda: source.verdicts.get(("inference", "bad")), what="a verdict")
        after = reconciled
        await until(lambda: reconciled >= after + 3, what="a few resyncs")
    patches = [r for r in kube if r.method == km.method.PATCH]
    assert len(patches) == 1  # tried once, then left alone
    assert sum("cannot write the status" in r.message for r in caplog.records) == 1
    assert source.verdicts[("inference", "bad")].reason == "Invalid"


async def test_kubeconfig_is_read_when_not_in_a_pod(
    store: PolicyStore, kube: km.KubernetesEmulator, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kube.url).rstrip('/')}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: u}}]\n"
    )
    kube.objects[RESOURCE, "inference", "llama"] = policy_object("llama", SPEC)
    async with running(crd_source(store, await kube_configuration(kubeconfig))):
        await until(lambda: store.get("llama"), what="the policy")
    assert all(r.headers.get("Authorization") == "Bearer t" for r in kube)
    with pytest.raises(ConfigurationError, match="HUB_KUBECONFIG"):
        await kube_configuration(tmp_path / "missing")


# --- pure parts ---------------------------------------------------------------------------------


def test_object_spec_takes_camel_or_snake_case_and_the_name_is_the_id() -> None:
    camel = policy_of(policy_object("llama", SPEC))
    snake = policy_of(policy_object("llama", {**SPEC, "bounds": {"min_replicas": 1, "max_replicas": 8}}))
    assert camel == snake and camel.id == "llama"


def test_status_is_not_rewritten_when_the_verdict_is_unchanged() -> None:
    obj = policy_object("llama", SPEC, generation=3)
    verdict = Verdict(True, "Synced", "ok", revision=7)
    status = status_for(obj, verdict)
    assert status is not None and status["observedGeneration"] == 3 and status["revision"] == 7
    assert status_for({**obj, "status": status}, verdict) is None  # no patch, so no event loop
    # A new revision is reported; the condition's transition time stays (its status did not change).
    again = status_for({**obj, "status": status}, Verdict(True, "Synced", "ok", revision=8))
    assert again is not None
    assert again["conditions"][0]["lastTransitionTime"] == status["conditions"][0]["lastTransitionTime"]
