"""The fleet, decision and health endpoints, over a real policy store on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore, Source
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.api.fleet import ClusterList, WorkloadList
from tests.hub.factories import node, report, workload

pytestmark = pytest.mark.nats


@pytest.fixture
async def client(policy_store: PolicyStore) -> AsyncIterator[TestClient]:
    state = FleetState()
    state.ingest(report("a", [workload(waiting=3, gpu_util=0.9)], [node("H100", 6), node("H100", 2, name="n2")]))
    state.ingest(report("b", [workload(variants={"L4": (3, 1)}), workload("mistral")], [node("L4", 4)]))
    decisions = DecisionLog()
    decisions.add(Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="enforce",
                           current_replicas=2, desired_replicas=4, reason="r", inputs={},
                           placement_before={"a/H100": 2}, placement_after={"a/H100": 4}, id="d1"))
    app = make_app(state=state, decisions=decisions, policies=policy_store, metrics=HubMetrics(),
                   ready=lambda: {"nats": "not connected to NATS"})
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_clusters_show_freshness_gpu_inventory_and_replicas_by_gpu_type(client: TestClient) -> None:
    body = await (await client.get("/api/v1/clusters")).json()
    ClusterList.model_validate(body)
    a, b = body["clusters"]
    assert a["cluster_id"] == "a" and not a["stale"] and 0 <= a["age_s"] < 5
    assert a["free_gpus"] == {"H100": 8}
    assert a["gpus_by_type"] == {"H100": {"capacity_gpus": 16, "allocatable_gpus": 16, "free_gpus": 8}}
    assert a["replicas_by_gpu_type"] == {"H100": 2} and b["replicas_by_gpu_type"] == {"H100": 2, "L4": 3}
    only_b = await (await client.get("/api/v1/clusters?cluster=b")).json()
    assert [c["cluster_id"] for c in only_b["clusters"]] == ["b"]


async def test_workloads_show_replicas_samples_and_the_bound_policy_with_its_mode(
    client: TestClient, policy_store: PolicyStore
) -> None:
    body = await (await client.get("/api/v1/workloads?workload=inference/llama")).json()
    WorkloadList.model_validate(body)
    (w,) = body["workloads"]
    assert w["replicas_by_gpu_type"] == {"H100": 2, "L4": 3} and w["ready_by_gpu_type"] == {"H100": 2, "L4": 1}
    assert w["placement"] == {"a/H100": 2, "b/L4": 3}
    samples = w["clusters"]["a"]["samples"]
    assert samples["requests_waiting"] == 3 and samples["gpu_utilization_ratio"] == 0.9 and samples["gpu_count"] == 2
    assert samples["kv_cache_usage_ratio"] is None  # missing stays null
    assert w["clusters"]["b"]["samples"]["gpu_utilization_ratio"] is None and w["clusters"]["b"]["kind"] == "Deployment"
    assert w["policy"] is None and w["last_decision"]["id"] == "d1"

    by_label = Policy.model_validate({"id": "a-labels", "signals": [{"metric": "ttft", "target": 1}],
                                      "targets": {"selector": {"match_labels": {"app": "x"}}}})
    by_name = Policy.model_validate({"id": "z-name", "mode": "dry-run", "signals": [{"metric": "ttft", "target": 1}],
                                     "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]}})
    await policy_store.create(by_name, source=Source.FILE)
    await policy_store.create(by_label, source=Source.REST)
    (w,) = (await (await client.get("/api/v1/workloads?workload=inference/llama")).json())["workloads"]
    signals = w["policy"].pop("signals")
    assert w["policy"] == {"id": "z-name", "revision": w["policy"]["revision"], "mode": "dry-run", "source": "file",
                           "matched_by": "name", "overridden": []}
    assert [(s["name"], s["metric"], s["target"]) for s in signals] == [("ttft_p95", "ttft", 1.0)]
    in_b = (await (await client.get("/api/v1/workloads?cluster=b")).json())["workloads"]
    assert [x["workload"] for x in in_b] == ["inference/llama", "inference/mistral"]
    in_a = (await (await client.get("/api/v1/workloads?cluster=a")).json())["workloads"]
    assert [x["workload"] for x in in_a] == ["inference/llama"]


async def test_decisions_are_served_and_explained(client: TestClient) -> None:
    d = await (await client.get("/api/v1/decisions/d1")).json()
    assert d["action"] == "scale_up" and d["placement_after"] == {"a/H100": 4}
    listed = await (await client.get("/api/v1/decisions?workload=inference/llama&limit=5")).json()
    assert [x["id"] for x in listed["decisions"]] == ["d1"]


async def test_errors_are_json_with_their_own_status_and_name_the_field(client: TestClient) -> None:
    r = await client.get("/api/v1/decisions?limit=zero")
    assert r.status == 400 and (await r.json())["details"]["field"] == "limit"
    r = await client.get("/api/v1/clusters?cluster=a&cluster=b")
    assert r.status == 400 and (await r.json())["details"] == {"field": "cluster", "message": "give it at most once"}
    r = await client.get("/api/v1/decisions/nope")
    assert r.status == 404 and (await r.json())["error"] == "decision not found"
    r = await client.post("/healthz")
    assert r.status == 405 and "error" in await r.json()
    r = await client.get("/nowhere")
    assert r.status == 404 and (await r.json())["details"] == {"path": "/nowhere"}
    r = await client.get("/readyz")
    assert r.status == 503 and r.content_type == "application/json"
    assert (await r.json())["details"]["problems"] == {"nats": "not connected to NATS"}


async def test_metrics_are_prometheus_text(client: TestClient) -> None:
    r = await client.get("/metrics")
    assert r.status == 200 and "fleetscale_hub_reports_total" in await r.text()


async def test_decisions_filter_by_cluster_and_time_and_name_a_bad_field() -> None:
    from datetime import timedelta

    from tests.hub.factories import T0, FixedPolicies

    log = DecisionLog()
    for i, cluster in enumerate(["a", "b", "a"]):
        log.add(Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="enforce",
                         current_replicas=1, desired_replicas=2, reason="r", inputs={}, placement_before={},
                         placement_after={f"{cluster}/H100": 2}, id=f"d{i}", at=T0 + timedelta(minutes=i)))
    app = make_app(state=FleetState(), decisions=log, policies=FixedPolicies(), metrics=HubMetrics(),  # type: ignore[arg-type]
                   ready=lambda: {})
    async with TestClient(TestServer(app)) as c:
        async def ids(query: str) -> list[str]:
            r = await c.get(f"/api/v1/decisions?{query}")
            assert r.status == 200, await r.text()
            return [d["id"] for d in (await r.json())["decisions"]]

        assert await ids("cluster=a") == ["d2", "d0"]
        assert await ids("since=2026-11-22T12:01:00Z") == ["d2", "d1"]
        assert await ids("until=2026-11-22T12:01:00%2B00:00") == ["d0"]
        assert await ids("workload=inference/llama&cluster=b&since=2026-11-22T11:00:00Z&until=2026-11-23T00:00:00Z") \
            == ["d1"]
        bad = [
            ("since=yesterday", "since"),
            ("until=2026-11-22T12:00:00", "until"),  # no time zone
            ("cluster=Not_A.Cluster", "cluster"),
            ("since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z", "until"),
        ]
        for query, field in bad:
            r = await c.get(f"/api/v1/decisions?{query}")
            body = await r.json()
            assert r.status == 400 and body["details"]["field"] == field, query
