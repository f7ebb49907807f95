"""Autonomy: while the hub is away, hold the replica counts the hub last had applied here.

The hub corrects drift (a manual scale, a restarted controller, a variant deleted by hand) from
telemetry. While it is away (no heartbeat for ``hub_away_after_s``: the hub is down, paused, or cut
off) nobody would, and a fleet sized by the hub would erode. So the spoke re-applies, every report
interval, the last count the hub had applied to each workload, where the cluster now runs something
else. It decides nothing of its own: it never scales beyond or below what the hub last asked.

The bound: it holds for at most ``autonomy_hold_s`` after the hub went away (default one hour).
Past that, the counts are too old to defend, and the cluster is left to its operators; the spoke
logs it and ``fleetscale_spoke_autonomous`` goes to 0. The hold starts again with the next
heartbeat's absence. Re-applies do not enter the command ledger: a command the hub sent before it
left is still judged by its own issue time and deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from shared import subjects
from shared.bus import Bus
from shared.errors import InvalidMessage
from shared.messages import HubHeartbeat, ScaleCommand
from spoke.backend import ApplyError, ClusterBackend
from spoke.metrics import SpokeMetrics

logger = logging.getLogger(__name__)


class Autonomy:
    def __init__(
        self,
        bus: Bus,
        backend: ClusterBackend,
        metrics: SpokeMetrics,
        *,
        away_after_s: float,
        hold_s: float,
        interval_s: float,
    ) -> None:
        self.bus = bus
        self.backend = backend
        self.metrics = metrics
        self.away_after_s = away_after_s
        self.hold_s = hold_s
        self.interval_s = interval_s
        self.last_heartbeat = time.monotonic()
        """Counted from start: a spoke that starts without a hub holds nothing anyway (nothing applied)."""
        self.applied: dict[str, ScaleCommand] = {}
        """Per workload key, the last command the hub had applied here (the executor records it)."""
        self.reapplied = 0

    def record_applied(self, command: ScaleCommand) -> None:
        if not command.replicas_by_gpu_type:
            return  # a resources-only command (docs/vertical.md) says nothing about the counts to hold
        previous = self.applied.get(command.workload.key)
        if previous is None or previous.issued_at <= command.issued_at:
            self.applied[command.workload.key] = command

    def state(self, now: float | None = None) -> str:
        """``present``, ``holding`` (away, within the bound) or ``released`` (away past it)."""
        away = (time.monotonic() if now is None else now) - self.last_heartbeat
        if away <= self.away_after_s:
            return "present"
        return "holding" if away <= self.away_after_s + self.hold_s else "released"

    async def hold(self) -> int:
        """Re-apply the last applied count of every workload that drifted from it; return how many."""
        current = {w.key: w for w in await self.backend.workloads()}
        fixed = 0
        for key, command in sorted(self.applied.items()):
            state = current.get(key)
            if state is None:
                continue  # gone from the cluster: not ours to bring back
            running = {v.gpu_type: v.desired_replicas for v in state.variants}
            if all(running.get(t, 0) == n for t, n in command.replicas_by_gpu_type.items()):
                continue
            now = datetime.now(UTC)
            again = command.model_copy(update={
                "command_id": str(uuid.uuid4()), "issued_at": now, "deadline": now + timedelta(seconds=60),
                "reason": f"hub away: holding the last applied counts ({command.command_id})",
                "resources": (),  # counts only: a template is not re-patched while the hub is away
            })
            try:
                await self.backend.apply(again)
            except ApplyError as e:
                logger.warning("hub away: could not hold %s at %s (%s)", key, command.replicas_by_gpu_type, e)
                continue
            fixed += 1
            self.reapplied += 1
            self.metrics.autonomy_reapplied.inc()
            logger.warning("hub away: %s ran %s, restored the hub's last applied %s", key, running,
                           command.replicas_by_gpu_type)
        return fixed

    async def listen(self) -> None:
        def on_invalid(e: InvalidMessage) -> None:
            self.metrics.malformed.inc()
            logger.debug("dropped malformed heartbeat: %s", e)

        async for _, _beat in self.bus.messages(subjects.HUB_HEARTBEAT, HubHeartbeat, on_invalid=on_invalid):
            if self.state() != "present":
                logger.warning("the hub is back: autonomy ends")
            self.last_heartbeat = time.monotonic()

    async def run(self) -> None:
        released_logged = False
        while True:
            await asyncio.sleep(self.interval_s)
            state = self.state()
            self.metrics.autonomous.set(1 if state == "holding" else 0)
            if state == "holding":
                released_logged = False
                try:
                    await self.hold()
                except Exception:
                    logger.exception("hub away: reading the cluster failed; will try again")
            elif state == "released" and not released_logged:
                released_logged = True
                logger.warning("hub away for over %.0fs: no longer holding the last applied counts",
                               self.away_after_s + self.hold_s)
