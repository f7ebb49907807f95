"""The hub as its own process for the benches: start it on a policy file, wait until its API says it is ready."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from shared.natsserver import free_port

ROOT = Path(__file__).resolve().parents[1]


def start_hub(nats_url: str, policy_file: Path, tick_s: float, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m hub`` on ``policy_file`` at a free API port, warnings only; (the process, its API URL).
    ``extra``: more ``HUB_*`` settings (``HUB_SHARDED`` and ``HUB_ID`` for several hubs).

    Clusters count as stale after 5 report intervals rather than 3: a bench that loads the machine
    delays reports, and a stale cluster's replicas would be re-placed, which is not what it measures."""
    port = free_port()
    env = os.environ | {"HUB_NATS_URL": nats_url, "HUB_API_PORT": str(port), "HUB_TICK_S": str(tick_s),
                        "HUB_POLICY_FILE": str(policy_file), "HUB_LOG_LEVEL": "WARNING",
                        "HUB_STALE_AFTER_INTERVALS": "5"} | extra
    return subprocess.Popen([sys.executable, "-m", "hub"], cwd=ROOT, env=env), f"http://127.0.0.1:{port}"


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
