"""Decision records: the audit trail of what the hub decided, why, and what came of it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hub.api.errors import error, json_response
from hub.api.keys import DECISIONS

routes = web.RouteTableDef()


class DecisionRecord(BaseModel):
    """``hub.decisions.Decision.to_json``: inputs → proposal → bounds → placement → command results."""

    model_config = ConfigDict(extra="allow")

    id: str
    at: str
    workload: str
    policy_id: str
    policy_revision: int
    mode: str
    action: str
    current_replicas: int
    desired_replicas: int
    reason: str
    inputs: dict[str, Any]
    placement_before: dict[str, int]
    placement_after: dict[str, int]
    unplaced: int
    notes: list[str]
    commands: list[str]
    results: dict[str, dict[str, Any]]


class DecisionList(BaseModel):
    decisions: list[DecisionRecord]


@routes.get("/api/v1/decisions")
async def decisions(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise error(400, "invalid query parameter", {"field": "limit", "message": "must be an integer"}) from None
    if not 1 <= limit <= 10000:
        raise error(400, "invalid query parameter", {"field": "limit", "message": "must be in [1, 10000]"})
    items = request.app[DECISIONS].recent(workload=request.query.get("workload"), limit=limit)
    return json_response({"decisions": [d.to_json() for d in items]})


@routes.get("/api/v1/decisions/{id}")
async def decision(request: web.Request) -> web.Response:
    d = request.app[DECISIONS].get(request.match_info["id"])
    if d is None:
        raise error(404, "decision not found", {"id": request.match_info["id"]})
    return json_response(d.to_json())
