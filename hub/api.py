"""The hub's web API (read-only for now): fleet state, decisions, policies, health and metrics.

Every response is JSON (orjson); every error is a JSON body ``{"error", "details"}``. The routes are
an aiohttp ``RouteTableDef`` over typed app keys, so handlers never reach for globals. Who may call
what is decided before routing, by the middleware of ``hub/auth.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.auth import AccessPolicy, auth_middleware
from hub.decisions import DecisionLog
from hub.metrics import HubMetrics
from hub.overview import clusters_json, policies_json, workloads_json
from hub.policies import PolicyStore
from hub.state import FleetState
from shared.messages import CLUSTER_ID_PATTERN

STATE = web.AppKey("state", FleetState)
DECISIONS = web.AppKey("decisions", DecisionLog)
POLICIES = web.AppKey("policies", PolicyStore)
METRICS = web.AppKey("metrics", HubMetrics)
READY = web.AppKey("ready", Callable[[], bool])

routes = web.RouteTableDef()


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class ApiError(Exception):
    """Raised by handlers; the middleware answers it as ``{"error", "details"}`` with its status."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error(status: int, message: str, details: Any = None) -> ApiError:
    return ApiError(status, message, details)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error is JSON, with the status it was raised with (aiohttp's own 404/405 included)."""
    try:
        return await handler(request)
    except ApiError as e:
        return json_response({"error": e.message, "details": e.details}, status=e.status)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return json_response({"error": e.reason, "details": {"path": request.path}}, status=e.status)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    if not request.app[READY]():
        raise error(503, "not ready", {"reason": "not connected to NATS or policies not loaded"})
    return json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    return json_response({"clusters": clusters_json(request.app[STATE].snapshot())})


@routes.get("/api/v1/workloads")
async def workloads(request: web.Request) -> web.Response:
    snap = request.app[STATE].snapshot()
    return json_response({"workloads": workloads_json(snap, request.app[DECISIONS], request.app[POLICIES])})


def bad_query(field: str, message: str) -> ApiError:
    return error(400, "invalid query parameter", {"field": field, "message": message})


def time_query(request: web.Request, field: str) -> datetime | None:
    raw = request.query.get(field)
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        # NB: a literal '+' in a query string reads as a space; say how to write an offset.
        raise bad_query(field, "must be an RFC 3339 time such as 2026-11-22T12:00:00Z (write +01:00 as %2B01:00)") \
            from None
    if at.tzinfo is None:
        raise bad_query(field, "must have a time zone (Z or an offset)")
    return at


@routes.get("/api/v1/decisions")
async def decisions(request: web.Request) -> web.Response:
    """Newest first; filters: ``workload`` (namespace/name), ``cluster``, ``since`` (inclusive) and
    ``until`` (exclusive) as RFC 3339 times, ``limit``."""
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise bad_query("limit", "must be an integer") from None
    if not 1 <= limit <= 10000:
        raise bad_query("limit", "must be in [1, 10000]")
    cluster = request.query.get("cluster")
    if cluster is not None and not CLUSTER_ID_PATTERN.match(cluster):
        raise bad_query("cluster", f"must match {CLUSTER_ID_PATTERN.pattern}")
    since, until = time_query(request, "since"), time_query(request, "until")
    if since is not None and until is not None and until < since:
        raise bad_query("until", "must not be before since")
    items = request.app[DECISIONS].recent(
        workload=request.query.get("workload"), cluster=cluster, since=since, until=until, limit=limit
    )
    return json_response({"decisions": [d.to_json() for d in items]})


@routes.get("/api/v1/decisions/{id}")
async def decision(request: web.Request) -> web.Response:
    d = request.app[DECISIONS].get(request.match_info["id"])
    if d is None:
        raise error(404, "decision not found", {"id": request.match_info["id"]})
    return json_response(d.to_json())


@routes.get("/api/v1/policies")
async def policies(request: web.Request) -> web.Response:
    return json_response({"policies": policies_json(request.app[POLICIES])})


def make_app(
    *,
    state: FleetState,
    decisions: DecisionLog,
    policies: PolicyStore,
    metrics: HubMetrics,
    ready: Callable[[], bool],
    access: AccessPolicy | None = None,
) -> web.Application:
    """The API app. ``access`` None (or without a lookup) means no authentication: everyone is admin."""
    guard = auth_middleware(access or AccessPolicy(lookup=None), on_denied=lambda r: metrics.api_denied.labels(r).inc())
    # json_errors outermost, so an error raised anywhere below (the guard included) is still JSON.
    app = web.Application(middlewares=[json_errors, guard])
    app[STATE] = state
    app[DECISIONS] = decisions
    app[POLICIES] = policies
    app[METRICS] = metrics
    app[READY] = ready
    app.add_routes(routes)
    return app
