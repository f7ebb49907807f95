"""The hub's Prometheus metrics, all in one place (``fleetscale_hub_*``); dashboards use these names.

Names carry their unit (``_seconds``, ``_ratio``, ``_usd_per_hour``, ``_per_second``) and every label
takes values from a bounded set: cluster ids, workload keys, GPU types, enums, and the fixed
``REASON_CLASSES`` of a decision, never free text.

The per-workload gauges (``FLEET_GAUGES``) are computed at scrape time from the latest tick's
snapshot and placements (``HubMetrics.record_tick``), so a series that is not in the latest tick is
gone rather than stuck at its last value. A value that was not measured is absent, never zero
(``docs/operations.md`` lists every metric).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hub.decisions.log import Decision
from hub.decisions.model import ApprovalState
from hub.policy.advice import OUTCOMES as ADVICE_OUTCOMES
from hub.policy.budget import ALL_TYPES, BudgetUse
from hub.policy.cause import Cause
from hub.policy.model import Metric as PolicyMetric
from hub.policy.model import Mode, Policy
from hub.state import FleetSnapshot, Placement
from shared.messages import Percentiles, VariantStatus

MODES: tuple[str, ...] = get_args(Mode)
APPROVAL_OUTCOMES = tuple(s for s in get_args(ApprovalState) if s != "pending")

SIGNAL_NAMES = tuple(
    name for m in PolicyMetric for name in ([f"{m.value}_{p}" for p in ("p50", "p95", "p99")] if m.is_latency
                                             else [m.value])
)
REASON_CLASSES = (*SIGNAL_NAMES, "bounds", "stabilisation", "rate_limited", "panic", "forecast", "starting",
                  "fallback", "zero", "activation", "missing_data", "cost_ceiling", "advice", "budget", "priority",
                  "resources", "rebalance", "failover", "other")
"""The ``reason`` label of ``fleetscale_hub_decisions_total``: which rule decided the count.

Read from the engine's structured cause (``hub.policy.cause.Cause``, in the decision's audit): a
signal's name when the signal's proposal won; otherwise the cause, in snake case (``stabilised``
keeps its older label, ``stabilisation``). ``rebalance`` / ``failover`` for a placement change at
the same total (failover when stale clusters were re-placed); ``other`` for a record without a
cause (written before it existed) that the old text rules do not recognise.
"""

CAUSE_CLASSES: dict[str, str] = {
    Cause.BOUNDS: "bounds", Cause.STABILISED: "stabilisation", Cause.RATE_LIMITED: "rate_limited",
    Cause.PANIC: "panic", Cause.FORECAST: "forecast", Cause.STARTING: "starting", Cause.FALLBACK: "fallback",
    Cause.ZERO: "zero", Cause.ACTIVATION: "activation", Cause.MISSING_DATA: "missing_data",
    Cause.COST_CEILING: "cost_ceiling", Cause.ADVICE: "advice", Cause.BUDGET: "budget", Cause.PRIORITY: "priority",
    Cause.RESOURCES: "resources",
}

_STALE_NOTE = "stale clusters excluded"
_SIGNAL_VALUE = re.compile(r"^([a-z0-9_]+)=")


def decision_cause(decision: Decision) -> tuple[str | None, str | None]:
    """(cause, deciding signal) of a decision: its own fields where it has them, else its audit's."""
    cause = getattr(decision, "cause", None)
    signal = getattr(decision, "deciding_signal", None)
    if cause is None and isinstance(decision.audit, dict):
        cause, signal = decision.audit.get("cause"), decision.audit.get("deciding_signal")
    return (None if cause is None else str(cause)), signal


def reason_class(decision: Decision) -> str:
    """Classify a decision into ``REASON_CLASSES`` by the engine's cause (by its text for older records)."""
    if decision.action == "rebalance":
        return "failover" if any(n.startswith(_STALE_NOTE) for n in decision.notes) else "rebalance"
    cause, signal = decision_cause(decision)
    if cause == Cause.SIGNAL:
        return signal if signal in SIGNAL_NAMES else "other"
    if cause is not None:
        return CAUSE_CLASSES.get(cause, "other")
    return _reason_class_from_text(decision)


