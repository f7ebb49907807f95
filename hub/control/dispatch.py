"""Dispatch: placements out as scale commands, results back into state. The only bus writer of commands.

A command is sent only when a cluster's target differs from what the hub last asked of it and from
what the cluster already reports. Each carries absolute replicas for every GPU type the workload has
there (types it leaves are set to 0), a fresh id that doubles as the JetStream message id, and a
deadline. A rejected command is not re-sent with the same target for ``retry_after_reject_s``, so a
permanent refusal (a conflicting HPA) does not become a command storm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetSnapshot, FleetState, Intent, Placement, WorkloadView
from shared import subjects
from shared.bus import Bus
from shared.errors import BusUnavailable, InvalidMessage
from shared.messages import CommandResult, ResultStatus, ScaleCommand, WorkloadKind, WorkloadRef

logger = logging.getLogger(__name__)


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
    ) -> None:
        self.bus = bus
        self.state = state
        self.decisions = decisions
        self.metrics = metrics
        self.deadline_s = deadline_s
        self.retry_after_reject_s = retry_after_reject_s
        self._revoking: set[str] = set()

    def needs_command(
        self, snapshot: FleetSnapshot, view: WorkloadView, cluster_id: str, target: Mapping[str, int]
    ) -> bool:
        intent = snapshot.live_intent(view.key, cluster_id)
        if intent is not None and dict(intent.replicas_by_gpu_type) == dict(target):
            if intent.result is None or intent.result.status is ResultStatus.APPLIED:
                return False  # already asked (and in flight, or done)
            return time.monotonic() - intent.sent_monotonic >= self.retry_after_reject_s
        report = view.reports.get(cluster_id)
        if report is not None and intent is None:
            observed = {v.gpu_type: v.desired_replicas for v in report.variants}
            if all(observed.get(t, 0) == n for t, n in target.items()):
                return False  # the cluster already runs this
        return True

    def commands_for(
        self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy, placement: Placement, reason: str
    ) -> list[ScaleCommand]:
        """The commands this placement needs (none for clusters already there or already asked)."""
        out = []
        now = datetime.now(UTC)
        for cluster_id, target in sorted(cluster_targets(placement, view).items()):
            report = view.reports.get(cluster_id)
            if report is None:
                continue  # a cluster that never reported this workload cannot be asked to scale it
            if not self.needs_command(snapshot, view, cluster_id, target):
                continue
            out.append(ScaleCommand(
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
            ))
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
        """Publish commands concurrently (each waits for its JetStream ack); return the ids sent.

        NB: concurrently, not one by one: at thousands of commands a tick, sequential publish-acks
        (~1-2 ms each) made one tick outlast the tick period.
        """
        outcomes = await asyncio.gather(*(self._send_one(c) for c in commands))
        return [c.command_id for c, ok in zip(commands, outcomes, strict=True) if ok]

    async def _send_one(self, command: ScaleCommand) -> bool:
        try:
            await self.bus.publish_command(command)
        except BusUnavailable as e:
            logger.warning("command for %s on %s not sent (%s); will retry next tick",
                           command.workload.key, command.cluster_id, e)
            return False
        self.state.record_intent(
            command.workload.key,
            command.cluster_id,
            Intent(command.command_id, dict(command.replicas_by_gpu_type), command.issued_at, time.monotonic()),
        )
        self.metrics.commands.labels(command.cluster_id).inc()
        logger.debug("sent %s to %s: %s (%s)", command.command_id, command.cluster_id,
                     command.replicas_by_gpu_type, command.reason)
        return True

    async def results_listener(self) -> None:
        """Consume command results (durable, so none is lost while the hub is down)."""

        def on_invalid(e: InvalidMessage) -> None:
            self.metrics.malformed.labels("result").inc()
            logger.warning("dropped malformed result: %s", e)

        async for delivery in self.bus.durable(
            stream=subjects.RESULTS_STREAM,
            subject=subjects.RESULTS_ALL,
            durable=subjects.HUB_RESULTS_CONSUMER,
            model=CommandResult,
            on_invalid=on_invalid,
        ):
            self.on_result(delivery.model)
            await delivery.ack()

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
