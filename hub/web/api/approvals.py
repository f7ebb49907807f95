"""``/api/v1/approvals``: decisions of ``mode: approval`` policies that wait for an operator (docs/approvals.md).

``GET`` lists the pending decisions, oldest first (each is the ``Decision`` record itself, with its
``approval``). ``POST .../{id}/approve`` sends exactly that decision's commands (journalled first)
and answers the approved record; ``POST .../{id}/reject`` settles it unsent. Both record the
caller's authenticated name as ``approval.by``; the body is optional, ``{"comment": "..."}``. A
decision that can no longer be settled answers 409 naming why (``details.reason``: expired,
superseded, approved, rejected, policy_changed, not_approval); an unknown id 404.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.control.approvals import NotJournalled
from hub.decisions.approvals import NotPending
from hub.decisions.model import Decision
from hub.web.api.errors import ApiError, bad_field, error, json_response
from hub.web.api.http import actor, query_str, read_model
from hub.web.api.keys import APPROVALS

routes = web.RouteTableDef()

MAX_ID_LENGTH = 64


class ApprovalList(BaseModel):
    approvals: list[Decision] = Field(description="Pending decisions, oldest first")


class Verdict(BaseModel):
    """The optional body of an approve or reject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="Kept on the decision record with who settled it")


async def _verdict(request: web.Request) -> Verdict:
    if not request.can_read_body:
        return Verdict()
    return await read_model(request, Verdict)


def _decision_id(request: web.Request) -> str:
    decision_id = request.match_info["id"]
    if len(decision_id) > MAX_ID_LENGTH:
        raise bad_field("id", f"at most {MAX_ID_LENGTH} characters", error_text="invalid path")
    return decision_id


@routes.get("/api/v1/approvals")
async def list_approvals(request: web.Request) -> web.Response:
    """Pending decisions, oldest first; ``workload`` (namespace/name) for one workload's."""
    only = query_str(request, "workload")
    items = [d for d in request.app[APPROVALS].pending() if only is None or d.workload == only]
    return json_response(ApprovalList(approvals=items))


@routes.post("/api/v1/approvals/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    decision_id = _decision_id(request)
    verdict = await _verdict(request)
    try:
        decision = await request.app[APPROVALS].approve(decision_id, by=actor(request), comment=verdict.comment)
    except NotJournalled as e:
        raise ApiError(503, "decision history unavailable; nothing was sent, retry", {"id": decision_id,
                                                                                       "reason": str(e)}) from None
    except (KeyError, NotPending) as e:
        raise _not_settleable(decision_id, e) from None
    return json_response(decision)


@routes.post("/api/v1/approvals/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    decision_id = _decision_id(request)
    verdict = await _verdict(request)
    try:
        decision = await request.app[APPROVALS].reject(decision_id, by=actor(request), comment=verdict.comment)
    except (KeyError, NotPending) as e:
        raise _not_settleable(decision_id, e) from None
    return json_response(decision)


def _not_settleable(decision_id: str, e: KeyError | NotPending) -> ApiError:
    if isinstance(e, KeyError):
        return error(404, "decision not found", {"id": decision_id})
    approval = e.decision.approval
    return error(409, f"decision is not pending: {e.reason}", {
        "id": decision_id, "reason": e.reason, "workload": e.decision.workload,
        "state": None if approval is None else approval.state,
        "superseded_by": None if approval is None else approval.superseded_by,
    })
