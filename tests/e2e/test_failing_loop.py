"""A failing loop is visible: failed ticks fail ``/readyz`` and count; a failed root task stops the process.

The tick tests run the real hub in this process against a real nats-server and break its planner;
the process tests run the real ``fleetscale hub`` (``python -m hub``) as a child process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.natsserver import free_port
from tests.e2e.conftest import eventually, running_hub

pytestmark = pytest.mark.nats

ROOT = Path(__file__).resolve().parents[2]


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, await r.json()


async def scraped_tick_failures(port: int) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "fleetscale_hub_tick_failures"]
    return next(s.value for s in family.samples if s.name == "fleetscale_hub_tick_failures_total")


async def test_failed_ticks_in_a_row_fail_readyz_and_count_until_a_tick_succeeds(nats_url: str) -> None:
    async with running_hub(nats_url, unready_after_failed_ticks=3) as hub:
        assert hub.api_port is not None
        assert await readyz(hub.api_port) == (200, {"status": "ready"})
        plan = hub.evaluator.planner.plan

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("planner broke")

        hub.evaluator.planner.plan = broken  # type: ignore[method-assign]
        await eventually(lambda: hub.evaluator.failed_in_a_row >= 3)
        status, body = await readyz(hub.api_port)
        assert status == 503 and body["error"] == "not ready"
        problem = body["details"]["problems"]["evaluator"]
        assert "evaluation ticks in a row failed" in problem and "RuntimeError: planner broke" in problem
        assert await scraped_tick_failures(hub.api_port) >= 3

        hub.evaluator.planner.plan = plan  # type: ignore[method-assign]
        await eventually(lambda: hub.evaluator.failed_in_a_row == 0)
        assert await readyz(hub.api_port) == (200, {"status": "ready"})


async def test_fewer_failed_ticks_than_the_setting_keep_the_hub_ready(nats_url: str) -> None:
    async with running_hub(nats_url, unready_after_failed_ticks=1000) as hub:
        assert hub.api_port is not None

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("planner broke")

        hub.evaluator.planner.plan = broken  # type: ignore[method-assign]
        await eventually(lambda: hub.evaluator.failed_in_a_row >= 3)
        assert await readyz(hub.api_port) == (200, {"status": "ready"})
        assert await scraped_tick_failures(hub.api_port) >= 3


def hub_env(nats_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return env | {"HUB_NATS_URL": nats_url, "HUB_LOG_FORMAT": "text"} | settings


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def wait_for_line(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while line := (await stream.readline()).decode():
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"the process ended without logging {needle!r}:\n{''.join(seen)}")


async def test_a_hub_whose_api_cannot_bind_exits_non_zero_at_once(nats_url: str, taken_port: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", cwd=ROOT, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        env=hub_env(nats_url, HUB_API_PORT=str(taken_port), HUB_SHUTDOWN_TIMEOUT_S="2"),
    )
    async with asyncio.timeout(30):  # the process's start (imports, NATS) takes a few seconds
        _, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()
    assert "task 'web api' has failed" in err.decode()
    assert "fleetscale hub: root tasks failed: web api" in err.decode()


async def test_a_failed_root_task_stops_the_hub_within_its_shutdown_bound_despite_a_stuck_part(
    nats_url: str,
) -> None:
    shutdown_s = 2.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.e2e.faulty_hub", cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env=hub_env(nats_url, HUB_API_PORT=str(free_port()), HUB_SHUTDOWN_TIMEOUT_S=str(shutdown_s),
                    FAULTY_API_FAILS_AFTER_S="1"),
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            await wait_for_line(proc.stderr, "task 'web api' has failed", seen)
        failed_at = time.monotonic()
        # No signal is sent: the process must stop by itself. The feed holds on for a minute; the
        # bound is the shutdown timeout, plus the second cancel's second (shared.lifecycle.run).
        async with asyncio.timeout(shutdown_s + 1.0 + 5.0):
            seen += (await proc.stderr.read()).decode().splitlines(keepends=True)
            await proc.wait()
        stopped_in = time.monotonic() - failed_at
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = "".join(seen)
    assert proc.returncode == 1, log
    assert "the live feed ignores cancellation" in log and "abandoned: live feed" in log
    assert shutdown_s <= stopped_in < shutdown_s + 1.0 + 5.0, log
