"""/readyz carries the telemetry detail (unknown engines) without turning it into unreadiness."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from spoke.health import make_app
from spoke.metrics import SpokeMetrics


async def _get(app: web.Application, path: str) -> tuple[int, dict[str, object]]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, await resp.json()
    finally:
        await runner.cleanup()


async def test_readyz_names_unknown_engine_pods_and_stays_ready() -> None:
    detail = {"unknown_engine_pods": {"llm/chat-0": "unknown engine: ..."}, "engine_adapters": {}}
    status, body = await _get(make_app(SpokeMetrics(), ready=lambda: True, detail=lambda: detail), "/readyz")
    assert status == 200
    assert body["status"] == "ready" and body["unknown_engine_pods"] == detail["unknown_engine_pods"]


async def test_readyz_not_connected_is_503_with_the_detail_too() -> None:
    status, body = await _get(make_app(SpokeMetrics(), ready=lambda: False, detail=lambda: {"x": 1}), "/readyz")
    assert status == 503 and body["reason"] == "not connected to NATS" and body["x"] == 1
