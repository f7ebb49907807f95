"""``/api/v1/policies`` over a real policy store on a real nats-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore, Source
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.api.keys import PRINCIPAL

pytestmark = pytest.mark.nats

BODY: dict[str, Any] = {
    "id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
    "signals": [{"metric": "ttft", "target": 1.5}], "bounds": {"min_replicas": 1, "max_replicas": 8},
}


@web.middleware
async def as_alice(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
    """Stands in for the auth middleware's contract: it puts the principal on the request."""
    request[PRINCIPAL] = {"name": "alice", "role": "operator"}
    return await handler(request)


@pytest.fixture
async def client(policy_store: PolicyStore) -> AsyncIterator[TestClient]:
    app = make_app(state=FleetState(), decisions=DecisionLog(), policies=policy_store, metrics=HubMetrics(),
                   ready=lambda: {})
    app.middlewares.append(as_alice)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_create_read_list_and_a_duplicate_is_a_conflict(client: TestClient) -> None:
    r = await client.post("/api/v1/policies", json=BODY)
    created = await r.json()
    assert r.status == 201 and created["revision"] >= 1 and r.headers["ETag"] == f'"{created["revision"]}"'
    assert created["source"] == "rest" and created["updated_by"] == "alice" and created["created_at"]
    assert Policy.model_validate({k: v for k, v in created.items() if k not in
                                  ("source", "updated_by", "created_at", "updated_at")}).bounds.max_replicas == 8
    r = await client.post("/api/v1/policies", json=BODY)
    assert r.status == 409 and (await r.json())["details"] == {"id": "llama", "owner": "rest"}
    got = await (await client.get("/api/v1/policies/llama")).json()
    assert got == created
    listed = await (await client.get("/api/v1/policies")).json()
    assert listed == {"policies": [created]}
    r = await client.get("/api/v1/policies/nope")
    assert r.status == 404 and (await r.json())["details"] == {"id": "nope"}


async def test_update_needs_the_current_revision(client: TestClient) -> None:
    created = await (await client.post("/api/v1/policies", json=BODY)).json()
    rev = created["revision"]
    changed = BODY | {"bounds": {"min_replicas": 2, "max_replicas": 12}}
    r = await client.put("/api/v1/policies/llama", json=changed)
    assert r.status == 428 and (await r.json())["details"]["field"] == "revision"
    r = await client.put("/api/v1/policies/llama", json=changed, headers={"If-Match": f'"{rev}"'})
    updated = await r.json()
    assert r.status == 200 and updated["revision"] > rev and updated["bounds"]["max_replicas"] == 12
    assert updated["created_at"] == created["created_at"] and updated["updated_at"] > created["updated_at"]
    # The revision read earlier is stale now: 409 with the current one.
    r = await client.put("/api/v1/policies/llama", json=changed, headers={"If-Match": f'"{rev}"'})
    assert r.status == 409 and (await r.json())["details"] == {"id": "llama", "expected": rev,
                                                               "current": updated["revision"]}
    # GET, edit, PUT: the body's revision is the precondition, and the read-only fields ride along.
    again = updated | {"description": "edited"}
    r = await client.put("/api/v1/policies/llama", json=again)
    assert r.status == 200 and (await r.json())["description"] == "edited"
    r = await client.put("/api/v1/policies/llama", json=again)
    assert r.status == 409
    r = await client.put("/api/v1/policies/llama", json=again, headers={"If-Match": "*"})
    assert r.status == 200


async def test_update_refuses_a_mismatched_id_a_bad_header_and_a_missing_policy(client: TestClient) -> None:
    await client.post("/api/v1/policies", json=BODY)
    r = await client.put("/api/v1/policies/llama", json=BODY | {"id": "other"}, headers={"If-Match": "*"})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "id"
    r = await client.put("/api/v1/policies/llama", json=BODY, headers={"If-Match": "W/abc"})
    assert r.status == 400 and (await r.json())["details"]["field"] == "If-Match"
    r = await client.put("/api/v1/policies/llama", json=BODY | {"revision": 3}, headers={"If-Match": '"4"'})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "revision"
    r = await client.put("/api/v1/policies/nope", json=BODY | {"id": "nope"}, headers={"If-Match": "*"})
    assert r.status == 404


