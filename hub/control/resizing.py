"""Resizing: vertical recommendations applied, for policies with ``resources.apply`` (docs/vertical.md).

After each evaluation the evaluator asks which planned workloads should have their containers
resized. The rails, on the hub's side (the spoke adds its own: opt-in, not mid-rollout, the floor):

* only ``enforce`` policies with ``resources.apply``, and only a workload no cluster is stale for;
* **one rollout at a time**: one cluster per workload at once, and only while every cluster's
  report shows the workload settled (ready = desired: nothing starting, nothing rolling out); the
  next cluster waits ``settle_s`` after the previous command was sent;
* a cluster is resized only where a container's current CPU or memory request lies outside the
  recommended bounds (VPA's updater rule), to the proposal (memory never below its observed peak).

Each resize is its own decision (cause ``resources``, replicas unchanged) whose audit says what was
asked of which cluster, journalled before its command goes out, like every decision.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.decisions.model import Decision, placement_json
from hub.policy.cause import Cause
from hub.policy.model import Policy
from hub.policy.vertical import ResourceHistory, changes_due
from hub.state import FleetSnapshot, WorkloadView
from shared.messages import ContainerResources, ScaleCommand, WorkloadKind, WorkloadRef

CAUSE = Cause.RESOURCES


def settled(view: WorkloadView) -> bool:
    """Every cluster runs what it was asked: no replica starting, no rollout under way."""
    return all(r.ready_replicas == r.desired_replicas for r in view.reports.values())


def describe(changes: Iterable[ContainerResources]) -> str:
    def show(value: float | None, unit: float, suffix: str) -> str:
        return "unchanged" if value is None else f"{value / unit:.3g}{suffix}"

    return "; ".join(
        f"{c.container}@{c.gpu_type}: cpu {show(c.cpu_request_cores, 1, '')} (limit "
        f"{show(c.cpu_limit_cores, 1, '')}), memory {show(c.memory_request_bytes, 2**30, 'Gi')} (limit "
        f"{show(c.memory_limit_bytes, 2**30, 'Gi')})"
        for c in changes)


@dataclass
class Resizer:
    history: ResourceHistory
    deadline_s: float
    settle_s: float = 300.0
    """After a resize command, the workload's next one waits this long (its rollout, then fresh reports)."""
    _last_sent: dict[str, float] = field(default_factory=dict)

    def plan(
        self, snapshot: FleetSnapshot, planned: Iterable[tuple[Policy, WorkloadView, int]], now: float | None = None
    ) -> list[tuple[Decision, ScaleCommand]]:
        """``(policy, view, current replicas)`` of the planned workloads -> the resize decisions due now."""
        now = time.monotonic() if now is None else now
        out = []
        for policy, view, current in planned:
            if policy.mode != "enforce" or not policy.resources.apply or view.stale_clusters or not settled(view):
                continue
            if now - self._last_sent.get(view.key, float("-inf")) < self.settle_s:
                continue
            made = self._one(snapshot, policy, view, current)
            if made is not None:
                self._last_sent[view.key] = now
                out.append(made)
        return out

    def _one(
        self, snapshot: FleetSnapshot, policy: Policy, view: WorkloadView, current: int
    ) -> tuple[Decision, ScaleCommand] | None:
        recs = self.history.recommend(view.key)
        if not recs:
            return None
        for cluster_id, report in sorted(view.reports.items()):
            default = report.variants[0].gpu_type if len(report.variants) == 1 else "unknown"
            changes = changes_due(recs, report.samples.containers, default)
            if not changes:
                continue
            issued = datetime.now(UTC)
            text = f"resources: {describe(changes)} in {cluster_id} (requests outside the recommended bounds)"
            command = ScaleCommand(
                cluster_id=cluster_id,
                workload=WorkloadRef(namespace=report.workload.namespace, name=report.workload.name,
                                     kind=report.workload.kind or WorkloadKind.DEPLOYMENT),
                replicas_by_gpu_type={}, gpus_per_replica=view.gpus_per_replica, policy_id=policy.id,
                policy_revision=policy.revision, reason=text[:1024], issued_at=issued,
                deadline=issued + timedelta(seconds=self.deadline_s), resources=changes,
            )
            placement = placement_json(snapshot.current_placement(view))
            decision = Decision(
                workload=view.key, policy_id=policy.id, policy_revision=policy.revision, mode="enforce",
                current_replicas=current, desired_replicas=current, reason=text, cause=CAUSE, inputs={},
                placement_before=placement, placement_after=placement, commands=[command.command_id],
                audit={"resources": {
                    "apply": True, "cluster": cluster_id,
                    "changes": [c.model_dump(mode="json") for c in changes],
                    "containers": [r.to_json() for r in recs],
                }},
            )
            return decision, command
        return None
