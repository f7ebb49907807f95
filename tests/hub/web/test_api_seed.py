"""The seed API (``/api/v1/autoscaling``) over a real policy store on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore, Source
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.api.seed import AutoscalerList, AutoscalingMetrics, AutoscalingResponse, autoscaler_id
from shared.messages import (
    CommandResult,
    ResultReason,
    ResultStatus,
    Samples,
    VariantStatus,
    WorkloadRef,
    WorkloadReport,
)
from tests.hub.factories import node, report

pytestmark = pytest.mark.nats

# The seed guide's first example, without its storage targets (refused: no storage telemetry).
SEED = {
    "workload_name": "nginx-deployment", "workload_namespace": "default", "workload_type": "Deployment",
    "min_replicas": 2, "max_replicas": 10,
    "target_cpu_percent": 70, "target_memory_percent": 80, "target_gpu_percent": 75,
    "scale_up_policy": {"stabilization_window_seconds": 60, "max_scale_change": 3},
    "scale_down_policy": {"stabilization_window_seconds": 300, "max_scale_change": 2},
}
STORAGE = {"target_storage_read_throughput_mbps": 500, "target_storage_write_throughput_mbps": 200,
           "target_storage_iops": 3000}
ID = autoscaler_id("default", "nginx-deployment")
KEY = "default/nginx-deployment"


def nginx(gpu_util: float | None, replicas: int = 3) -> WorkloadReport:
    gpus = [{"gpu_id": f"g{i}", "utilization_ratio": gpu_util} for i in range(replicas)] if gpu_util is not None else []
    return WorkloadReport(
        workload=WorkloadRef(namespace="default", name="nginx-deployment"), desired_replicas=replicas,
        ready_replicas=replicas, variants=(VariantStatus(gpu_type="H100", desired_replicas=replicas,
                                                         ready_replicas=replicas),),
        samples=Samples.model_validate({"gpus": gpus, "cpu_utilization_ratio": 0.5}))


@pytest.fixture
def state() -> FleetState:
    return FleetState()


@pytest.fixture
def log() -> DecisionLog:
    return DecisionLog()


@pytest.fixture
async def client(policy_store: PolicyStore, state: FleetState, log: DecisionLog) -> AsyncIterator[TestClient]:
    app = make_app(state=state, decisions=log, policies=policy_store, metrics=HubMetrics(), ready=lambda: {})
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_the_seed_example_creates_a_rest_policy_and_answers_in_the_seed_shape(
    client: TestClient, policy_store: PolicyStore
) -> None:
    r = await client.post("/api/v1/autoscaling", json=SEED)
    body = await r.json()
    assert r.status == 201, body
    AutoscalingResponse.model_validate(body)
    assert body["autoscaling_id"] == ID and ID.startswith("autoscaler-") and len(ID) == len("autoscaler-") + 8
    assert body["status"] == "active" and body["message"] == "Autoscaler created successfully"
    details = body["details"]
    # Nothing reports the workload yet: missing, not zero.
    assert details["current_replicas"] is None and details["current_gpu_percent"] is None
    assert details["scale_up_count"] == 0 and details["created_at"]

    policy = policy_store.get(ID)
    assert policy_store.entry(ID).source is Source.REST
    assert [w.key for w in policy.targets.workloads] == [KEY]
    assert (policy.bounds.min_replicas, policy.bounds.max_replicas) == (2, 10)
    assert {s.metric.value: s.target for s in policy.signals} == {"cpu": 70, "memory": 80, "gpu_utilization": 75}
    up, down = policy.behavior.behavior().scale_up, policy.behavior.behavior().scale_down
    assert up.stabilization_window_seconds == 60 and [(p.value, p.period_seconds) for p in up.policies] == [(3, 15)]
    assert down.stabilization_window_seconds == 300
    assert [(p.value, p.period_seconds) for p in down.policies] == [(2, 15)]
    assert not policy.panic.enabled
    listed = await (await client.get(f"/api/v1/policies/{ID}")).json()
    assert listed["source"] == "rest"

    r = await client.post("/api/v1/autoscaling", json=SEED)
    assert r.status == 409 and (await r.json())["details"]["id"] == ID


async def test_status_comes_from_live_state_and_the_decision_log(
    client: TestClient, state: FleetState, log: DecisionLog
) -> None:
    await client.post("/api/v1/autoscaling", json=SEED)
    state.ingest(report("a", [nginx(0.9)], [node("H100", 4)], sent_at=datetime.now(UTC)))
    later = datetime.now(UTC) + timedelta(seconds=1)

    def decision(action_to: int, applied: bool, policy_id: str = ID, mode: str = "enforce") -> Decision:
        d = Decision(workload=KEY, policy_id=policy_id, policy_revision=1, mode=mode, current_replicas=3,
                     desired_replicas=action_to, reason="r", inputs={}, placement_before={}, placement_after={},
                     commands=["c"], at=later)
        if applied:
            d = d.with_result(CommandResult(command_id="c", cluster_id="a", workload=WorkloadRef(
                namespace=KEY.split("/")[0], name=KEY.split("/")[1]), status=ResultStatus.APPLIED,
                reason=ResultReason.APPLIED))
        return d

    log.add(decision(2, applied=True))
    log.add(decision(5, applied=False))  # sent, not applied: not a scale yet
    log.add(decision(5, applied=True, policy_id="someone-else"))
    log.add(decision(6, applied=True))
    body = await (await client.get(f"/api/v1/autoscaling/{ID}")).json()
    AutoscalingResponse.model_validate(body)
    details = body["details"]
    assert details["current_replicas"] == 3 and details["desired_replicas"] == 6
    assert details["current_gpu_percent"] == 90 and details["current_cpu_percent"] == 50
    assert details["current_memory_percent"] is None  # not measured: null, never 0
    assert details["scale_up_count"] == 1 and details["scale_down_count"] == 1
    assert datetime.fromisoformat(details["last_scale_time"]) == later
    assert details["updated_at"] is not None

    listed = await (await client.get("/api/v1/autoscaling")).json()
    AutoscalerList.model_validate(listed)
    assert listed["count"] == 1 and listed["autoscalers"][0] == body
    metrics = await (await client.get("/api/v1/autoscaling/metrics")).json()
    AutoscalingMetrics.model_validate(metrics)
    assert metrics == {"total_autoscalers": 1, "active_autoscalers": 1, "total_scale_ups": 1,
                       "total_scale_downs": 1, "average_cpu_utilization": 50.0}

    await client.patch(f"/api/v1/policies/{ID}", json={"mode": "dry-run"})
    body = await (await client.get(f"/api/v1/autoscaling/{ID}")).json()
    assert body["status"] == "inactive" and "dry-run" in body["message"]
    metrics = await (await client.get("/api/v1/autoscaling/metrics")).json()
    assert metrics["active_autoscalers"] == 0 and metrics["average_cpu_utilization"] is None


async def test_delete_and_not_found_in_the_seed_shape(client: TestClient, policy_store: PolicyStore) -> None:
    await client.post("/api/v1/autoscaling", json=SEED)
    r = await client.delete(f"/api/v1/autoscaling/{ID}")
    assert r.status == 200 and await r.json() == {"message": "Autoscaler deleted successfully", "autoscaler_id": ID}
    assert policy_store.get(ID) is None
    r = await client.delete(f"/api/v1/autoscaling/{ID}")
    assert r.status == 404 and await r.json() == {"error": "Failed to delete autoscaler",
                                                  "details": f"autoscaler {ID} not found"}
    r = await client.get("/api/v1/autoscaling/autoscaler-00000000")
    assert r.status == 404 and (await r.json())["error"] == "Autoscaler not found"
    assert await (await client.get("/api/v1/autoscaling")).json() == {"autoscalers": [], "count": 0}
    assert (await (await client.get("/api/v1/autoscaling/metrics")).json())["average_cpu_utilization"] is None


async def test_policies_of_other_sources_and_shapes(client: TestClient, policy_store: PolicyStore) -> None:
    by_file = Policy.model_validate({"id": "nginx", "signals": [{"metric": "ttft", "target": 1}],
                                     "targets": {"workloads": [{"namespace": "default", "name": "nginx-deployment"}]}})
    by_label = Policy.model_validate({"id": "labels", "signals": [{"metric": "ttft", "target": 1}],
                                      "targets": {"selector": {"match_labels": {"app": "x"}}}})
    await policy_store.create(by_file, source=Source.FILE)
    await policy_store.create(by_label, source=Source.REST)
    r = await client.post("/api/v1/autoscaling", json=SEED)
    assert r.status == 409 and (await r.json())["details"] == {"workload": KEY, "policy_id": "nginx", "source": "file"}
    listed = await (await client.get("/api/v1/autoscaling")).json()
    assert [a["autoscaling_id"] for a in listed["autoscalers"]] == ["nginx"]
    r = await client.delete("/api/v1/autoscaling/nginx")
    assert r.status == 409 and (await r.json())["details"]["owner"] == "file"
    r = await client.get("/api/v1/autoscaling/labels")
    assert r.status == 404 and "/api/v1/policies/labels" in (await r.json())["details"]


@pytest.mark.parametrize(("change", "field"), [
    (STORAGE, "target_storage_read_throughput_mbps"),
    ({"target_storage_iops": 3000}, "target_storage_iops"),
    ({"workload_type": "deployment"}, "workload_type"),
    ({"workload_name": None}, "workload_name"),
    ({"workload_name": "Nginx_Deployment"}, "workload_name"),
    ({"min_replicas": 0}, "min_replicas"),
    ({"max_replicas": 1}, "max_replicas"),
    ({"target_cpu_percent": 170}, "target_cpu_percent"),
    ({"target_cpu_percent": 0, "target_memory_percent": None, "target_gpu_percent": 0},
     "target_cpu_percent|target_memory_percent|target_gpu_percent"),
    ({"scale_up_policy": {"max_scale_change": -1}}, "scale_up_policy.max_scale_change"),
    ({"scale_up_policy": {"cooldown": 5}}, "scale_up_policy.cooldown"),
    ({"replicas": 3}, "replicas"),
])
async def test_bad_seed_bodies_are_400_in_the_seed_shape_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in (SEED | change).items() if v is not None or k != "workload_name"}
    r = await client.post("/api/v1/autoscaling", json=body)
    error = await r.json()
    assert r.status == 400 and set(error) == {"error", "details"} and error["error"] == "Invalid request format"
    assert field in [d["field"] for d in error["details"]], error
    if field.startswith("target_storage"):
        assert all("no storage I/O telemetry" in d["message"] for d in error["details"])
        assert len(error["details"]) == sum(1 for k in change if k.startswith("target_storage"))


async def test_zero_means_unset_as_in_the_seed(client: TestClient, policy_store: PolicyStore) -> None:
    body = SEED | {k: 0 for k in STORAGE} | {"target_memory_percent": 0,
                                             "scale_down_policy": {"stabilization_window_seconds": 0,
                                                                   "max_scale_change": 0}}
    r = await client.post("/api/v1/autoscaling", json=body)
    assert r.status == 201, await r.json()
    policy = policy_store.get(ID)
    assert {s.metric.value for s in policy.signals} == {"cpu", "gpu_utilization"}
    down = policy.behavior.behavior().scale_down
    assert down.stabilization_window_seconds == 300  # the seed's (and the HPA's) default
