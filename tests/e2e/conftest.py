"""Helpers to run the real hub and spoke agents in-process, against a real NATS server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from hub.service import Hub, run_hub
from hub.settings import HubSettings
from shared.natsserver import free_port
from spoke.agent import Spoke, run_agent
from spoke.backend import ClusterBackend
from spoke.settings import SpokeSettings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


async def eventually(check: Callable[[], Any], *, timeout_s: float = 15.0, every_s: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value otherwise."""
    last: Any = None
    async with asyncio.timeout(timeout_s):
        while True:
            last = check()
            if last:
                return last
            await asyncio.sleep(every_s)


async def next_tick(hub: Hub) -> None:
    """Wait until a whole evaluation tick has run after this call (so it saw what happened before it)."""
    count = lambda: hub.metrics.registry.get_sample_value("fleetscale_hub_tick_seconds_count") or 0  # noqa: E731
    start = count()
    await eventually(lambda: count() >= start + 2)  # the tick in progress may have read the state before


def write_policies(path: Path, *policies: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(list(policies)))
    return path


@asynccontextmanager
async def _running(
    start: Callable[[asyncio.Event, Callable[[T], None]], Coroutine[Any, Any, None]],
) -> AsyncIterator[T]:
    """Run a process root (hub or spoke) as a task until its on_ready fires; stop it on exit."""
    stop = asyncio.Event()
    ready: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(start(stop, ready.set_result))
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def running_hub(nats_url: str, **settings: Any) -> AbstractAsyncContextManager[Hub]:
    # The start-up grace is three of the test spokes' 0.2 s report intervals, as the default is
    # three of a real spoke's 1 s ones.
    settings = {"startup_grace_s": 0.6} | settings
    cfg = HubSettings(nats_url=nats_url, api_port=0, tick_s=0.2, shutdown_timeout_s=3, **settings)
    return _running(lambda stop, ready: run_hub(cfg, stop=stop, on_ready=ready))


def running_spoke(
    nats_url: str, cluster_id: str, backend: ClusterBackend, *, interval_s: float = 0.2, **settings: Any
) -> AbstractAsyncContextManager[Spoke]:
    cfg = SpokeSettings(cluster_id=cluster_id, backend="simulated", nats_url=nats_url, report_interval_s=interval_s,
                        health_host="127.0.0.1", health_port=0, shutdown_timeout_s=3, **settings)
    return _running(lambda stop, ready: run_agent(cfg, backend, stop=stop, on_ready=ready))


@asynccontextmanager
async def hub_process(nats_url: str, **env: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """The real hub as its own process (``python -m hub``), for faults a process suffers (SIGSTOP).

    Yields the process and its API's base URL once ``/readyz`` answers 200.
    """
    port = free_port()
    environ = os.environ | {"HUB_NATS_URL": nats_url, "HUB_API_PORT": str(port), "HUB_TICK_S": "0.2",
                            "HUB_STARTUP_GRACE_S": "0.6", "HUB_LOG_LEVEL": "WARNING"} | env
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub", cwd=ROOT, env=environ)
    api = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{api}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            async with asyncio.timeout(20):
                while not await ready():
                    assert proc.returncode is None, f"the hub exited with {proc.returncode}"
                    await asyncio.sleep(0.1)
        yield proc, api
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)  # a test that failed while it was stopped
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
