"""A KV watch that is stopped early leaves no nats-py task behind (real nats-server).

The autouse ``no_unattended_tasks`` fixture is the assertion: it fails a test whose tasks outlive it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.bus import Bus, BusOptions
from shared.natsserver import NatsServer

pytestmark = pytest.mark.nats


async def drain(changes: AsyncIterator[Any], seen: list[Any]) -> None:
    async for entry in changes:
        seen.append(entry)


@pytest.mark.parametrize("steps", range(8))
async def test_a_kv_watch_cancelled_while_it_opens_or_just_after_leaves_no_task(
    nats_server: NatsServer, steps: int
) -> None:
    async with Bus.connect(BusOptions(url=nats_server.url)) as bus:
        await bus.ensure_topology()
        kv = await bus.policies_bucket()
        await kv.put("one", b"1")
        seen: list[Any] = []
        watcher = asyncio.create_task(drain(bus.kv_changes(kv), seen))
        for _ in range(steps):  # cancel at each await point of opening the watch, and after
            await asyncio.sleep(0)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        assert watcher.cancelled()
