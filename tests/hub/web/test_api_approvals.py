"""``/api/v1/approvals`` through the real app and its auth: who may settle, what the record keeps, and
4xx JSON naming why for bad ids, bad bodies and decisions that are no longer pending."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.service import api_guard
from hub.settings import HubSettings
from hub.web.api import make_app
from tests.hub.control.test_approvals import World, policy
from tests.hub.web.test_auth import ADMIN, OPERATOR, TOKENS, VIEWER, bearer, write_tokens


@pytest.fixture
def world() -> World:
    return World(policy())


@pytest.fixture
async def client(tmp_path: Path, world: World) -> AsyncIterator[TestClient]:
    settings = HubSettings(auth_tokens_file=write_tokens(tmp_path / "tokens.yaml", TOKENS))
    access, _ = api_guard(settings, world.metrics)
    app = make_app(state=world.state, decisions=world.decisions, policies=world.policies,  # type: ignore[arg-type]
                   metrics=world.metrics, ready=lambda: {}, access=access, approvals=world.approvals)
    async with TestClient(TestServer(app)) as c:
        yield c


async def pending_id(world: World, waiting: float = 40.0) -> str:
    world.load(waiting)
    (decision,) = await world.ev.evaluate(tick=True)
    return decision.id


async def test_an_operator_approves_and_the_record_names_them(client: TestClient, world: World) -> None:
    decision_id = await pending_id(world)
    r = await client.get("/api/v1/approvals", headers=bearer(VIEWER))
    assert r.status == 200
    (listed,) = (await r.json())["approvals"]
    assert listed["id"] == decision_id and listed["approval"]["state"] == "pending" and listed["mode"] == "approval"
    assert (await (await client.get("/api/v1/approvals?workload=inference/other",
                                    headers=bearer(VIEWER))).json()) == {"approvals": []}

    r = await client.post(f"/api/v1/approvals/{decision_id}/approve", headers=bearer(VIEWER))
    assert r.status == 403 and (await r.json())["details"]["required_role"] == "operator"
    assert world.bus.sent == []

    r = await client.post(f"/api/v1/approvals/{decision_id}/approve", headers=bearer(OPERATOR),
                          json={"comment": "ok by me"})
    assert r.status == 200
    body = await r.json()
    assert body["approval"]["state"] == "approved" and body["approval"]["by"] == "ci"
    assert body["approval"]["comment"] == "ok by me" and body["approval"]["at"]
    assert body["commands"] == [c.command_id for c in world.bus.sent] and len(world.bus.sent) == 1
    stored = await (await client.get(f"/api/v1/decisions/{decision_id}", headers=bearer(VIEWER))).json()
    assert stored["approval"]["by"] == "ci" and stored["commands"] == body["commands"]

    r = await client.post(f"/api/v1/approvals/{decision_id}/approve", headers=bearer(ADMIN))
    assert r.status == 409
    body = await r.json()
    assert body["error"] == "decision is not pending: approved" and body["details"]["reason"] == "approved"
    assert len(world.bus.sent) == 1


async def test_reject_without_a_body(client: TestClient, world: World) -> None:
    decision_id = await pending_id(world)
    r = await client.post(f"/api/v1/approvals/{decision_id}/reject", headers=bearer(ADMIN))
    assert r.status == 200
    body = await r.json()
    assert (body["approval"]["state"], body["approval"]["by"], body["approval"]["comment"]) == (
        "rejected", "alice", None)
    assert world.bus.sent == [] and world.metrics.approvals.labels("rejected")._value.get() == 1


async def test_stale_decisions_answer_409_naming_why(client: TestClient, world: World) -> None:
    decision_id = await pending_id(world)
    world.clock.now += timedelta(seconds=61)
    r = await client.post(f"/api/v1/approvals/{decision_id}/approve", headers=bearer(OPERATOR))
    assert r.status == 409 and (await r.json())["details"]["reason"] == "expired"
    fresh = await pending_id(world)
    world.policies.policies = [policy(revision=2)]
    r = await client.post(f"/api/v1/approvals/{fresh}/approve", headers=bearer(OPERATOR))
    body = await r.json()
    assert r.status == 409 and body["details"]["reason"] == "policy_changed"
    assert body["details"]["workload"] == "inference/w" and world.bus.sent == []


async def test_bad_ids_and_bodies_are_4xx_json_naming_the_field(client: TestClient, world: World) -> None:
    decision_id = await pending_id(world)
    r = await client.post("/api/v1/approvals/0123456789abcdef/approve", headers=bearer(OPERATOR))
    assert r.status == 404 and (await r.json()) == {"error": "decision not found",
                                                     "details": {"id": "0123456789abcdef"}}
    r = await client.post(f"/api/v1/approvals/{'x' * 65}/reject", headers=bearer(OPERATOR))
    assert r.status == 400 and (await r.json())["details"]["field"] == "id"
    url = f"/api/v1/approvals/{decision_id}/approve"
    r = await client.post(url, headers=bearer(OPERATOR), json={"comment": 5})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "comment"
    r = await client.post(url, headers=bearer(OPERATOR), json={"by": "someone else"})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "by"  # who approves is the token's
    r = await client.post(url, headers=bearer(OPERATOR), json=["yes"])
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "body"
    r = await client.post(url, headers={**bearer(OPERATOR), "Content-Type": "application/json"}, data=b"{nope")
    assert r.status == 400 and (await r.json())["error"] == "malformed JSON"
    r = await client.post(url, headers={**bearer(OPERATOR), "Content-Type": "text/plain"}, data=b"yes")
    assert r.status == 415
    r = await client.post(url, headers=bearer(OPERATOR), json={"comment": "x" * 1001})
    assert r.status == 400 and (await r.json())["details"][0]["field"] == "comment"
    r = await client.get("/api/v1/approvals?workload=a&workload=b", headers=bearer(VIEWER))
    assert r.status == 400 and (await r.json())["details"]["field"] == "workload"
    assert world.bus.sent == [] and len(world.approvals.pending()) == 1  # none of it settled anything
