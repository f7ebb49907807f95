"""Telemetry of a simulated cluster as a spoke would report it: real ``TelemetryReport`` messages.

The same fields the spoke's reporter fills from a ``SimulatedBackend`` (inventory, workload states
with per-GPU-type variants, windowed samples), built synchronously from the world so the backtest
needs no event loop or bus. Simulated seconds map to wall-clock stamps from ``EPOCH``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from shared.messages import TelemetryReport, WorkloadReport
from shared.simulation import SimWorld

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SPOKE_VERSION = "backtest"


def cluster_report(
    world: SimWorld,
    cluster_id: str,
    *,
    sequence: int,
    interval_s: float,
    window_s: float,
    labels: Mapping[str, Mapping[str, str]],
) -> TelemetryReport:
    """One cluster's report at the world's current time; ``labels`` per workload key (none if absent)."""
    workloads = [
        WorkloadReport(
            workload=state.ref,
            desired_replicas=state.desired_replicas,
            ready_replicas=state.ready_replicas,
            gpus_per_replica=state.gpus_per_replica,
            variants=state.variants,
            samples=world.samples(cluster_id, state.ref.namespace, state.ref.name, window_s),
            labels=dict(labels.get(f"{state.ref.namespace}/{state.ref.name}", {})),
        )
        for state in world.workload_states(cluster_id)
    ]
    return TelemetryReport(
        cluster_id=cluster_id,
        sequence=sequence,
        sent_at=EPOCH + timedelta(seconds=world.now_s),
        interval_s=interval_s,
        spoke_version=SPOKE_VERSION,
        inventory=tuple(world.inventory(cluster_id)),
        workloads=tuple(workloads),
    )
