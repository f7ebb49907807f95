"""A resources-only command (vertical recommendations) never replaces the counts held while the hub is away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.messages import ContainerResources, ScaleCommand, WorkloadRef
from spoke.autonomy import Autonomy
from spoke.metrics import SpokeMetrics


def command(replicas: dict[str, int], *resources: ContainerResources) -> ScaleCommand:
    now = datetime.now(UTC)
    return ScaleCommand(cluster_id="c", workload=WorkloadRef(namespace="llm", name="chat"),
                        replicas_by_gpu_type=replicas, policy_id="p", issued_at=now,
                        deadline=now + timedelta(minutes=1), resources=resources)


def test_the_held_counts_are_the_last_scale_not_a_later_resize() -> None:
    autonomy = Autonomy(None, None, SpokeMetrics(), away_after_s=10, hold_s=60, interval_s=1)  # type: ignore[arg-type]
    scale = command({"H100": 3})
    autonomy.record_applied(scale)
    autonomy.record_applied(command({}, ContainerResources(gpu_type="H100", container="engine", cpu_request_cores=1.0)))
    assert autonomy.applied["llm/chat"] is scale
