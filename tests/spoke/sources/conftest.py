"""Fixtures for the telemetry-source tests: a real local HTTP server and a client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

class MetricsServer:
    """A real local HTTP server whose ``/metrics`` body (and status) each test sets."""

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}
        self.status = 200
        self.base_url = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path not in self.bodies:
            raise web.HTTPNotFound()
        return web.Response(text=self.bodies[request.path], status=self.status, content_type="text/plain")


@pytest.fixture
async def metrics_server() -> AsyncIterator[MetricsServer]:
    server = MetricsServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server._handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