def _reason_class_from_text(decision: Decision) -> str:
    """Records from before the cause existed (read back from the journal): the old text rules."""
    text = decision.reason
    if "bounded to" in text:
        return "bounds"
    held = "missing" in text or "no ready replica" in text or "still starting" in text
    if held and decision.desired_replicas != decision.current_replicas:
        return "bounds"  # a hold keeps the current count; only min/max can have moved it
    if "missing" in text or "no ready replica" in text:
        return "missing_data"
    if "still starting" in text:
        return "starting"
    if "stabilis" in text or "stabiliz" in text:
        return "stabilisation"
    match = _SIGNAL_VALUE.match(text)
    if match and match.group(1) in REASON_CLASSES:
        return match.group(1)
    return "other"


def ttft_slo_seconds(policy: Policy) -> float | None:
    """The workload's TTFT objective: a policy with a ``ttft`` p95 signal at X declares "p95 TTFT <= X",
    i.e. at least 95 % of requests see their first token within X seconds. None for other policies."""
    return next((s.target for s in policy.signals if s.metric is PolicyMetric.TTFT and s.percentile == "p95"), None)


_CDF_POINTS = ((0.50, "p50_s"), (0.95, "p95_s"), (0.99, "p99_s"))


def slo_attainment_estimate(ttft: Percentiles, slo_s: float) -> float | None:
    """Estimated fraction of the window's requests with TTFT <= ``slo_s``, from p50/p95/p99 alone.

    An estimate, not a measurement. The reported percentiles are exact points of the latency CDF
    ((p50, 0.5), (p95, 0.95), (p99, 0.99), plus (0 s, 0)); between them the CDF is interpolated
    linearly, i.e. latencies are assumed spread evenly between two percentiles. At or above the
    highest reported percentile the estimate is that percentile's fraction (0.99 with p99): a lower
    bound, since the percentiles say nothing about the tail beyond. Percentiles that cross (from
    different estimators) are made monotone. Missing percentiles are skipped; none: None.
    """
    points = [(0.0, 0.0)]
    for fraction, field in _CDF_POINTS:
        latency = getattr(ttft, field)
        if latency is not None:
            points.append((max(latency, points[-1][0]), fraction))
    if len(points) == 1:
        return None
    below = [i for i, (latency, _) in enumerate(points) if latency <= slo_s]
    if not below:
        return 0.0  # only for a negative SLO; latencies are >= 0
    i = below[-1]
    x0, f0 = points[i]
    if i == len(points) - 1:
        return f0
    x1, f1 = points[i + 1]
    return f0 + (f1 - f0) * (slo_s - x0) / (x1 - x0)


REFUSALS = (
    ("telemetry", "queue_full"),  # the inbox's lane for unadmitted subjects was full: the oldest went
    ("telemetry", "superseded"),  # a newer report from the same cluster arrived before this one was read
    ("telemetry", "future"),  # sent_at beyond HUB_MAX_CLOCK_SKEW_S ahead of the hub's clock
    ("telemetry", "too_old"),  # sent_at so far back the report would already be stale
    ("telemetry", "not_allowed"),  # cluster not in HUB_CLUSTERS
    ("telemetry", "cluster_limit"),  # HUB_MAX_CLUSTERS clusters already held
    ("telemetry", "out_of_order"),  # older than the cluster's latest report
    ("workload", "workload_limit"),  # a workload cut from a report: HUB_MAX_WORKLOADS held
    ("result", "subject_mismatch"),  # cluster_id is not the subject's cluster
    ("result", "unknown_command"),  # not a command the hub issued to that cluster for that workload
    ("result", "future"),  # completed_at beyond the skew window
)
"""The (kind, reason) label pairs of ``fleetscale_hub_refused_messages_total``."""

WCG = ("workload", "cluster", "gpu_type")
WC = ("workload", "cluster")

