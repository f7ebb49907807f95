"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from hub.web.api.errors import error, json_response
from hub.web.api.keys import METRICS, READY

routes = web.RouteTableDef()


class Health(BaseModel):
    status: str


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    # The details name each part that is not ready, e.g. {"evaluator": "3 evaluation ticks in a row failed; ..."}.
    if problems := request.app[READY]():
        raise error(503, "not ready", {"reason": "; ".join(problems.values()), "problems": problems})
    return json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    # In a worker thread: at 10,000 workloads the per-workload gauges take about a second to write,
    # which on the event loop held every report and command behind each scrape.
    body = await asyncio.to_thread(generate_latest, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
