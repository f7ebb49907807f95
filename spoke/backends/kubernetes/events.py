"""Kubernetes Events on managed workloads, so ``kubectl describe`` shows what Fleetscale did and why.

One core/v1 Event per command outcome, on the base object the hub named:
``FleetscaleScaled`` (Normal) when applied, ``FleetscaleRejected`` / ``FleetscaleFailed``
(Warning) otherwise. The message carries the command id, the replicas per GPU type, the policy and
the reason, which is enough to find the decision in the hub's log.

Events are a courtesy to operators: failing to write one (RBAC, a throttled API server) is logged
and never turns an applied command into a failed one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from shared.messages import ContainerResources, ResultStatus, ScaleCommand
from spoke.backend import ApplyError
from spoke.backends.kubernetes.client import KINDS, KubeClient, Raw
from spoke.backends.kubernetes.resizing import cpu_quantity, memory_quantity

logger = logging.getLogger(__name__)

REASONS: dict[ResultStatus, tuple[str, str]] = {
    ResultStatus.APPLIED: ("FleetscaleScaled", "Normal"),
    ResultStatus.REJECTED: ("FleetscaleRejected", "Warning"),
    ResultStatus.FAILED: ("FleetscaleFailed", "Warning"),
}
MAX_MESSAGE_CHARS = 1024
"""The API server accepts longer messages, but ``kubectl describe`` and event sinks truncate."""


def event_message(command: ScaleCommand, status: ResultStatus, reason: str, message: str) -> str:
    replicas = ", ".join(f"{t}={n}" for t, n in sorted(command.replicas_by_gpu_type.items()))
    text = (
        f"command {command.command_id} {status}: replicas {{{replicas}}} by policy "
        f"{command.policy_id}@{command.policy_revision} ({reason})"
    )
    if command.resources:
        text += "; resources " + "; ".join(_resources_text(c) for c in command.resources)
    if message:
        text += f": {message}"
    return text[:MAX_MESSAGE_CHARS]


def _resources_text(change: ContainerResources) -> str:
    """``engine@H100 cpu 1200m/-, memory 7516192768/-`` (request/limit; - leaves it)."""
    def show(value: float | None, fmt: Callable[[float], str]) -> str:
        return "-" if value is None else fmt(value)

    return (f"{change.container}@{change.gpu_type} cpu {show(change.cpu_request_cores, cpu_quantity)}/"
            f"{show(change.cpu_limit_cores, cpu_quantity)}, memory {show(change.memory_request_bytes, memory_quantity)}"
            f"/{show(change.memory_limit_bytes, memory_quantity)}")


def build_event(
    command: ScaleCommand,
    status: ResultStatus,
    reason: str,
    message: str,
    *,
    source: str,
    uid: str | None = None,
) -> Raw:
    ref = command.workload
    event_reason, event_type = REASONS[status]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: Raw = {
        "apiVersion": KINDS[ref.kind].api_version,
        "kind": str(ref.kind),
        "name": ref.name,
        "namespace": ref.namespace,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # Same naming scheme as the API server's own recorder: <object>.<unique suffix>.
        "metadata": {"name": f"{ref.name}.{secrets.token_hex(8)}", "namespace": ref.namespace},
        "involvedObject": involved,
        "reason": event_reason,
        "type": event_type,
        "message": event_message(command, status, reason, message),
        "source": {"component": source},
        "reportingComponent": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def emit(
    client: KubeClient,
    command: ScaleCommand,
    status: ResultStatus,
    reason: str,
    message: str,
    *,
    source: str,
    uid: str | None = None,
) -> bool:
    """Write the event; return whether it was written (failures are logged, never raised)."""
    body = build_event(command, status, reason, message, source=source, uid=uid)
    try:
        await client.create_event(command.workload.namespace, body)
    except ApplyError as exc:
        logger.warning(
            "Could not record event %s for command %s on %s: %s",
            body["reason"],
            command.command_id,
            command.workload.key,
            exc,
        )
        return False
    return True