FLEET_GAUGES = (
    ("desired", "fleetscale_hub_desired_replicas",
     "Replicas the hub's placement wants (for a dry-run policy: would want; nothing is sent)", WCG),
    ("current", "fleetscale_hub_current_replicas", "Replicas the fresh clusters report as desired (spec)", WCG),
    ("ready", "fleetscale_hub_ready_replicas", "Replicas the fresh clusters report as ready", WCG),
    ("cost", "fleetscale_hub_gpu_cost_usd_per_hour",
     "GPU list price of the replicas the clusters run now: current replicas x GPUs per replica x USD per GPU-hour "
     "(GPU types without a price are left out)", WCG),
    ("desired_cost", "fleetscale_hub_desired_gpu_cost_usd_per_hour",
     "GPU list price of the hub's placement (for a dry-run policy: what it would cost)", WCG),
    ("ttft_p95", "fleetscale_hub_ttft_p95_seconds", "p95 time to first token reported for the workload", WC),
    ("rate", "fleetscale_hub_request_rate_per_second", "Request rate reported for the workload", WC),
    ("slo", "fleetscale_hub_ttft_slo_seconds", "The policy's TTFT objective (its ttft_p95 target)", ("workload",)),
    ("attainment", "fleetscale_hub_slo_attainment_ratio",
     "ESTIMATE of the fraction of the latest window's requests with TTFT <= the objective, interpolated from the "
     "reported p50/p95/p99 (see hub.metrics.slo_attainment_estimate)", WC),
    ("policy", "fleetscale_hub_policy_info", "1 per workload with a policy, labelled with the policy and its mode",
     ("workload", "policy", "mode")),
)
"""The per-workload gauges: (key, name, help, labels)."""

Frames = dict[str, dict[tuple[str, ...], float]]


def fleet_frames(
    snapshot: FleetSnapshot, plans: Mapping[str, tuple[Policy, Placement]], prices: Mapping[str, float]
) -> Frames:
    """Every per-workload gauge's series for one tick, keyed as ``FLEET_GAUGES``."""
    frames: Frames = {key: {} for key, *_ in FLEET_GAUGES}
    for key, (policy, placement) in plans.items():
        frames["policy"][(key, policy.id, policy.mode)] = 1
        view = snapshot.workloads.get(key)
        gpr = view.gpus_per_replica if view is not None else 1
        for (cid, gpu_type), n in placement.items():
            frames["desired"][(key, cid, gpu_type)] = n
            if gpu_type in prices:
                frames["desired_cost"][(key, cid, gpu_type)] = n * gpr * prices[gpu_type]
        slo = ttft_slo_seconds(policy)
        if slo is None or view is None:
            continue
        frames["slo"][(key,)] = slo
        for cid, report in view.reports.items():
            attained = slo_attainment_estimate(report.samples.ttft, slo)
            if attained is not None:
                frames["attainment"][(key, cid)] = attained
    for key, view in snapshot.workloads.items():
        for cid, report in view.reports.items():
            # A report without per-type variants still has replicas; their GPU type is unknown (no price).
            variants = report.variants or (VariantStatus(
                gpu_type="unknown", desired_replicas=report.desired_replicas,
                ready_replicas=report.ready_replicas, gpus_per_replica=report.gpus_per_replica,
            ),)
            for v in variants:
                frames["current"][(key, cid, v.gpu_type)] = v.desired_replicas
                frames["ready"][(key, cid, v.gpu_type)] = v.ready_replicas
                price = prices.get(v.gpu_type)
                if price is not None:
                    frames["cost"][(key, cid, v.gpu_type)] = v.desired_replicas * v.gpus_per_replica * price
            samples = report.samples
            if samples.ttft.p95_s is not None:
                frames["ttft_p95"][(key, cid)] = samples.ttft.p95_s
            if samples.request_rate_per_s is not None:
                frames["rate"][(key, cid)] = samples.request_rate_per_s
    return frames


class _FleetGauges(Collector):
    """The per-workload gauges, computed when scraped from the latest tick's snapshot and plans.

    NB: at scrape time, not every tick: at thousands of workloads, setting ~10 gauges per workload
    and cluster each tick took ~0.1 s of the event loop per tick; a scrape comes every 15-60 s. Each
    scrape shows the latest tick whole, so a series not in it is simply absent (replicas that moved
    away, a cluster gone stale, a workload whose policy is gone) instead of stuck at its last value.
    """

    def __init__(self) -> None:
        self._latest: tuple[FleetSnapshot | Callable[[], FleetSnapshot], dict[str, tuple[Policy, Placement]],
                            dict[str, float]] | None = None

    def update(
        self, snapshot: FleetSnapshot | Callable[[], FleetSnapshot], plans: Mapping[str, tuple[Policy, Placement]],
        prices: Mapping[str, float],
    ) -> None:
        self._latest = (snapshot, dict(plans), dict(prices))

    def describe(self) -> Iterator[Metric]:
        for _, name, doc, labels in FLEET_GAUGES:
            yield GaugeMetricFamily(name, doc, labels=labels)

    def collect(self) -> Iterator[Metric]:
        frames: Frames = {}
        if self._latest is not None:
            snapshot, plans, prices = self._latest
            # A callable is the fleet's state itself: the snapshot is taken at scrape time, once.
            frames = fleet_frames(snapshot() if callable(snapshot) else snapshot, plans, prices)
        for key, name, doc, labels in FLEET_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in frames.get(key, {}).items():
                family.add_metric(label_values, value)
            yield family


