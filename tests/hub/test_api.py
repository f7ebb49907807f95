from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api import make_app
from hub.decisions import Decision, DecisionLog
from hub.metrics import HubMetrics
from hub.state import FleetState
from tests.hub.factories import node, report, workload


class Policies:
    def all(self) -> list[object]:
        return []


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    state = FleetState()
    state.ingest(report("a", [workload(waiting=3)], [node("H100", 6)]))
    decisions = DecisionLog()
    decisions.add(Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="enforce",
                           current_replicas=2, desired_replicas=4, reason="r", inputs={},
                           placement_before={"a/H100": 2}, placement_after={"a/H100": 4}, id="d1"))
    app = make_app(state=state, decisions=decisions, policies=Policies(), metrics=HubMetrics(),  # type: ignore[arg-type]
                   ready=lambda: False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_fleet_endpoints_show_clusters_workloads_and_decisions(client: TestClient) -> None:
    clusters = (await (await client.get("/api/v1/clusters")).json())["clusters"]
    assert clusters[0]["cluster_id"] == "a" and clusters[0]["free_gpus"] == {"H100": 6}
    (w,) = (await (await client.get("/api/v1/workloads")).json())["workloads"]
    assert w["placement"] == {"a/H100": 2} and w["clusters"]["a"]["samples"]["requests_waiting"] == 3
    assert w["clusters"]["a"]["samples"]["kv_cache_usage_ratio"] is None  # missing stays null
    d = await (await client.get("/api/v1/decisions/d1")).json()
    assert d["action"] == "scale_up" and d["placement_after"] == {"a/H100": 4}


async def test_errors_are_json_with_their_own_status_and_name_the_field(client: TestClient) -> None:
    r = await client.get("/api/v1/decisions?limit=zero")
    assert r.status == 400 and (await r.json())["details"]["field"] == "limit"
    r = await client.get("/api/v1/decisions/nope")
    assert r.status == 404 and (await r.json())["error"] == "decision not found"
    r = await client.post("/healthz")
    assert r.status == 405 and "error" in await r.json()
    r = await client.get("/nowhere")
    assert r.status == 404 and (await r.json())["details"] == {"path": "/nowhere"}
    r = await client.get("/readyz")
    assert r.status == 503


async def test_metrics_are_prometheus_text(client: TestClient) -> None:
    r = await client.get("/metrics")
    assert r.status == 200 and "fleetscale_hub_reports_total" in await r.text()


async def test_decisions_filter_by_cluster_and_time_and_name_a_bad_field() -> None:
    from datetime import timedelta

    from tests.hub.factories import T0

    log = DecisionLog()
    for i, cluster in enumerate(["a", "b", "a"]):
        log.add(Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="enforce",
                         current_replicas=1, desired_replicas=2, reason="r", inputs={}, placement_before={},
                         placement_after={f"{cluster}/H100": 2}, id=f"d{i}", at=T0 + timedelta(minutes=i)))
    app = make_app(state=FleetState(), decisions=log, policies=Policies(), metrics=HubMetrics(),  # type: ignore[arg-type]
                   ready=lambda: True)
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
