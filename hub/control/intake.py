"""Intake: telemetry in from every spoke, validated, into state. The only writer of telemetry state.

Reports arrive over core NATS (at most once; the latest wins). A report that does not validate is
counted by kind and dropped; the loop never stops for bad input.
"""

from __future__ import annotations

import logging

from hub.metrics import HubMetrics
from hub.state import FleetState
from shared import subjects
from shared.bus import Bus
from shared.errors import InvalidMessage
from shared.messages import TelemetryReport

logger = logging.getLogger(__name__)


class Intake:
    def __init__(self, bus: Bus, state: FleetState, metrics: HubMetrics) -> None:
        self.bus = bus
        self.state = state
        self.metrics = metrics
        self.malformed = 0
        self.accepted = 0

    def on_invalid(self, error: InvalidMessage) -> None:
        self.malformed += 1
        self.metrics.malformed.labels("telemetry").inc()
        # NB: debug, not warning: a misbehaving spoke at 1 Hz must not flood the hub's log.
        logger.debug("dropped malformed telemetry: %s", error)
        if self.malformed in (1, 10, 100) or self.malformed % 1000 == 0:
            logger.warning("dropped %d malformed telemetry messages so far; latest: %s", self.malformed, error)

    def accept(self, subject: str, report: TelemetryReport) -> None:
        if subjects.cluster_of(subject) != report.cluster_id:
            self.on_invalid(InvalidMessage(
                f"report for cluster {report.cluster_id!r} arrived on {subject!r}", subject=subject, field="cluster_id"
            ))
            return
        if self.state.ingest(report):
            self.accepted += 1
            self.metrics.reports.labels(report.cluster_id).inc()

    async def run(self) -> None:
        telemetry = self.bus.messages(subjects.TELEMETRY_ALL, TelemetryReport, on_invalid=self.on_invalid)
        async for subject, report in telemetry:
            self.accept(subject, report)
