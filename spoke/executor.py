"""The executor: consumes this cluster's commands, applies them once, reports, then acknowledges.

Order matters for the delivery guarantee: apply → publish the result durably → ack. A crash before
the ack gets the command re-delivered, and the ledger turns that into a repeated result instead of a
second apply. Commands past their deadline, older than one already applied, or fenced off (issued
under a partition lease whose epoch is below one already seen: a deposed hub's) are not applied; the
result says why. A temporary failure is retried by re-delivery (nak with delay) until the deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import subjects
from shared.bus import Bus, Delivery
from shared.errors import BusUnavailable, InvalidMessage, TemporaryError
from shared.messages import CommandResult, ResultReason, ResultStatus, ScaleCommand
from spoke.backend import ApplyError, ClusterBackend, OutcomeRecorder
from spoke.ledger import Ledger
from spoke.metrics import SpokeMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Not applied yet, for a reason that may pass: nak the command so it comes back after this."""

    delay_s: float


class Executor:
    def __init__(
        self, bus: Bus, backend: ClusterBackend, cluster_id: str, metrics: SpokeMetrics, ledger: Ledger | None = None,
        on_applied: Callable[[ScaleCommand], None] | None = None,
    ) -> None:
        self.bus = bus
        self.backend = backend
        self.cluster_id = cluster_id
        self.metrics = metrics
        self.ledger = ledger or Ledger()
        self.on_applied = on_applied
        self.applied = 0
        self.duplicates = 0

    async def handle(self, command: ScaleCommand, *, now: datetime | None = None) -> CommandResult | RetryLater:
        """Decide and apply one command: the result to publish, or when to have it re-delivered."""
        now = now or datetime.now(UTC)
        previous = self.ledger.result_of(command.command_id)
        if previous is not None:
            # Re-delivered (our ack was lost, or the hub re-sent the id): repeat the result as it was,
            # under the same message id, so JetStream drops it if the hub already has it.
            self.duplicates += 1
            self.metrics.commands.labels(previous.status.value, "duplicate").inc()
            return previous
        key = command.workload.key

        def result(status: ResultStatus, reason: ResultReason, error: str | None = None,
                   observed: dict[str, int] | None = None) -> CommandResult:
            return CommandResult(
                command_id=command.command_id,
                cluster_id=self.cluster_id,
                workload=command.workload,
                status=status,
                reason=reason,
                error=error,
                observed_replicas_by_gpu_type=observed or {},
            )

        fenced = self.ledger.fenced_by(command.fence)
        if command.cluster_id == self.cluster_id and fenced is None:
            self.ledger.saw(command.fence)  # a newer owner's first command fences off the older ones
        if command.cluster_id != self.cluster_id:
            out = result(ResultStatus.REJECTED, ResultReason.INVALID, f"command is for cluster {command.cluster_id}")
        elif fenced is not None and command.fence is not None:
            self.metrics.fenced.inc()
            out = result(ResultStatus.REJECTED, ResultReason.SUPERSEDED,
                         f"fenced: lease {command.fence.lease} epoch {command.fence.epoch} is below epoch {fenced} "
                         "already seen (the hub that sent it no longer owns the workload)")
        elif now > command.deadline:
            out = result(ResultStatus.REJECTED, ResultReason.EXPIRED,
                         f"received {(now - command.deadline).total_seconds():.1f}s after its deadline")
        elif self.ledger.is_superseded(key, command.issued_at, command.command_id):
            newest = self.ledger.newest_applied(key)
            out = result(ResultStatus.REJECTED, ResultReason.SUPERSEDED,
                         f"older than command {newest[1] if newest else '?'} already applied")
        else:
            try:
                observed = await self.backend.apply(command)
            except ApplyError as e:
                if e.temporary:
                    # Honour the backend's delay (an API server's Retry-After); the deadline bounds it.
                    delay = e.delay_s if isinstance(e, TemporaryError) else 1.0
                    logger.warning("command %s: temporary failure (%s); retrying in %.1fs",
                                   command.command_id, e, delay)
                    return RetryLater(delay)
                status = ResultStatus.REJECTED if e.reason in _REJECTIONS else ResultStatus.FAILED
                out = result(status, e.reason, str(e))
            else:
                out = result(ResultStatus.APPLIED, ResultReason.APPLIED, observed=dict(observed))
                self.applied += 1
                if self.on_applied is not None:
                    self.on_applied(command)
        self.ledger.record(out, issued_at=command.issued_at, applied=out.status is ResultStatus.APPLIED)
        return out

    async def process(self, delivery: Delivery[ScaleCommand]) -> None:
        command = delivery.model
        repeat = self.ledger.result_of(command.command_id) is not None
        out = await self.handle(command)
        if isinstance(out, RetryLater):
            await delivery.nak(delay_s=out.delay_s)
            return
        try:
            await self.bus.publish_durable(
                subjects.results(self.cluster_id), out, msg_id=f"result:{out.command_id}"
            )
        except BusUnavailable as e:
            # Not acked: the command comes back, the ledger answers with the same result.
            logger.warning("result of %s not published (%s); leaving the command unacknowledged", out.command_id, e)
            return
        if not repeat and isinstance(self.backend, OutcomeRecorder):
            await self.backend.record_outcome(command, out.status, out.reason, out.error or "")
        await delivery.ack()
        self.metrics.commands.labels(out.status.value, out.reason.value).inc()
        logger.info("command %s %s (%s) %s", out.command_id, out.status.value, out.reason.value,
                    out.error or out.observed_replicas_by_gpu_type)

    async def run(self) -> None:
        def on_invalid(e: InvalidMessage) -> None:
            self.metrics.malformed.inc()
            logger.warning("dropped malformed command: %s", e)

        async for delivery in self.bus.durable(
            stream=subjects.COMMANDS_STREAM,
            subject=subjects.commands(self.cluster_id),
            durable=subjects.spoke_consumer(self.cluster_id),
            model=ScaleCommand,
            on_invalid=on_invalid,
            batch=16,
            create=False,  # the hub creates spoke-C; a spoke's credentials may only bind it
        ):
            await self.process(delivery)


_REJECTIONS = {
    ResultReason.CONFLICT,
    ResultReason.FORBIDDEN,
    ResultReason.NOT_FOUND,
    ResultReason.INVALID,
    ResultReason.CAPACITY,
}
