"""The heartbeat: tells the spokes, every interval, that the hub is deciding.

A spoke that stops hearing it holds the counts it last applied (``spoke.autonomy``). It is sent by
the evaluator's side of the hub, not the connection: a hub whose event loop stands still, or that
has stopped, is not deciding, and its spokes should know.
"""

from __future__ import annotations

import asyncio
import logging

from shared import subjects
from shared.bus import Bus
from shared.messages import HubHeartbeat

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, bus: Bus, *, interval_s: float) -> None:
        self.bus = bus
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            if self.bus.connected:
                try:
                    await self.bus.publish(subjects.HUB_HEARTBEAT, HubHeartbeat(interval_s=self.interval_s))
                except Exception as e:  # a lost beat says it by itself; never stop beating for it
                    logger.debug("heartbeat not published (%r)", e)
            await asyncio.sleep(self.interval_s)
