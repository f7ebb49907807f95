"""The spoke's Prometheus metrics, all in one place (``fleetscale_spoke_*``).

Each spoke has its own registry rather than prometheus_client's global one, so tests and several
spokes in one process (the demo) do not collide; the spoke's ``/metrics`` serves it. Label values are
low-cardinality on purpose (a failure *kind*, never a message).

A spoke that knows its cluster id labels every series ``cluster=<id>``, the same value the hub's
``fleetscale_hub_*{cluster}`` series carry, so one dashboard variable filters both sides without
relying on each Prometheus's relabelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

REPORT_STAGES = ("cluster", "samples", "publish")
"""Where a report cycle can fail (``spoke.reporter``): reading the cluster, sampling, publishing."""

SOURCE_FAILURE_KINDS = ("timeout", "unavailable", "misconfigured", "error")
"""The failure kinds ``spoke.sources.runner`` classifies a source read into."""


class _WithLabels(Collector):
    """Exposes another registry's samples with constant labels added."""

    def __init__(self, inner: CollectorRegistry, labels: dict[str, str]) -> None:
        self.inner = inner
        self.labels = labels

    def collect(self) -> Iterator[Metric]:
        for family in self.inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [s._replace(labels={**self.labels, **s.labels}) for s in family.samples]
            yield out


class SpokeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, cluster: str | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry if cluster is None else CollectorRegistry()
        self.reports = Counter("fleetscale_spoke_reports", "Telemetry reports published", registry=r)
        self.report_failures = Counter(
            "fleetscale_spoke_report_failures", "Report cycles that failed, by stage", ["stage"], registry=r
        )
        self.commands = Counter(
            "fleetscale_spoke_commands", "Commands handled", ["status", "reason"], registry=r
        )
        self.fenced = Counter(
            "fleetscale_spoke_commands_fenced",
            "Commands refused because their fencing epoch was below one already seen for their lease: sent by "
            "a hub that no longer owned the workload (also counted in commands, rejected/superseded)", registry=r,
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
        self.rejected_samples = Counter(
            "fleetscale_spoke_rejected_samples",
            "Exposition sample lines a source could not parse and dropped (one value each), by source",
            ["source"],
            registry=r,
        )
        self.unknown_engine_pods = Gauge(
            "fleetscale_spoke_unknown_engine_pods",
            "Scraped pods whose metrics match no known inference engine: their load is unknown, not zero",
            registry=r,
        )
        self.autonomous = Gauge(
            "fleetscale_spoke_autonomous",
            "1 while the hub is away and the spoke holds the last applied counts (spoke.autonomy)", registry=r,
        )
        self.autonomy_reapplied = Counter(
            "fleetscale_spoke_autonomy_reapplied",
            "Workloads restored to the hub's last applied count while the hub was away", registry=r,
        )
        self.last_report = Gauge(
            "fleetscale_spoke_last_report_timestamp_seconds", "Unix time of the last published report", registry=r
        )
        if cluster is not None:
            self.registry.register(_WithLabels(r, {"cluster": cluster}))
        # Known label values start at 0, so rate() and dashboards see the series before the first failure.
        for stage in REPORT_STAGES:
            self.report_failures.labels(stage)

    def init_sources(self, sources: Iterable[str]) -> None:
        """Start every failure kind of the configured sources at 0."""
        for source in sources:
            self.rejected_samples.labels(source=source)
            for kind in SOURCE_FAILURE_KINDS:
                self.source_failures.labels(source=source, reason=kind)

    def count_source_failures(self, failures: Iterable[tuple[str, str]]) -> None:
        """Count ``(source, reason kind)`` pairs, e.g. from ``SourceStats.failure_kinds()``."""
        for source, reason in failures:
            self.source_failures.labels(source=source, reason=reason).inc()

    def count_rejected_samples(self, rejected: Iterable[tuple[str, int]]) -> None:
        """Count ``(source, dropped sample lines)`` pairs, e.g. from ``SourceStats.rejected()``."""
        for source, count in rejected:
            if count:
                self.rejected_samples.labels(source=source).inc(count)
