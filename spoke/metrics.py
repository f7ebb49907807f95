"""The spoke's Prometheus metrics, all in one place (``fleetscale_spoke_*``).

Each spoke has its own registry rather than prometheus_client's global one, so tests and several
spokes in one process (the demo) do not collide; the spoke's ``/metrics`` serves it. Label values are
low-cardinality on purpose (a failure *kind*, never a message).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge


class SpokeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reports = Counter("fleetscale_spoke_reports", "Telemetry reports published", registry=r)
        self.report_failures = Counter(
            "fleetscale_spoke_report_failures", "Report cycles that failed", ["stage"], registry=r
        )
        self.commands = Counter(
            "fleetscale_spoke_commands", "Commands handled", ["status", "reason"], registry=r
        )
        self.malformed = Counter(
            "fleetscale_spoke_malformed_messages", "Commands dropped because they did not validate", registry=r
        )
        self.source_failures = Counter(
            "fleetscale_spoke_source_failures",
            "Telemetry source reads that produced nothing, by source and kind (timeout, unavailable, "
            "misconfigured, error). Their fields were reported missing for every workload.",
            ["source", "reason"],
            registry=r,
        )
        self.last_report = Gauge(
            "fleetscale_spoke_last_report_timestamp_seconds", "Unix time of the last published report", registry=r
        )

    def count_source_failures(self, failures: Iterable[tuple[str, str]]) -> None:
        """Count ``(source, reason kind)`` pairs, e.g. from ``SourceStats.failure_kinds()``."""
        for source, reason in failures:
            self.source_failures.labels(source=source, reason=reason).inc()
