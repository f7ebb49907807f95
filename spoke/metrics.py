"""The spoke's own Prometheus metrics, defined in one place so names and labels stay consistent.

They live in ``SPOKE_REGISTRY`` rather than prometheus_client's global registry, so tests and
several spokes in one process (the demo) do not collide; the spoke's ``/metrics`` endpoint serves
this registry. Label values are low-cardinality on purpose (a failure *kind*, never a message).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

SPOKE_REGISTRY = CollectorRegistry(auto_describe=True)

SOURCE_FAILURES = Counter(
    "fleetscale_spoke_source_failures_total",
    "Telemetry source reads that produced nothing, by source and kind (timeout, unavailable, "
    "misconfigured, error). Their fields were reported missing for every workload.",
    ["source", "reason"],
    registry=SPOKE_REGISTRY,
)


def count_source_failures(failures: Iterable[tuple[str, str]]) -> None:
    """Count ``(source, reason kind)`` pairs, e.g. from ``SourceStats.failure_kinds()``."""
    for source, reason in failures:
        SOURCE_FAILURES.labels(source=source, reason=reason).inc()
