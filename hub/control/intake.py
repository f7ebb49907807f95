"""Intake: telemetry in from every spoke, validated, admitted, into state. The only writer of telemetry state.

Reports arrive over core NATS (at most once; the latest wins). Two agents: the *reader* moves raw
messages from the subscription into the bounded ``Inbox`` (cheap, so the subscription never
backs up); the *intake* validates them one by one (``hub.control.decoder``: only the workloads
that changed) and applies the trust rules of ``hub.control.admission``. Anything refused is
counted by reason and dropped; the loop never stops for bad input, and it yields to the event
loop every few messages so a flood cannot starve the evaluator, the results consumer or the API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from hub.control.admission import Admission
from hub.control.decoder import Decoder
from hub.control.inbox import Inbox
from hub.metrics import HubMetrics
from hub.policy.vertical import ResourceHistory
from hub.state import FleetState
from shared import subjects
from shared.bus import Bus
from shared.errors import InvalidMessage
from shared.messages import TelemetryReport

logger = logging.getLogger(__name__)

YIELD_EVERY = 32
"""Messages validated between two yields to the event loop."""


class Intake:
    def __init__(
        self,
        bus: Bus,
        state: FleetState,
        metrics: HubMetrics,
        admission: Admission | None = None,
        *,
        queue_size: int = 10_000,
        queue_bytes: int = 16 * 1024 * 1024,
        retention_s: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resources: ResourceHistory | None = None,
    ) -> None:
        self.bus = bus
        self.state = state
        self.metrics = metrics
        self.admission = admission or Admission(
            allowed=None, max_clusters=256, max_workloads=20_000, max_clock_skew_s=30.0,
            stale_after_intervals=state.stale_after_intervals,
        )
        self.retention_s = retention_s
        self.clock = clock
        self.resources = resources
        """Containers' use history for vertical recommendations; fed with every kept report."""
        self.inbox = Inbox(admitted=state.has_cluster, capacity=queue_size, capacity_bytes=queue_bytes,
                           on_drop=lambda reason: self.refuse("telemetry", reason))
        self.decoder = Decoder()
        self.malformed = 0
        self.accepted = 0
        self.refused = 0

    def refuse(self, kind: str, reason: str, detail: object = None) -> None:
        self.refused += 1
        self.metrics.refused.labels(kind, reason).inc()
        if detail is not None:
            logger.debug("refused %s (%s): %s", kind, reason, detail)

    def on_invalid(self, error: InvalidMessage) -> None:
        self.malformed += 1
        self.metrics.malformed.labels("telemetry").inc()
        # NB: debug, not warning: a misbehaving spoke at 1 Hz must not flood the hub's log.
        logger.debug("dropped malformed telemetry: %s", error)
        if self.malformed in (1, 10, 100) or self.malformed % 1000 == 0:
            logger.warning("dropped %d malformed telemetry messages so far; latest: %s", self.malformed, error)

    def accept(self, subject: str, report: TelemetryReport) -> bool:
        """Apply the trust rules to a valid report and keep it if they allow; returns whether it was kept."""
        if subjects.cluster_of(subject) != report.cluster_id:
            self.on_invalid(InvalidMessage(
                f"report for cluster {report.cluster_id!r} arrived on {subject!r}", subject=subject, field="cluster_id"
            ))
            return False
        if reason := self.admission.timing(report, self.clock()):
            self.refuse("telemetry", reason, f"{report.cluster_id} sent_at {report.sent_at.isoformat()}")
            return False
        if reason := self.admission.cluster(report.cluster_id, self.state):
            self.refuse("telemetry", reason, report.cluster_id)
            return False
        report, cut = self.admission.workloads(report, self.state)
        if cut:
            self.metrics.refused.labels("workload", "workload_limit").inc(cut)
            logger.warning("%s: %d workloads not admitted (HUB_MAX_WORKLOADS=%d reached)",
                           report.cluster_id, cut, self.admission.max_workloads)
        if not self.state.ingest(report):
            self.refuse("telemetry", "out_of_order", report.cluster_id)
            return False
        self.accepted += 1
        self.metrics.reports.labels(report.cluster_id).inc()
        if self.resources is not None:
            at_s = report.sent_at.timestamp()
            for w in report.workloads:
                if w.samples.containers:
                    self.resources.observe(report.cluster_id, w, at_s)
        return True

    def handle(self, subject: str, data: bytes) -> None:
        try:
            decoded = self.decoder.decode(subject, data)
        except InvalidMessage as e:
            self.on_invalid(e)
            return
        if self.accept(subject, decoded.report):
            # At the workload limit, admission may have cut workloads from the report: not remembered.
            full = self.state.workload_count >= self.admission.max_workloads
            self.decoder.keep(decoded.report.cluster_id, decoded, self.state.has_workload if full else None)

    def prune(self, now: float | None = None) -> list[str]:
        """Forget clusters silent for longer than the retention (their metrics series go too)."""
        gone = self.state.silent_clusters(older_than_s=self.retention_s, now=now)
        for cluster_id in gone:
            self.state.forget(cluster_id)
            self.decoder.forget(cluster_id)
            self.metrics.forget_cluster(cluster_id)
            logger.info("forgot cluster %s: no report for %.0fs", cluster_id, self.retention_s)
        if self.resources is not None:
            self.resources.prune(self.clock().timestamp(), keep=self.state.workload_keys())
        return gone

    def gauge(self) -> None:
        self.metrics.intake_queue.set(len(self.inbox))
        self.metrics.clusters_known.set(self.state.cluster_count)
        self.metrics.workloads_known.set(self.state.workload_count)
        self.metrics.slow_consumer_drops.set(self.bus.stats.slow_consumer_drops)

    async def read(self) -> None:
        """The reader agent: subscription -> inbox, as fast as messages come."""
        await self.bus.hand_off(subjects.TELEMETRY_ALL, self.inbox.put)

    async def pruner(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.retention_s / 4))
            self.prune()
            self.gauge()

    async def validate(self) -> None:
        handled = 0
        while True:
            subject, data = await self.inbox.get()
            self.handle(subject, data)
            handled += 1
            if handled % YIELD_EVERY == 0:
                self.gauge()
                await asyncio.sleep(0)

    async def run(self) -> None:
        """The intake agent: reader, validation and pruning; if one of them fails, all stop."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.read(), name="telemetry reader")
            tg.create_task(self.pruner(), name="cluster pruner")
            tg.create_task(self.validate(), name="telemetry validation")