async def test_a_policy_owned_by_a_file_or_crd_is_a_409_naming_the_owner(
    client: TestClient, policy_store: PolicyStore
) -> None:
    await policy_store.create(Policy.model_validate(BODY), source=Source.FILE)
    await policy_store.create(Policy.model_validate(BODY | {"id": "by-crd"}), source=Source.CRD)
    for path, owner in (("/api/v1/policies/llama", "file"), ("/api/v1/policies/by-crd", "crd")):
        body = BODY | {"id": path.rsplit("/", 1)[1]}
        for r in (await client.put(path, json=body, headers={"If-Match": "*"}),
                  await client.patch(path, json={"mode": "dry-run"}),
                  await client.delete(path)):
            assert r.status == 409, await r.text()
            error = await r.json()
            assert error["details"]["owner"] == owner and f"owned by its {owner} source" in error["error"]
    assert (await (await client.get("/api/v1/policies/llama")).json())["source"] == "file"


async def test_patch_toggles_dry_run(client: TestClient, policy_store: PolicyStore) -> None:
    created = await (await client.post("/api/v1/policies", json=BODY)).json()
    read = {"If-Match": f'"{created["revision"]}"'}
    r = await client.patch("/api/v1/policies/llama", json={"mode": "dry-run"}, headers=read)
    patched = await r.json()
    assert r.status == 200 and patched["mode"] == "dry-run" and policy_store.get("llama").mode == "dry-run"
    r = await client.patch("/api/v1/policies/llama", json={"mode": "enforce"}, headers=read)
    assert r.status == 409
    r = await client.patch("/api/v1/policies/llama", json={"mode": "shadow"})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "mode"
    r = await client.patch("/api/v1/policies/llama", json={"mode": "enforce", "bounds": {}})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "bounds"
    r = await client.patch("/api/v1/policies/llama", json={"mode": "enforce"})
    assert r.status == 200 and policy_store.get("llama").mode == "enforce"


async def test_delete_with_and_without_a_precondition(client: TestClient, policy_store: PolicyStore) -> None:
    created = await (await client.post("/api/v1/policies", json=BODY)).json()
    r = await client.delete("/api/v1/policies/llama", headers={"If-Match": f'"{created["revision"] + 1}"'})
    assert r.status == 409 and (await r.json())["details"]["current"] == created["revision"]
    r = await client.delete("/api/v1/policies/llama", headers={"If-Match": f'"{created["revision"]}"'})
    assert r.status == 200 and await r.json() == {"message": "policy deleted", "id": "llama",
                                                  "revision": created["revision"]}
    assert policy_store.get("llama") is None
    assert (await client.delete("/api/v1/policies/llama")).status == 404


@pytest.mark.parametrize(("body", "field"), [
    (BODY | {"bounds": {"min_replicas": 5, "max_replicas": 2}}, "bounds.max_replicas"),
    (BODY | {"bounds": {"max_replicas": 0}}, "bounds.max_replicas"),
    (BODY | {"nonsense": 1}, "nonsense"),
    (BODY | {"signals": [{"metric": "qps", "target": 1}]}, "signals.0.metric"),
    (BODY | {"signals": [{"metric": "cpu", "target": 170}]}, "signals.0.target"),
    (BODY | {"bounds": {"min_replicas": 0}}, "bounds.min_replicas"),
    ({k: v for k, v in BODY.items() if k != "targets"}, "targets"),
    (BODY | {"id": "Not An Id"}, "id"),
    ([BODY], "body"),
])
async def test_an_invalid_body_is_a_400_naming_the_field(client: TestClient, body: Any, field: str) -> None:
    r = await client.post("/api/v1/policies", json=body)
    error = await r.json()
    assert r.status == 400 and error["error"] == "invalid body", error
    assert field in [d["field"] for d in error["details"]], error