BUDGET_GAUGES = (
    ("fleetscale_hub_budget_gpus", "GPUs the hub's placement gives the budget's workloads, by GPU type ('*': all)",
     ("budget", "team", "gpu_type")),
    ("fleetscale_hub_budget_cap_gpus", "The budget's GPU cap by GPU type ('*': all types together)",
     ("budget", "team", "gpu_type")),
    ("fleetscale_hub_budget_spend_usd_per_hour",
     "List price of the hub's placement for the budget's workloads, at the prices placement uses", ("budget", "team")),
    ("fleetscale_hub_budget_cap_usd_per_hour", "The budget's USD/h cap", ("budget", "team")),
    ("fleetscale_hub_budget_minimums_fit",
     "1 when the budget's caps leave room for every covered workload's min_replicas, 0 when they cannot",
     ("budget", "team")),
)
"""Per budget (docs/budgets.md): use against caps, from the latest plan of its workloads."""


class _BudgetGauges(Collector):
    """The budget gauges of the latest plan; a budget that is gone is absent from the next scrape."""

    def __init__(self) -> None:
        self.uses: list[BudgetUse] = []

    def describe(self) -> Iterator[Metric]:
        for name, doc, labels in BUDGET_GAUGES:
            yield GaugeMetricFamily(name, doc, labels=labels)

    def collect(self) -> Iterator[Metric]:
        gpus, cap_gpus, spend, cap_usd, fits = (GaugeMetricFamily(n, d, labels=lb) for n, d, lb in BUDGET_GAUGES)
        for u in self.uses:
            b = u.budget
            team = b.team_name
            for t in sorted({*b.caps.gpus, ALL_TYPES}):
                gpus.add_metric((b.id, team, t), u.gpus.get(t, 0))
            for t, n in sorted(b.caps.gpus.items()):
                cap_gpus.add_metric((b.id, team, t), n)
            spend.add_metric((b.id, team), u.cost_per_hour)
            if b.caps.cost_per_hour is not None:
                cap_usd.add_metric((b.id, team), b.caps.cost_per_hour)
            fits.add_metric((b.id, team), 1 if u.holds_minimums else 0)
        yield from (gpus, cap_gpus, spend, cap_usd, fits)


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
        self.cluster_losses = Counter(
            "fleetscale_hub_cluster_losses", "Times the cluster went stale and its share was re-placed", ["cluster"],
            registry=r,
        )
        self.workloads_planned = Counter(
            "fleetscale_hub_workloads_planned",
            "Workloads re-planned (event-driven: only those whose inputs changed or whose timers are due)",
            registry=r,
        )
        self.loop_stalls = Counter(
            "fleetscale_hub_loop_stalls",
            "Times the hub's event loop stood still for over a second (paused, frozen or starved); cluster silence "
            "is counted again from then",
            registry=r,
        )
        self.decisions = Counter(
            "fleetscale_hub_decisions",
            "Decisions recorded, by action, reason class (REASON_CLASSES) and policy mode (dry-run decisions are "
            "recorded, not sent)",
            ["action", "reason", "mode"],
            registry=r,
        )
        self.approvals_pending = Gauge(
            "fleetscale_hub_approvals_pending", "Decisions of approval-mode policies waiting for an operator",
            registry=r,
        )
        self.approvals = Counter(
            "fleetscale_hub_approvals",
            "Approval-mode decisions settled, by outcome: approved, rejected, expired, superseded (docs/approvals.md)",
            ["outcome"],
            registry=r,
        )
        for outcome in APPROVAL_OUTCOMES:
            self.approvals.labels(outcome)
        self.commands = Counter("fleetscale_hub_commands_sent", "Scale commands published", ["cluster"], registry=r)
        self.partitions_held = Gauge(
            "fleetscale_hub_partitions_held",
            "Workload partitions this hub holds the lease of and decides (sharded hubs; all of them when alone)",
            registry=r,
        )
        self.hubs_live = Gauge(
            "fleetscale_hub_hubs_live", "Hub processes this hub sees renewing their heartbeat key, itself included",
            registry=r,
        )
        self.lease_changes = Counter(
            "fleetscale_hub_lease_changes",
            "Partition leases acquired, released (balancing, shutdown) and lost (taken over, or not renewed in time)",
            ["change"], registry=r,
        )
        self.commands_revoked = Counter(
            "fleetscale_hub_commands_revoked",
            "Queued commands deleted from the stream because their cluster went stale", ["cluster"], registry=r,
        )
        self.results = Counter(
            "fleetscale_hub_command_results", "Command results received", ["cluster", "status", "reason"], registry=r
        )
        self.command_latency = Histogram(
            "fleetscale_hub_command_latency_seconds",
            "From command published to its result received",
            ["cluster"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.tick_seconds = Histogram(
            "fleetscale_hub_tick_seconds",
            "Duration of one evaluation tick",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.tick_failures = Counter(
            "fleetscale_hub_tick_failures",
            "Evaluation ticks that raised (HUB_UNREADY_AFTER_FAILED_TICKS in a row fail /readyz)",
            registry=r,
        )
        self.feed_subscribers = Gauge(
            "fleetscale_hub_feed_subscribers", "Open live-feed (server-sent events) connections", registry=r
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
        self.feed_dropped = Counter(
            "fleetscale_hub_feed_dropped_events", "Live-feed events dropped for a slow subscriber", ["event"],
            registry=r,
        )
        self.refused = Counter(
            "fleetscale_hub_refused_messages",
            "Valid-looking messages the hub refused or dropped, by kind and reason (REFUSALS)",
            ["kind", "reason"],
            registry=r,
        )
        self.intake_queue = Gauge(
            "fleetscale_hub_intake_queue_messages", "Telemetry messages waiting for validation", registry=r
        )
        self.clusters_known = Gauge(
            "fleetscale_hub_clusters", "Clusters the hub holds (admitted, not yet forgotten)", registry=r
        )
        self.workloads_known = Gauge("fleetscale_hub_workloads", "Logical workloads the hub holds", registry=r)
        self.slow_consumer_drops = Gauge(
            "fleetscale_hub_nats_slow_consumer_drops",
            "Messages the NATS client dropped because a subscription's buffer was full (since start)", registry=r
        )
        self.drift_resends = Counter(
            "fleetscale_hub_drift_resends",
            "Commands re-sent for a target a cluster had applied but no longer reports (each pauses longer)",
            ["cluster"],
            registry=r,
        )
        self.infeasible = Gauge(
            "fleetscale_hub_infeasible_requests_per_second",
            "Requests per second whose prompt no allowed GPU type prefills within the latency target, even "
            "on an idle replica: reported, never sized for (docs/engine.md)",
            ["workload"],
            registry=r,
        )
        self.resource_target = Gauge(
            "fleetscale_hub_resource_target",
            "Vertical recommendation (VPA's target: P90 + 15 %) per workload, GPU type and container; resource is "
            "cpu_cores, memory_bytes or gpu_memory_bytes (docs/vertical.md); absent where nothing was measured",
            ["workload", "gpu_type", "container", "resource"], registry=r,
        )
        self.resizes = Counter(
            "fleetscale_hub_resizes",
            "Resources commands sent (policies with resources.apply): containers resized to the recommendation",
            ["cluster"], registry=r,
        )
        self.advice = Counter(
            "fleetscale_hub_advice",
            "LLM advice by what the engine's advice stage did with it: applied, clamped (cut to a guard rail), "
            "agreed (the engine's own count), stale (ignored), advisory (recorded only); each answer counted once "
            "per outcome it reaches",
            ["outcome"], registry=r,
        )
        self._advice_seen: dict[str, tuple[str, set[str]]] = {}
        self.fleet = _FleetGauges()
        r.register(self.fleet)
        self.budgets = _BudgetGauges()
        r.register(self.budgets)
        # Known label values start at 0, so rate() and dashboards see the series before the first event.
        for kind in ("telemetry", "result"):
            self.malformed.labels(kind)
        for kind, reason in REFUSALS:
            self.refused.labels(kind, reason)
        for outcome in ADVICE_OUTCOMES:
            self.advice.labels(outcome)

    def forget_cluster(self, cluster_id: str) -> None:
        """Drop a forgotten cluster's series, so /metrics does not keep every cluster id ever seen."""
        for metric in (self.reports, self.report_age, self.cluster_stale, self.commands, self.command_latency,
                       self.drift_resends, self.cluster_losses, self.commands_revoked, self.resizes):
            with contextlib.suppress(KeyError):
                metric.remove(cluster_id)
        for labels in [k for k in self.results._metrics if k and k[0] == cluster_id]:  # (cluster, status, reason)
            with contextlib.suppress(KeyError):
                self.results.remove(*labels)

    def set_infeasible(self, workload: str, rate: float | int | None) -> None:
        """The engine's infeasible request rate for a workload; absent when it did not estimate one."""
        if rate is None:
            # NB: looked up first: removing an absent series raises, and this runs for every workload planned.
            if (workload,) in self.infeasible._metrics:
                with contextlib.suppress(KeyError):
                    self.infeasible.remove(workload)
        else:
            self.infeasible.labels(workload).set(float(rate))

    def forget_workloads(self, keep: set[str]) -> None:
        """Drop the per-workload series, and what is remembered of their advice, of workloads no longer held."""
        for (workload,) in [k for k in self.infeasible._metrics if k[0] not in keep]:
            with contextlib.suppress(KeyError):
                self.infeasible.remove(workload)
        for gone in self._advice_seen.keys() - keep:
            del self._advice_seen[gone]
        for labels in [k for k in self.resource_target._metrics if k[0] not in keep]:
            with contextlib.suppress(KeyError):
                self.resource_target.remove(*labels)

    def set_resource_targets(self, workload: str, targets: Mapping[tuple[str, str, str], float | None]) -> None:
        """The workload's vertical targets by (GPU type, container, resource); None drops the series."""
        for (gpu_type, container, resource), value in targets.items():
            if value is None:
                with contextlib.suppress(KeyError):
                    self.resource_target.remove(workload, gpu_type, container, resource)
            else:
                self.resource_target.labels(workload, gpu_type, container, resource).set(value)

    def count_decision(self, decision: Decision) -> None:
        mode = decision.mode if decision.mode in MODES else "other"
        self.decisions.labels(decision.action, reason_class(decision), mode).inc()

    def count_advice(self, workload: str, verdict: Mapping[str, object] | None) -> None:
        """Count what the advice stage did (the audit's ``advice``), once per answer and outcome: the
        engine sees the same answer at every evaluation until the next one arrives."""
        if not verdict:
            return
        exchange = verdict.get("exchange")
        answered = str(exchange.get("answered_at")) if isinstance(exchange, Mapping) else ""
        outcome = str(verdict.get("outcome"))
        if outcome not in ADVICE_OUTCOMES:
            return
        seen = self._advice_seen.get(workload)
        if seen is None or seen[0] != answered:
            seen = self._advice_seen[workload] = (answered, set())
        if outcome not in seen[1]:
            seen[1].add(outcome)
            self.advice.labels(outcome).inc()

    def latest_plans(self) -> tuple[dict[str, tuple[Policy, Placement]], dict[str, float]] | None:
        """The latest plans and prices, without a fleet snapshot (cheap, for a reader that may not need one)."""
        if self.fleet._latest is None:
            return None
        _, plans, prices = self.fleet._latest
        return plans, prices

    def latest_tick(
        self,
    ) -> tuple[FleetSnapshot, dict[str, tuple[Policy, Placement]], dict[str, float]] | None:
        """The latest tick's snapshot, plans and prices, for readers off the control path (the advisor).

        Event-driven evaluation records the fleet's state itself, not a snapshot of part of it: the
        snapshot is taken now, whole."""
        if self.fleet._latest is None:
            return None
        snapshot, plans, prices = self.fleet._latest
        return (snapshot() if callable(snapshot) else snapshot), plans, prices

    def record_tick(
        self, snapshot: FleetSnapshot | Callable[[], FleetSnapshot], plans: Mapping[str, tuple[Policy, Placement]],
        prices: Mapping[str, float],
    ) -> None:
        """Keep one tick's inputs for the per-workload gauges: ``plans`` maps each evaluated workload to its
        policy and the placement the hub computed for it (sent or, in dry-run, only recorded)."""
        self.fleet.update(snapshot, plans, prices)

    def record_budgets(self, uses: list[BudgetUse]) -> None:
        """Each budget against its caps in the latest plan (``hub.control.budgets``)."""
        self.budgets.uses = sorted(uses, key=lambda u: u.budget.id)
