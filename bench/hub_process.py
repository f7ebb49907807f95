"""The hub as its own process for the benches: wait until its API says it is ready."""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp


async def wait_ready(http: aiohttp.ClientSession, api: str, hub: subprocess.Popen[bytes], timeout_s: float = 60.0
                     ) -> None:
    """Return once ``/readyz`` answers 200; raise if the hub exits or is not ready within ``timeout_s``
    (a bench that carried on against a hub that never came up measured nothing)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.returncode} before it was ready")
            try:
                async with http.get(f"{api}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
