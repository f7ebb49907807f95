"""Dispatch: placements out as scale commands, results back into state. The only bus writer of commands.

A command is sent only when a cluster's target differs from what the hub last asked of it and from
what the cluster already reports. Each carries absolute replicas for every GPU type the workload has
there (types it leaves are set to 0), a fresh id that doubles as the JetStream message id, and a
deadline. A rejected command is not re-sent with the same target for ``retry_after_reject_s``, so a
permanent refusal (a conflicting HPA) does not become a command storm. A target the cluster applied
and then drifted away from (something else scales the workload back) is re-sent with an exponential
back-off (``HUB_DRIFT_BACKOFF_BASE_S`` doubling up to ``HUB_DRIFT_BACKOFF_CAP_S``), counted and
noted on the decision, instead of once a tick.

Results are checked before they count: the cluster in the message must be the subject's, the
command must be one the hub issued to that cluster for that workload (``hub.control.ledger``), and
``completed_at`` must not be ahead of the hub's clock. Anything else is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from hub.control.admission import Admission
from hub.control.ledger import IssuedCommands
from hub.control.shard import Shard
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetSnapshot, FleetState, Intent, Placement, WorkloadView
from shared import subjects
from shared.bus import Bus
from shared.errors import BusUnavailable, InvalidMessage
from shared.messages import CommandResult, ResultStatus, RoutingRule, ScaleCommand, WorkloadKind, WorkloadRef

logger = logging.getLogger(__name__)

MAX_ACKS_IN_FLIGHT = 256
"""Result acknowledgements awaited at once (``Dispatcher.results_listener``)."""


def cluster_targets(placement: Placement, view: WorkloadView) -> dict[str, dict[str, int]]:
    """Per cluster, absolute replicas for every GPU type that is placed or currently present."""
    out: dict[str, dict[str, int]] = {}
    for (cid, gpu_type), n in view.placement().items():
        if n and gpu_type != "unknown":
            out.setdefault(cid, {})[gpu_type] = 0
    for (cid, gpu_type), n in placement.items():
        out.setdefault(cid, {})[gpu_type] = n
    return out


class Dispatcher:
    def __init__(
        self,
        bus: Bus,
        state: FleetState,
        decisions: DecisionLog,
        metrics: HubMetrics,
        *,
        deadline_s: float,
        retry_after_reject_s: float = 30.0,
        drift_backoff_base_s: float = 5.0,
        drift_backoff_cap_s: float = 300.0,
        ledger: IssuedCommands | None = None,
        admission: Admission | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.bus = bus
        self.shard = shard or Shard()
        """Sharded hubs: the fencing token of each command, and whose results are this hub's."""
        self.state = state
        self.decisions = decisions
        self.metrics = metrics
        self.deadline_s = deadline_s
        self.retry_after_reject_s = retry_after_reject_s
        self.drift_backoff_base_s = drift_backoff_base_s
        self.drift_backoff_cap_s = drift_backoff_cap_s
        self.ledger = ledger or IssuedCommands()
        self.max_clock_skew_s = admission.max_clock_skew_s if admission is not None else 30.0
        self._attempts: dict[str, int] = {}
        """Command id -> its send number for the same target (above 1: a drift re-send), until sent."""
        self.notes: dict[str, str] = {}
        """Command id -> a note for its decision (drift re-sends); the evaluator takes them."""
        self._revoking: set[str] = set()

    def withdraw(self, command_id: str) -> None:
        """Forget a command built but not to be sent (its decision could not be journalled)."""
        self._attempts.pop(command_id, None)
        self.notes.pop(command_id, None)

    def drift_pause_s(self, attempts: int) -> float:
        """The pause before the next send of a target already sent ``attempts`` times in a row."""
        return min(self.drift_backoff_cap_s, self.drift_backoff_base_s * 2 ** min(attempts - 1, 30))

    def drift_attempt(self, view: WorkloadView, cluster_id: str, target: Mapping[str, int]) -> int | None:
        """For a target the cluster applied and no longer runs: this send's number, or None while it
        must wait. 1 when it is not such a re-send."""
        last = self.state.intent(view.key, cluster_id)
        if last is None or dict(last.replicas_by_gpu_type) != dict(target) or last.result is None \
                or last.result.status is not ResultStatus.APPLIED:
            return 1
        since = time.monotonic() - last.sent_monotonic
        if since > 2 * self.drift_backoff_cap_s:
            return 2  # long since the last send: a new drift, not the same one
        if since < self.drift_pause_s(last.attempts):
            return None
        return last.attempts + 1

    def needs_command(
        self, snapshot: FleetSnapshot, view: WorkloadView, cluster_id: str, target: Mapping[str, int]
    ) -> bool:
        intent = snapshot.live_intent(view.key, cluster_id)
        if intent is not None and dict(intent.replicas_by_gpu_type) == dict(target):
            if intent.phase.stands:
                return False  # already asked (in flight, or applied and not yet in a report)
            # Refused: asked again only after a pause, so a permanent refusal is not a command storm.
            return time.monotonic() - intent.sent_monotonic >= self.retry_after_reject_s
        report = view.reports.get(cluster_id)
        if report is not None and intent is None:
            observed = {v.gpu_type: v.desired_replicas for v in report.variants}
            if all(observed.get(t, 0) == n for t, n in target.items()):
                return False  # the cluster already runs this
        return True

    def commands_for(
        self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy, placement: Placement, reason: str,
        routing: tuple[RoutingRule, ...] = (),
    ) -> list[ScaleCommand]:
        """The commands this placement needs (none for clusters already there or already asked).

        ``routing`` (the plan's rules per prompt-length class) travels with them: each cluster's spoke
        hands it to the gateway in front of its replicas (docs/routing.md)."""
        out = []
        now = datetime.now(UTC)
        for cluster_id, target in sorted(cluster_targets(placement, view).items()):
            report = view.reports.get(cluster_id)
            if report is None:
                continue  # a cluster that never reported this workload cannot be asked to scale it
            if not self.needs_command(snapshot, view, cluster_id, target):
                continue
            attempt = self.drift_attempt(view, cluster_id, target)
            if attempt is None:
                continue  # drifted again: wait out the back-off before asking once more
            command = ScaleCommand(
                cluster_id=cluster_id,
                workload=WorkloadRef(
                    namespace=report.workload.namespace,
                    name=report.workload.name,
                    kind=report.workload.kind or WorkloadKind.DEPLOYMENT,
                ),
                replicas_by_gpu_type=target,
                gpus_per_replica=view.gpus_per_replica,
                policy_id=policy.id,
                policy_revision=policy.revision,
                reason=reason,
                issued_at=now,
                deadline=now + timedelta(seconds=self.deadline_s),
                routing=routing,
                fence=self.shard.fence(view.key),
            )
            if attempt > 1:
                self._attempts[command.command_id] = attempt
                observed = {v.gpu_type: v.desired_replicas for v in report.variants} or report.desired_replicas
                self.notes[command.command_id] = (
                    f"drift: {cluster_id} applied {dict(target)} but reports {observed}; re-sent (attempt "
                    f"{attempt}), the next re-send waits {self.drift_pause_s(attempt):.0f}s"
                )
            out.append(command)
        return out

    async def revoke(self, clusters: Iterable[str]) -> None:
        """Revoke the queued commands of clusters that went stale, now or (bus down) on a later call.

        The hub re-places a lost cluster's share at once; a command still queued for it would be
        applied when its spoke returns (within the command's deadline), undoing that. So it is
        deleted from the stream, and the hub forgets what it asked there: the returning cluster's
        reports say what it runs, and any new ask is a new command.
        """
        self._revoking.update(clusters)
        for cluster_id in sorted(self._revoking):
            try:
                purged = await self.bus.purge_commands(cluster_id)
            except BusUnavailable as e:
                logger.warning("commands queued for stale cluster %s not revoked yet (%s); will retry", cluster_id, e)
                continue
            self._revoking.discard(cluster_id)
            forgotten = self.state.forget_intents(cluster_id)
            self.metrics.commands_revoked.labels(cluster_id).inc(purged)
            logger.warning("cluster %s is stale: revoked %d queued commands, forgot %d asks", cluster_id, purged,
                           forgotten)

    async def send(self, commands: list[ScaleCommand]) -> list[str]:
        """Publish commands concurrently (each waits for its JetStream ack); return the ids confirmed.

        The others were not confirmed, which does not mean they were not stored (``_send_one``).

        NB: concurrently, not one by one: at thousands of commands a tick, sequential publish-acks
        (~1-2 ms each) made one tick outlast the tick period.
        """
        outcomes = await asyncio.gather(*(self._send_one(c) for c in commands))
        return [c.command_id for c, ok in zip(commands, outcomes, strict=True) if ok]

    async def send_resources(self, commands: list[ScaleCommand]) -> list[str]:
        """Publish resources-only commands (``hub.control.resizing``); return the ids confirmed.

        They change no replica count, so they record no intent (placement keeps reading the
        clusters' reports); the ledger knows them, so their results count and attach to their decision.
        """
        confirmed = []
        for command in commands:
            self.ledger.add(command.command_id, command.cluster_id, command.workload.key)
            try:
                await self.bus.publish_command(command)
            except BusUnavailable as e:
                logger.warning("resources command %s for %s on %s not confirmed (%s); it may still be delivered",
                               command.command_id, command.workload.key, command.cluster_id, e)
                continue
            self.metrics.commands.labels(command.cluster_id).inc()
            confirmed.append(command.command_id)
        return confirmed

    async def _send_one(self, command: ScaleCommand) -> bool:
        key, cluster_id = command.workload.key, command.cluster_id
        attempts = self._attempts.pop(command.command_id, 1)
        # Known before it is published: its result may come back before the publish ack does.
        previous = self.state.intent(key, cluster_id)
        self.ledger.add(command.command_id, cluster_id, key)
        self.state.record_intent(key, cluster_id, Intent(
            command.command_id, dict(command.replicas_by_gpu_type), command.issued_at, time.monotonic(),
            attempts=attempts,
        ))
        try:
            await self.bus.publish_command(command)
        except BusUnavailable as e:
            # Not confirmed is not "not sent": nats-py keeps a publish made while it reconnects and
            # sends it once the server is back, and a server may store a command and die before
            # its ack. So the ledger keeps it (its result counts if it comes) and its decision keeps
            # naming it (tick.py); the previous intent comes back, so the workload is decided again.
            # NB: discarded, such a command could be applied with no decision naming it, and its result was
            # refused (seen building the chaos run, tests/e2e/test_chaos.py; shown by test_failover.py).
            self.state.restore_intent(key, cluster_id, previous)
            self.notes.pop(command.command_id, None)
            logger.warning("command %s for %s on %s not confirmed (%s); it may still be delivered; deciding "
                           "again next tick", command.command_id, key, cluster_id, e)
            return False
        self.metrics.commands.labels(cluster_id).inc()
        if attempts > 1:
            self.metrics.drift_resends.labels(cluster_id).inc()
            logger.warning("%s on %s: re-sent %s (attempt %d): the cluster applied it and drifted away",
                           key, cluster_id, command.replicas_by_gpu_type, attempts)
        # With its id as a field: the chaos test reads what each hub process sent from its JSON log.
        logger.debug("sent %s to %s: %s (%s)", command.command_id, cluster_id, command.replicas_by_gpu_type,
                     command.reason, extra={"command_id": command.command_id, "cluster": cluster_id})
        return True

    async def results_listener(self) -> None:
        """Consume command results (durable, so none is lost while the hub is down)."""

        def on_invalid(e: InvalidMessage) -> None:
            self.metrics.malformed.labels("result").inc()
            logger.warning("dropped malformed result: %s", e)

        acks: set[asyncio.Task[bool]] = set()
        # Sharded, each hub reads every result through its own consumer (one shared consumer would
        # hand a result to one hub only, often not the one that sent the command); one left behind
        # by a hub that is gone is deleted by the server after a day unused.
        own = self.shard.keeper.hub_id if self.shard.keeper is not None else None
        try:
            async for delivery in self.bus.durable(
                stream=subjects.RESULTS_STREAM,
                subject=subjects.RESULTS_ALL,
                durable=subjects.HUB_RESULTS_CONSUMER if own is None else subjects.hub_results_consumer(own),
                model=CommandResult,
                on_invalid=on_invalid,
                from_now=own is not None,
                inactive_threshold_s=None if own is None else 86_400.0,
            ):
                reason = self.refusal(delivery.msg.subject, delivery.model)
                if reason is None:
                    self.on_result(delivery.model)
                elif reason != "unknown_command" or not self.shard.sharded:
                    # (sharded, every hub reads every hub's results: one for a command this hub did not
                    # send is another hub's, or the previous owner's of a partition taken over; ignored)
                    self.metrics.refused.labels("result", reason).inc()
                    logger.warning("refused result %s from %s (%s)", delivery.model.command_id,
                                   delivery.model.cluster_id, reason)
                # Refused or not, it is done: retrying it cannot change the answer. NB: acknowledged
                # concurrently, results still handled in order: one ack round trip after another
                # capped the results the hub took (at 10,000 workloads, a thousand a second). A lost
                # ack means a redelivery, which finds the intent already answered.
                ack = asyncio.create_task(delivery.ack())
                acks.add(ack)
                ack.add_done_callback(acks.discard)
                if len(acks) >= MAX_ACKS_IN_FLIGHT:
                    await asyncio.wait(acks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for ack in acks:
                ack.cancel()  # not acknowledged: redelivered to the next hub, as after a crash

    def refusal(self, subject: str, result: CommandResult) -> str | None:
        """Why the result must not count (None: it answers a command the hub sent that cluster)."""
        if subjects.cluster_of(subject) != result.cluster_id:
            return "subject_mismatch"
        if result.completed_at > datetime.now(UTC) + timedelta(seconds=self.max_clock_skew_s):
            return "future"  # kept, it would make the hub trust the applied counts over telemetry forever
        intent = self.state.intent(result.workload.key, result.cluster_id)
        if (intent is None or intent.command_id != result.command_id) and not self.ledger.answers(result):
            return "unknown_command"
        return None

    def on_result(self, result: CommandResult) -> None:
        intent = self.state.record_result(result)
        self.decisions.attach_result(result)
        self.metrics.results.labels(result.cluster_id, result.status.value, result.reason.value).inc()
        if intent is not None:
            latency = max(time.monotonic() - intent.sent_monotonic, 0.0)
            self.metrics.command_latency.labels(result.cluster_id).observe(latency)
        log = logger.info if result.status is ResultStatus.APPLIED else logger.warning
        log(
            "result %s from %s: %s/%s %s",
            result.command_id,
            result.cluster_id,
            result.status.value,
            result.reason.value,
            result.error or result.observed_replicas_by_gpu_type,
        )
