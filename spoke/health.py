"""The spoke's probe and metrics endpoints: /healthz, /readyz, /metrics on a small aiohttp server."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spoke.metrics import SpokeMetrics


def make_app(metrics: SpokeMetrics, ready: Callable[[], bool]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if not ready():
            return web.json_response({"status": "not ready", "reason": "not connected to NATS"}, status=503)
        return web.json_response({"status": "ready"})

    async def prom(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", prom)])
    return app
