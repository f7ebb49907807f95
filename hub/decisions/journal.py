"""The decision journal: decision records made durable in JetStream, and read back when the hub starts.

Each change to a record (the decision itself, then each command result attached to it) is published
as the record's whole JSON (``Decision.model_dump_json``), the same object ``GET /api/v1/decisions/{id}``
serves, on the subject
``fleetscale.v1.decisions.<id>``. The stream keeps one message per subject, so the last revision of
each decision wins and nothing needs merging on replay.

A decision that sends commands is stored *before* its commands go out (``store``, which waits for
JetStream's ack): a hub that dies in between leaves a decision whose commands never went, never a
command that no decision explains. Every other change never waits for NATS: ``record`` only queues
the record, and the ``run`` task publishes in the background. Revisions of one record that queue up
while NATS is slow are coalesced (each is the whole record, so only the newest matters). A failed
publish is counted, logged and retried; beyond ``max_pending`` records the oldest are dropped and
counted, so an outage cannot grow memory forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from shared import subjects
from shared.bus import Bus
from shared.errors import BusUnavailable
from shared.replay import tail

logger = logging.getLogger(__name__)


class DecisionJournal:
    def __init__(
        self,
        bus: Bus,
        metrics: HubMetrics,
        *,
        max_pending: int = 10_000,
        concurrency: int = 256,
        publish_timeout_s: float = 2.0,
        flush_timeout_s: float = 2.0,
    ) -> None:
        self.bus = bus
        self.metrics = metrics
        self.max_pending = max_pending
        self.concurrency = concurrency
        self.publish_timeout_s = publish_timeout_s
        self.flush_timeout_s = flush_timeout_s
        self._pending: dict[str, Decision] = {}
        self._stored: dict[str, bytes] = {}
        """Decision id -> the payload ``store`` just made durable, so ``record`` need not send it again."""
        self._wake = asyncio.Event()
        self.failures = 0

    # --- read back --------------------------------------------------------------------------

    async def replay(self, log: DecisionLog, *, last: int) -> int:
        """Fill ``log`` with the last ``last`` stored records, in decision order.

        A hub that cannot read its history still starts (the history is an audit trail, not state
        the control loop needs); the failure is counted and logged.
        """
        try:
            payloads = await tail(self.bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=last)
        except BusUnavailable as e:
            self.metrics.journal_failures.labels("replay").inc()
            logger.error("decision history not read back (%s); starting with an empty history", e)
            return 0
        records: dict[str, Decision] = {}
        for data in payloads:
            try:
                # Older hubs' records read back too: extra keys (their ``action``) are ignored.
                decision = Decision.model_validate_json(data)
            except ValidationError as e:
                self.metrics.malformed.labels("decision").inc()
                logger.warning("dropped a stored decision record that does not parse: %s", e)
                continue
            records[decision.id] = decision  # a later revision replaces an earlier one
        # Stream order is the order of the *last change*; the log wants the order of decision.
        log.restore(sorted(records.values(), key=lambda d: d.at))
        logger.info("read back %d decisions from %s", len(records), subjects.DECISIONS_STREAM)
        return len(records)

    # --- write ------------------------------------------------------------------------------

    async def store(self, decisions: list[Decision]) -> set[str]:
        """Make these records durable now, each waiting for its JetStream ack; the ids that were stored.

        The evaluator calls it before publishing the records' commands, and withholds the commands
        of any record that was not stored (it decides again next tick).
        """
        stored: set[str] = set()
        for i in range(0, len(decisions), self.concurrency):
            chunk = decisions[i : i + self.concurrency]
            payloads = [(d, data) for d in chunk if (data := self._payload(d)) is not None]
            outcomes = await asyncio.gather(*(self._publish(d, data) for d, data in payloads))
            for (decision, data), outcome in zip(payloads, outcomes, strict=True):
                if outcome is None:
                    stored.add(decision.id)
                    self._stored[decision.id] = data
        if len(self._stored) > self.max_pending:  # records stored but never recorded after: forget the oldest
            for old in list(self._stored)[: len(self._stored) - self.max_pending]:
                del self._stored[old]
        return stored

    def _payload(self, decision: Decision) -> bytes | None:
        try:
            return decision.model_dump_json().encode()
        except (PydanticSerializationError, TypeError, ValueError) as e:
            # NB: a record that cannot be encoded once killed this task, and the hub with it.
            self.metrics.journal_failures.labels("dropped").inc()
            logger.error("decision %s not stored: it cannot be encoded (%s)", decision.id, e)
            return None

    def record(self, decision: Decision) -> None:
        """Queue the record's current state for publishing; never blocks (a ``DecisionLog`` listener)."""
        self._pending.pop(decision.id, None)  # re-queue at the end: it is the newest change now
        self._pending[decision.id] = decision
        while len(self._pending) > self.max_pending:
            dropped = next(iter(self._pending))
            del self._pending[dropped]
            self.metrics.journal_failures.labels("dropped").inc()
            logger.warning("decision %s not stored: %d records already wait for NATS", dropped, self.max_pending)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Publish queued records until cancelled; on cancel, flush what is queued for a bounded time."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                delay = await self._publish_pending()
                if delay:
                    await asyncio.sleep(delay)
        finally:
            if self._pending:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(self.flush_timeout_s):
                        await self._publish_pending()
                if self._pending:
                    logger.warning("%d decision records not stored at shutdown", len(self._pending))

    async def _publish_pending(self) -> float:
        """Publish everything queued now; return a delay before the next try (0 when all went)."""
        batch, self._pending = self._pending, {}
        items = list(batch.values())
        delay = 0.0
        for i in range(0, len(items), self.concurrency):
            chunk = items[i : i + self.concurrency]
            # Serialise now, in one go: the record may change again while its publish is in flight,
            # and that change is queued on its own.
            payloads = [(d, data) for d in chunk if (data := self._payload(d)) is not None
                        and self._stored.pop(d.id, None) != data]  # not what ``store`` just stored
            outcomes = await asyncio.gather(*(self._publish(d, data) for d, data in payloads))
            for (decision, _), outcome in zip(payloads, outcomes, strict=True):
                if outcome is None:
                    continue
                delay = max(delay, outcome)
                if decision.id not in self._pending:  # a newer revision already waits: that one wins
                    self._pending[decision.id] = decision
        if self._pending:
            self._wake.set()
        return delay

    async def _publish(self, decision: Decision, data: bytes) -> float | None:
        """None when stored; otherwise the delay the bus suggests before trying again."""
        try:
            subject = subjects.decision(decision.id)
        except ValueError as e:
            self.metrics.journal_failures.labels("dropped").inc()
            logger.error("decision not stored: %s", e)
            return None
        # The content hash as message id: a retry of a publish whose ack was lost is dropped by the
        # server, while a real change (a new result) always goes through.
        msg_id = f"decision:{decision.id}:{hashlib.sha256(data).hexdigest()[:24]}"
        try:
            await self.bus.publish_durable(subject, data, msg_id=msg_id, timeout_s=self.publish_timeout_s)
        except BusUnavailable as e:
            self.failures += 1
            self.metrics.journal_failures.labels("publish").inc()
            # NB: logged on the 1st, 10th, 100th... failure: an outage fails every record of every tick.
            if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
                logger.warning("decision records not stored (%d failures so far; retrying): %s", self.failures, e)
            return e.delay_s
        self.metrics.journal_published.inc()
        return None