async def test_malformed_or_missing_json_is_a_400(client: TestClient) -> None:
    for data in (b"{not json", b"", b"\xff"):
        r = await client.post("/api/v1/policies", data=data, headers={"Content-Type": "application/json"})
        error = await r.json()
        assert r.status == 400 and error["details"][0]["field"] == "body", error


@pytest.mark.parametrize(("header", "status"), [('"1"', 200), ("1", 200), ("*", 200), ('"1', 400), ('W/"1"', 400),
                                                ('"a"', 400), ("", 400)])
async def test_if_match_takes_a_revision_as_an_entity_tag(client: TestClient, header: str, status: int) -> None:
    created = await (await client.post("/api/v1/policies", json=BODY)).json()
    assert created["revision"] == 1  # a fresh bucket
    r = await client.patch("/api/v1/policies/llama", json={"mode": "dry-run"}, headers={"If-Match": header})
    assert r.status == status, await r.text()


# --- what the store could not keep is refused up front (issue 13) ----------------------------------

_SIGNAL = {"metric": "ttft", "target": 1.5}


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "Infinity"])
@pytest.mark.parametrize(("patch", "field"), [
    (lambda v: {"signals": [_SIGNAL | {"target": v}]}, "signals.0.target"),
    (lambda v: {"signals": [_SIGNAL | {"capacity_per_replica": {"H100": v}}]}, "signals.0.capacity_per_replica.H100"),
    (lambda v: {"placement": {"prices": {"*": {"H100": v}}}}, "placement.prices.*.H100"),
    (lambda v: {"panic": {"panic_threshold_percent": v}}, "panic.panic_threshold_percent"),
])
async def test_nan_and_infinity_are_a_400_naming_the_field_and_nothing_is_stored(
    client: TestClient, policy_store: PolicyStore, value: str, patch: Callable[[str], dict[str, Any]], field: str
) -> None:
    # Once: 201, stored as null, ignored by the hub; after a restart GET said 404 and POST 409.
    r = await client.post("/api/v1/policies", json=BODY | patch(value))
    error = await r.json()
    assert r.status == 400 and field in [d["field"] for d in error["details"]], error
    assert "finite" in next(d["message"] for d in error["details"] if d["field"] == field)
    assert policy_store.entry("llama") is None and (await client.get("/api/v1/policies/llama")).status == 404
    assert (await client.post("/api/v1/policies", json=BODY)).status == 201  # the id is not stuck


@pytest.mark.parametrize(("patch", "field"), [
    ({"bounds": {"min_replicas": 1, "max_replicas": 2**64 + 1}}, "bounds.max_replicas"),
    ({"signals": [_SIGNAL | {"target": 1e300}]}, "signals.0.target"),
    ({"placement": {"weights": {"a": 2**70}}}, "placement.weights.a"),
])
async def test_unbounded_numbers_are_a_400_naming_the_field(
    client: TestClient, patch: dict[str, Any], field: str
) -> None:
    r = await client.post("/api/v1/policies", data=json.dumps(BODY | patch),
                          headers={"Content-Type": "application/json"})
    error = await r.json()
    assert r.status == 400 and field in [d["field"] for d in error["details"]], error


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_declared_json_is_a_415_naming_the_header(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in (("POST", "/api/v1/policies"), ("POST", "/api/v1/autoscaling"),
                         ("PUT", "/api/v1/policies/llama"), ("PATCH", "/api/v1/policies/llama")):
        r = await client.request(method, path, data=json.dumps(BODY).encode(), headers=headers)
        error = await r.json()
        assert r.status == 415 and error["details"][0]["field"] == "Content-Type", (method, path, error)
    r = await client.post("/api/v1/policies", data=json.dumps(BODY), headers={"Content-Type": "application/json"})
    assert r.status == 201
