"""``/api/v1/budgets`` over a real budget store on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.store import BudgetStore, Source
from hub.policy.budget import Budget, BudgetUse
from hub.state import FleetState
from hub.web.api import make_app
from shared.bus import Bus, BusOptions
from shared.natsserver import NatsServer
from tests.hub.web.test_api_policies import as_alice

pytestmark = pytest.mark.nats

BODY: dict[str, Any] = {"id": "search", "team": "search", "workloads": {"namespaces": ["search"]},
                        "caps": {"gpus": {"H100": 8}, "cost_per_hour": 40.0}}


@pytest.fixture
async def store(nats_server: NatsServer) -> AsyncIterator[BudgetStore]:
    async with Bus.connect(BusOptions(url=nats_server.url, name="test")) as bus:
        await bus.ensure_topology()
        yield BudgetStore(await bus.budgets_bucket())


@pytest.fixture
async def client(store: BudgetStore) -> AsyncIterator[TestClient]:
    def uses() -> dict[str, BudgetUse]:
        b = store.get("search")
        return {} if b is None else {"search": BudgetUse(b, ("search/llama",), {"H100": 8, "*": 8}, 32.0)}

    app = make_app(state=FleetState(), decisions=DecisionLog(), policies=None,  # type: ignore[arg-type]
                   metrics=HubMetrics(), ready=lambda: {}, budgets=store, budget_use=uses)
    app.middlewares.append(as_alice)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_create_read_list_update_delete(client: TestClient, store: BudgetStore) -> None:
    r = await client.post("/api/v1/budgets", json=BODY)
    created = await r.json()
    assert r.status == 201 and created["source"] == "rest" and created["updated_by"] == "alice"
    assert created["use"] == {"workloads": ["search/llama"], "gpus": {"H100": 8, "*": 8}, "cost_per_hour": 32.0,
                              "holds_minimums": True, "at_cap": ["8 H100 GPUs"]}
    assert (await client.post("/api/v1/budgets", json=BODY)).status == 409
    assert await (await client.get("/api/v1/budgets/search")).json() == created
    assert await (await client.get("/api/v1/budgets")).json() == {"budgets": [created]}
    r = await client.put("/api/v1/budgets/search", json={**BODY, "caps": {"gpus": {"*": 4}}})
    assert r.status == 428 and (await r.json())["details"]["field"] == "revision"
    r = await client.put("/api/v1/budgets/search", json={**created, "caps": {"gpus": {"*": 4}}})
    assert r.status == 200 and (await r.json())["caps"]["gpus"] == {"*": 4}
    stale = await client.put("/api/v1/budgets/search", json={**created, "caps": {"gpus": {"*": 2}}})
    assert stale.status == 409
    r = await client.delete("/api/v1/budgets/search")
    assert r.status == 200 and store.get("search") is None
    assert (await client.get("/api/v1/budgets/search")).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "caps": {"gpus": {"H100": -1}}}, "caps.gpus.H100"),
        ({**BODY, "caps": {"cost_per_hour": "lots"}}, "caps.cost_per_hour"),
        ({**BODY, "caps": {}}, "caps"),
        ({**BODY, "workloads": {}}, "workloads"),
        ({**BODY, "id": "Not Valid"}, "id"),
        ({**BODY, "caps": {"gpus": {"H100": 1}}, "surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_body_is_a_400_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = await client.post("/api/v1/budgets", json=body)
    answer = await r.json()
    assert r.status == 400, answer
    assert field in [d["field"] for d in answer["details"]], answer


async def test_a_budget_owned_by_a_file_cannot_be_changed_over_rest(client: TestClient, store: BudgetStore) -> None:
    await store.create(Budget.model_validate(BODY), source=Source.FILE)
    r = await client.delete("/api/v1/budgets/search")
    assert r.status == 409 and (await r.json())["details"]["owner"] == "file"
