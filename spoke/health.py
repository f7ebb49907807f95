"""The spoke's probe and metrics endpoints: /healthz, /readyz, /metrics on a small aiohttp server."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spoke.metrics import SpokeMetrics


def make_app(
    metrics: SpokeMetrics, ready: Callable[[], bool], detail: Callable[[], dict[str, object]] | None = None
) -> web.Application:
    """``detail`` adds telemetry facts to /readyz (unknown engines); they never make it unready:
    a pod running an engine the spoke does not know is reported, not a reason to stop scaling."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        extra = detail() if detail is not None else {}
        if not ready():
            return web.json_response(
                {"status": "not ready", "reason": "not connected to NATS", **extra}, status=503
            )
        return web.json_response({"status": "ready", **extra})

    async def prom(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", prom)])
    return app
