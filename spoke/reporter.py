"""The reporter: every interval, read the cluster and publish one TelemetryReport (the heartbeat).

Inventory, workloads and samples are read concurrently, each under a timeout. A part that fails or
times out is reported as missing (an empty inventory is *not* sent as "no GPUs": the report is
skipped for that part and the failure counted), and the loop goes on. The period is jittered by
±10 % so a fleet of spokes started together does not report in lock-step. Engines woken from
sleep mode between two reports are added to the variants' start times (``spoke.wakes``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime

from shared import subjects
from shared.bus import Bus
from shared.messages import Samples, TelemetryReport, WorkloadReport
from spoke.backend import ClusterBackend
from spoke.metrics import SpokeMetrics
from spoke.wakes import WakeWatch

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


class Reporter:
    def __init__(
        self,
        bus: Bus,
        backend: ClusterBackend,
        cluster_id: str,
        metrics: SpokeMetrics,
        *,
        interval_s: float = 1.0,
        read_timeout_s: float | None = None,
        jitter: float = 0.1,
    ) -> None:
        self.bus = bus
        self.backend = backend
        self.cluster_id = cluster_id
        self.metrics = metrics
        self.interval_s = interval_s
        self.read_timeout_s = read_timeout_s or max(interval_s * 0.8, 0.2)
        self.jitter = jitter
        self.sequence = 0
        self.wakes = WakeWatch()
        """Engines woken from sleep mode between reports: the ``woken`` start tier (``spoke.wakes``)."""
        self.paused = False
        """While set, no report is sent (tests use it to make a spoke go silent)."""

    async def build(self) -> TelemetryReport | None:
        # Stamped before reading: everything in the report is at least this fresh, which is what
        # the hub compares with command results to know when its ask shows in telemetry.
        started_at = datetime.now(UTC)
        try:
            async with asyncio.timeout(self.read_timeout_s):
                inventory, workloads = await asyncio.gather(self.backend.inventory(), self.backend.workloads())
        except Exception as e:
            # Without inventory and workloads there is nothing truthful to send; the hub will see
            # the silence and, after 3 intervals, mark this cluster stale. That is the right outcome.
            self.metrics.report_failures.labels("cluster").inc()
            logger.warning("cannot read the cluster (%r); skipping this report", e)
            return None
        # "*" in missing_reasons stands for every field (docs/protocol.md).
        missing = Samples(missing_reasons={"*": "no source measured this workload"})
        try:
            async with asyncio.timeout(self.read_timeout_s):
                samples = await self.backend.samples(workloads)
        except Exception as e:
            self.metrics.report_failures.labels("samples").inc()
            logger.warning("cannot read samples (%r); reporting them missing", e)
            samples = {}
            missing = Samples(missing_reasons={"*": f"sample read failed: {e!r}"[:200]})
        at = started_at.timestamp()
        self.wakes.observe(workloads, samples, at=at)
        workloads = self.wakes.attach(workloads, now=at)
        report = TelemetryReport(
            cluster_id=self.cluster_id,
            sequence=self.sequence,
            sent_at=started_at,
            interval_s=self.interval_s,
            spoke_version=VERSION,
            inventory=tuple(inventory),
            workloads=tuple(
                WorkloadReport(
                    workload=w.ref,
                    desired_replicas=w.desired_replicas,
                    ready_replicas=w.ready_replicas,
                    gpus_per_replica=w.gpus_per_replica,
                    variants=w.variants,
                    samples=samples.get(w.key, missing),
                    labels=dict(w.labels),
                )
                for w in workloads
            ),
        )
        self.sequence += 1
        return report

    async def report_once(self) -> TelemetryReport | None:
        report = await self.build()
        if report is None or self.paused:
            return None
        await self.bus.publish(subjects.telemetry(self.cluster_id), report)
        self.metrics.reports.inc()
        self.metrics.last_report.set(time.time())
        return report

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.report_once()
            except Exception:
                self.metrics.report_failures.labels("publish").inc()
                logger.exception("report cycle failed; the next one will run as usual")
            period = self.interval_s * (1 + random.uniform(-self.jitter, self.jitter))
            await asyncio.sleep(max(period - (time.monotonic() - started), 0.0))
