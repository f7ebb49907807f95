"""``/api/v1/budgets``: create, read, update, delete and list ``AIInferenceBudget`` (docs/budgets.md).

As policies: writes go through the ``BudgetStore`` as the ``rest`` source (a budget a CRD or a file
owns answers 409 naming its owner), updates are compare-and-set on the revision (``If-Match`` or the
body's ``revision``; neither: 428), and a bad body answers 400 naming the field. Each budget read
carries ``use``: the GPUs and USD/h of the hub's latest placement of its workloads against its caps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from hub.policies.store import BudgetStore, Source, Stored
from hub.policy.budget import AIInferenceBudget, Budget, BudgetUse
from hub.web.api.errors import ApiError, error, json_response
from hub.web.api.http import actor, etag, if_match, read_model, update_precondition
from hub.web.api.keys import BUDGET_USE, BUDGETS

routes = web.RouteTableDef()

READ_ONLY = ("source", "updated_by", "created_at", "updated_at", "use")


class BudgetUseView(BaseModel):
    workloads: list[str] = Field(description="The workloads the budget covers now (namespace/name)")
    gpus: dict[str, int] = Field(description='GPUs placed by type ("*": all types)')
    cost_per_hour: float = Field(description="USD/h of the placement at placement's prices")
    holds_minimums: bool = Field(description="Whether the caps leave room for every covered min_replicas")
    at_cap: list[str] = Field(description="The caps the placement has reached")


class BudgetResource(AIInferenceBudget):
    """A stored budget: the model plus who owns it, when it changed, and how it stands."""

    source: Source
    updated_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    use: BudgetUseView | None = Field(default=None, description="None until the hub has planned with it")


class BudgetList(BaseModel):
    budgets: list[BudgetResource]


class BudgetDeleted(BaseModel):
    message: str
    id: str
    revision: int


class BudgetInput(AIInferenceBudget):
    """The write body: the budget model, tolerating the read-only fields of a response."""

    source: Any = None
    updated_by: Any = None
    created_at: Any = None
    updated_at: Any = None
    use: Any = None

    def budget(self) -> Budget:
        return Budget.model_validate(self.model_dump(exclude=set(READ_ONLY)))


def use_json(use: BudgetUse | None) -> dict[str, Any] | None:
    if use is None:
        return None
    return {"workloads": list(use.workloads), "gpus": dict(use.gpus), "cost_per_hour": use.cost_per_hour,
            "holds_minimums": use.holds_minimums, "at_cap": use.binding()}


def budget_json(entry: Stored[Budget], use: BudgetUse | None) -> dict[str, Any]:
    return entry.policy.model_dump(mode="json") | {
        "source": entry.source.value,
        "updated_by": entry.updated_by,
        "created_at": None if entry.created_at is None else entry.created_at.isoformat(),
        "updated_at": None if entry.updated_at is None else entry.updated_at.isoformat(),
        "use": use_json(use),
    }


def _answer(request: web.Request, budget: Budget, status: int = 200) -> web.Response:
    entry = request.app[BUDGETS].entry(budget.id)
    assert entry is not None  # the store has just written it
    use = request.app[BUDGET_USE]().get(budget.id)
    return json_response(budget_json(entry, use), status=status, headers=etag(budget.revision))


def _current(store: BudgetStore, budget_id: str) -> Stored[Budget]:
    entry = store.entry(budget_id)
    if entry is None:
        raise error(404, "budget not found", {"id": budget_id})
    return entry


@routes.get("/api/v1/budgets")
async def list_budgets(request: web.Request) -> web.Response:
    store, uses = request.app[BUDGETS], request.app[BUDGET_USE]()
    out = []
    for b in store.all():
        entry = store.entry(b.id)
        if entry is not None:
            out.append(budget_json(entry, uses.get(b.id)))
    return json_response({"budgets": out})


@routes.post("/api/v1/budgets")
async def create_budget(request: web.Request) -> web.Response:
    budget = (await read_model(request, BudgetInput)).budget()
    created = await request.app[BUDGETS].create(budget.with_revision(0), source=Source.REST, actor=actor(request))
    return _answer(request, created, status=201)


@routes.get("/api/v1/budgets/{id}")
async def get_budget(request: web.Request) -> web.Response:
    entry = _current(request.app[BUDGETS], request.match_info["id"])
    use = request.app[BUDGET_USE]().get(entry.policy.id)
    return json_response(budget_json(entry, use), headers=etag(entry.policy.revision))


@routes.put("/api/v1/budgets/{id}")
async def update_budget(request: web.Request) -> web.Response:
    store = request.app[BUDGETS]
    budget_id = request.match_info["id"]
    budget = (await read_model(request, BudgetInput)).budget()
    if budget.id != budget_id:
        raise ApiError(400, "invalid body", [{"field": "id", "message": f"must match the path ({budget_id})"}])
    _current(store, budget_id)
    expected = update_precondition(request, budget.revision)
    updated = await store.update(budget.with_revision(0), source=Source.REST, expected_revision=expected,
                                 actor=actor(request))
    return _answer(request, updated)


@routes.delete("/api/v1/budgets/{id}")
async def delete_budget(request: web.Request) -> web.Response:
    store = request.app[BUDGETS]
    budget_id = request.match_info["id"]
    expected = if_match(request)
    revision = _current(store, budget_id).policy.revision
    await store.delete(budget_id, source=Source.REST, expected_revision=expected)
    return json_response({"message": "budget deleted", "id": budget_id, "revision": revision})
