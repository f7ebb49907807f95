"""Budgets from every source into a real JetStream budget store: the CRD watch (kmock at the wire), files,
and ownership between them, as for policies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock as km
import pytest
from kubernetes_asyncio import client as k8s

from hub.policies.crd_schema import ACCEPTED, BUDGET_KIND, BUDGET_PLURAL, GROUP, VERSION
from hub.policies.crd_watch import budget_source
from hub.policies.files import BudgetFiles
from hub.policies.store import BudgetStore, OwnershipConflict, Source
from hub.policy.budget import Budget
from shared.bus import Bus, BusOptions
from tests.hub.policies.helpers import until

pytestmark = pytest.mark.nats

RESOURCE = f"{GROUP}/{VERSION}/{BUDGET_PLURAL}"
SPEC: dict[str, Any] = {"team": "search", "workloads": {"namespaces": ["search"]},
                        "caps": {"gpus": {"H100": 8}, "costPerHour": 40.0}}


def budget_object(name: str, spec: dict[str, Any], namespace: str = "inference") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": BUDGET_KIND,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
async def budgets(nats_server: Any) -> AsyncIterator[BudgetStore]:
    async with Bus.connect(BusOptions(url=nats_server.url, name="test")) as bus:
        await bus.ensure_topology()
        yield BudgetStore(await bus.budgets_bucket())


@pytest.fixture
def budget_kube(kmock: km.KubernetesEmulator) -> km.KubernetesEmulator:
    kmock.resources[RESOURCE] = {"kind": BUDGET_KIND, "namespaced": True}
    kmock[km.method.GET, km.params(watch="True")] << kmock._serve_watch
    return kmock


def accepted(kube: km.KubernetesEmulator, name: str) -> dict[str, Any] | None:
    obj = kube.objects[RESOURCE, "inference", name]
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ACCEPTED), None)


async def test_budget_objects_are_watched_into_the_store_with_their_status(
    budgets: BudgetStore, budget_kube: km.KubernetesEmulator
) -> None:
    configuration = k8s.Configuration(host=str(budget_kube.url).rstrip("/"))
    budget_kube.objects[RESOURCE, "inference", "search"] = budget_object("search", SPEC)
    budget_kube.objects[RESOURCE, "inference", "broken"] = budget_object(
        "broken", {**SPEC, "caps": {"gpus": {"H100": -1}}})
    source = budget_source(budgets, configuration, backoff_base_s=0.01, backoff_cap_s=0.05)
    task = asyncio.create_task(source.run())
    try:
        budget = await until(lambda: budgets.get("search"), what="the budget in the store")
        assert isinstance(budget, Budget) and budget.caps.gpus == {"H100": 8} and budget.caps.cost_per_hour == 40.0
        assert budgets.entry("search").source is Source.CRD  # type: ignore[union-attr]
        ok = await until(lambda: accepted(budget_kube, "search"), what="the status")
        assert ok["status"] == "True" and ok["reason"] == "Synced"
        refused = await until(lambda: accepted(budget_kube, "broken"), what="the refusal")
        assert refused["status"] == "False" and refused["reason"] == "Invalid"
        assert "spec.caps.gpus.H100" in refused["message"]
        assert budgets.get("broken") is None
        async with k8s.ApiClient(configuration) as api:
            await k8s.CustomObjectsApi(api).delete_namespaced_custom_object(
                GROUP, VERSION, "inference", BUDGET_PLURAL, "search")
        await until(lambda: budgets.get("search") is None, what="the deleted budget gone")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_budget_files_sync_and_a_rest_budget_is_not_overwritten(budgets: BudgetStore, tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n- id: search\n  workloads: {namespaces: [search]}\n  caps: {gpus: {'*': 4}}\n"
                    "- id: ads\n  workloads: {namespaces: [ads]}\n  caps: {cost_per_hour: 10}\n")
    await budgets.create(Budget.model_validate({"id": "ads", "workloads": {"namespaces": ["x"]},
                                                "caps": {"gpus": {"*": 1}}}), source=Source.REST)
    files = BudgetFiles(budgets, file=path)
    await files.apply()
    assert budgets.get("search").caps.gpus == {"*": 4}  # type: ignore[union-attr]
    assert budgets.entry("ads").source is Source.REST  # type: ignore[union-attr]
    assert [type(e) for e in files.refused] == [OwnershipConflict]
    path.write_text("budgets:\n- id: search\n  workloads: {namespaces: [search]}\n  caps: {gpus: {'*': -2}}\n")
    reading = await files.apply()
    assert "budget #0: caps.gpus.*" in reading.errors[path][0]
    assert budgets.get("search").caps.gpus == {"*": 4}  # type: ignore[union-attr]  # a bad file deletes nothing
