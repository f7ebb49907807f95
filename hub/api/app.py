"""The hub's web API (read-only for now): fleet state, decisions, policies, health and metrics.

Every response is JSON (orjson); every error is a JSON body ``{"error", "details"}``. The routes are
an aiohttp ``RouteTableDef`` over typed app keys, so handlers never reach for globals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.decisions import DecisionLog, placement_json
from hub.metrics import HubMetrics
from hub.policies import PolicyStore
from hub.state import FleetState

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
    snap = request.app[STATE].snapshot()
    out = []
    for cid, c in sorted(snap.clusters.items()):
        out.append({
            "cluster_id": cid,
            "stale": c.stale,
            "age_s": round(snap.taken_at - c.received_at, 3),
            "sequence": c.report.sequence,
            "interval_s": c.report.interval_s,
            "sent_at": c.report.sent_at.isoformat(),
            "spoke_version": c.report.spoke_version,
            "free_gpus": c.free_gpus(),
            "inventory": [n.model_dump(mode="json") for n in c.report.inventory],
            "workloads": [w.workload.key for w in c.report.workloads],
        })
    return json_response({"clusters": out})


@routes.get("/api/v1/workloads")
async def workloads(request: web.Request) -> web.Response:
    snap = request.app[STATE].snapshot()
    decisions = request.app[DECISIONS]
    out = []
    for key, view in snap.workloads.items():
        latest = decisions.latest.get(key)
        out.append({
            "workload": key,
            "desired_replicas": view.desired_replicas,
            "ready_replicas": view.ready_replicas,
            "placement": placement_json(view.placement()),
            "stale_clusters": list(view.stale_clusters),
            "clusters": {
                cid: {
                    "desired_replicas": r.desired_replicas,
                    "ready_replicas": r.ready_replicas,
                    "variants": [v.model_dump(mode="json") for v in r.variants],
                    "samples": r.samples.model_dump(mode="json", exclude={"gpus"})
                    | {"gpu_utilization_ratio": r.samples.gpu_utilization_ratio, "gpu_count": len(r.samples.gpus)},
                }
                for cid, r in sorted(view.reports.items())
            },
            "last_decision": latest.to_json() if latest else None,
        })
    return json_response({"workloads": out})


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


@routes.get("/api/v1/policies")
async def policies(request: web.Request) -> web.Response:
    return json_response({"policies": [p.model_dump(mode="json") for p in request.app[POLICIES].all()]})


def make_app(
    *, state: FleetState, decisions: DecisionLog, policies: PolicyStore, metrics: HubMetrics, ready: Callable[[], bool]
) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[STATE] = state
    app[DECISIONS] = decisions
    app[POLICIES] = policies
    app[METRICS] = metrics
    app[READY] = ready
    app.add_routes(routes)
    return app
