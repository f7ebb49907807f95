"""The hub's Prometheus metrics, all in one place (``fleetscale_hub_*``); dashboards use these names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HubMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reports = Counter("fleetscale_hub_reports", "Telemetry reports accepted", ["cluster"], registry=r)
        self.malformed = Counter(
            "fleetscale_hub_malformed_messages", "Messages dropped because they did not validate", ["kind"], registry=r
        )
        self.report_age = Gauge(
            "fleetscale_hub_report_age_seconds", "Seconds since the cluster's last report", ["cluster"], registry=r
        )
        self.cluster_stale = Gauge(
            "fleetscale_hub_cluster_stale", "1 when the cluster missed its report deadline", ["cluster"], registry=r
        )
        self.decisions = Counter(
            "fleetscale_hub_decisions", "Decisions that changed replicas or placement", ["action"], registry=r
        )
        self.commands = Counter("fleetscale_hub_commands_sent", "Scale commands published", ["cluster"], registry=r)
        self.results = Counter(
            "fleetscale_hub_command_results", "Command results received", ["cluster", "status", "reason"], registry=r
        )
        self.command_latency = Histogram(
            "fleetscale_hub_command_latency_seconds",
            "From command published to its result received",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.tick_seconds = Histogram(
            "fleetscale_hub_tick_seconds",
            "Duration of one evaluation tick",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.journal_failures = Counter(
            "fleetscale_hub_decision_journal_failures",
            "Decision records not stored (publish: will retry; dropped: gave up; replay: history not read back)",
            ["reason"],
            registry=r,
        )
        self.journal_published = Counter(
            "fleetscale_hub_decision_journal_published", "Decision record revisions stored in JetStream", registry=r
        )
        self.api_denied = Counter(
            "fleetscale_hub_api_denied_requests",
            "API requests refused by authentication (missing_token, invalid_token) or authorization (forbidden)",
            ["reason"],
            registry=r,
        )
        self.auth_tokens = Gauge("fleetscale_hub_auth_tokens", "API bearer tokens currently loaded", registry=r)
        self.reload_failures = Counter(
            "fleetscale_hub_reload_failures",
            "Changed credential files that could not be loaded (the previous ones stay in use)",
            ["source"],
            registry=r,
        )
        self.replicas = Gauge(
            "fleetscale_hub_replicas", "Desired replicas by placement", ["workload", "cluster", "gpu_type"], registry=r
        )
