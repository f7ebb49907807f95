"""``/api/v1/policies``: create, read, update, delete and list ``AIInferenceAutoscalerPolicy``.

Writes go through the ``PolicyStore`` as the ``rest`` source, so a policy owned by a CRD or a file
answers 409 naming its owner. Updates are compare-and-set on the policy's revision: the caller says
which revision it read, by an ``If-Match: "<revision>"`` header or the body's ``revision`` field,
and a stale one answers 409 with the current revision. An update with neither answers 428: a
blind overwrite would silently undo someone else's change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hub.policies.store import PolicyStore, Source, Stored
from hub.policy.model import AIInferenceAutoscalerPolicy, Mode, Policy
from hub.web.api.errors import ApiError, error, json_response
from hub.web.api.http import actor, etag, if_match, read_model, update_precondition
from hub.web.api.keys import POLICIES
from hub.web.overview import policies_json, policy_json

routes = web.RouteTableDef()

READ_ONLY = ("source", "updated_by", "created_at", "updated_at")
"""Fields a response adds to the policy. A write may carry them back (GET, edit, PUT) and they are
ignored, as Kubernetes ignores ``status`` on a spec update; every other unknown field is refused."""


class PolicyResource(AIInferenceAutoscalerPolicy):
    """A stored policy: the policy model plus who owns it and when it changed."""

    source: Source
    updated_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PolicyList(BaseModel):
    policies: list[PolicyResource]


class ModeChange(BaseModel):
    """Change the mode: dry-run records what it would do and sends no command; approval sends it once an
    operator approves it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode


class PolicyDeleted(BaseModel):
    message: str
    id: str
    revision: int


class PolicyInput(AIInferenceAutoscalerPolicy):
    """The write body: the policy model, tolerating the read-only fields of a response."""

    source: Any = None
    updated_by: Any = None
    created_at: Any = None
    updated_at: Any = None

    def policy(self) -> Policy:
        return Policy.model_validate(self.model_dump(exclude=set(READ_ONLY)))


def _answer(store: PolicyStore, policy: Policy, status: int = 200) -> web.Response:
    entry = store.entry(policy.id)
    assert entry is not None  # the store has just written it
    return json_response(policy_json(entry), status=status, headers=etag(policy.revision))


def _current(store: PolicyStore, policy_id: str) -> Stored:
    entry = store.entry(policy_id)
    if entry is None:
        raise error(404, "policy not found", {"id": policy_id})
    return entry


@routes.get("/api/v1/policies")
async def list_policies(request: web.Request) -> web.Response:
    return json_response({"policies": policies_json(request.app[POLICIES])})


@routes.post("/api/v1/policies")
async def create_policy(request: web.Request) -> web.Response:
    store = request.app[POLICIES]
    policy = (await read_model(request, PolicyInput)).policy()
    created = await store.create(policy.with_revision(0), source=Source.REST, actor=actor(request))
    return _answer(store, created, status=201)


@routes.get("/api/v1/policies/{id}")
async def get_policy(request: web.Request) -> web.Response:
    entry = _current(request.app[POLICIES], request.match_info["id"])
    return json_response(policy_json(entry), headers=etag(entry.policy.revision))


@routes.put("/api/v1/policies/{id}")
async def update_policy(request: web.Request) -> web.Response:
    store = request.app[POLICIES]
    policy_id = request.match_info["id"]
    policy = (await read_model(request, PolicyInput)).policy()
    if policy.id != policy_id:
        raise ApiError(400, "invalid body", [{"field": "id", "message": f"must match the path ({policy_id})"}])
    _current(store, policy_id)
    expected = update_precondition(request, policy.revision)
    updated = await store.update(policy.with_revision(0), source=Source.REST, expected_revision=expected,
                                 actor=actor(request))
    return _answer(store, updated)


@routes.patch("/api/v1/policies/{id}")
async def change_mode(request: web.Request) -> web.Response:
    store = request.app[POLICIES]
    policy_id = request.match_info["id"]
    expected = if_match(request)
    change = await read_model(request, ModeChange)
    current = _current(store, policy_id).policy
    updated = await store.update(current.model_copy(update={"mode": change.mode}), source=Source.REST,
                                 expected_revision=expected, actor=actor(request))
    return _answer(store, updated)


@routes.delete("/api/v1/policies/{id}")
async def delete_policy(request: web.Request) -> web.Response:
    store = request.app[POLICIES]
    policy_id = request.match_info["id"]
    expected = if_match(request)
    revision = _current(store, policy_id).policy.revision
    await store.delete(policy_id, source=Source.REST, expected_revision=expected)
    return json_response({"message": "policy deleted", "id": policy_id, "revision": revision})
