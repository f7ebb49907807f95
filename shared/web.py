"""Embedding an aiohttp app as one root task: bind, serve until cancelled, always clean up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


async def serve(
    app: web.Application, host: str, port: int, *, on_bound: Callable[[int], None] | None = None
) -> None:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        if on_bound is not None:
            server = site._server  # aiohttp has no public accessor for the bound port (port 0)
            sockets = getattr(server, "sockets", None) or []
            on_bound(sockets[0].getsockname()[1] if sockets else port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
