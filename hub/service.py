"""The hub's composition root: build every part once, run them as guarded root tasks, stop together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hub.advisor.advisor import Advisor
from hub.control.admission import Admission
from hub.control.changes import moved
from hub.control.dispatch import Dispatcher
from hub.control.heartbeat import Heartbeat
from hub.control.intake import Intake
from hub.control.leases import LeaseKeeper
from hub.control.ledger import IssuedCommands
from hub.control.resizing import Resizer
from hub.control.shard import Shard
from hub.control.tick import Evaluator
from hub.decisions.journal import DecisionJournal
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.sources import PolicySources
from hub.policies.store import BudgetStore, PolicyStore
from hub.policy.vertical import ResourceHistory
from hub.settings import HubSettings
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.auth import AccessPolicy
from hub.web.feed import Feed
from hub.web.history import FleetHistory
from hub.web.overview import fleet_json
from hub.web.page import add_page
from hub.web.tokens import TokenSource, TokenTable
from shared.bus import Bus
from shared.lifecycle import run_until_stopped
from shared.web import serve

logger = logging.getLogger(__name__)


@dataclass
class Hub:
    """The parts of a running hub, exposed so tests and the benchmark can look inside."""

    settings: HubSettings
    bus: Bus
    state: FleetState
    decisions: DecisionLog
    metrics: HubMetrics
    policies: PolicyStore
    budgets: BudgetStore
    intake: Intake
    dispatcher: Dispatcher
    evaluator: Evaluator
    feed: Feed
    journal: DecisionJournal
    history: FleetHistory
    advisor: Advisor
    resources: ResourceHistory
    shard: Shard = field(default_factory=Shard)
    tokens: TokenTable | None = None
    sources: PolicySources | None = None
    api_port: int | None = None
    api_scheme: str = "http"

    def problems(self) -> dict[str, str]:
        """What keeps the hub from being ready (``/readyz``), by part; empty when ready."""
        problems = {} if self.bus.connected else {"nats": "not connected to NATS"}
        return problems | self.evaluator.problems()


def api_guard(settings: HubSettings, metrics: HubMetrics) -> tuple[AccessPolicy, TokenTable | None]:
    """The API's access policy; tokens are read now, so a bad tokens file stops the hub at start."""
    if not settings.auth_enabled:
        logger.warning(
            "API AUTHENTICATION IS OFF: no HUB_AUTH_TOKENS_FILE or HUB_AUTH_TOKENS_DIR is set, so anyone who "
            "reaches %s:%d can read and change everything", settings.api_host, settings.api_port,
        )
        return AccessPolicy(lookup=None), None
    source = TokenSource(file=settings.auth_tokens_file, directory=settings.auth_tokens_dir)
    tokens = TokenTable.load(source, metrics=metrics)
    logger.info("API authentication on: %d tokens from %s", len(tokens), ", ".join(map(str, source.paths)))
    return AccessPolicy(lookup=tokens.lookup, open_paths=settings.auth_open_paths,
                        open_page=settings.auth_open_page), tokens


async def sharding(bus: Bus, settings: HubSettings, metrics: HubMetrics) -> Shard:
    """The workloads this hub decides: all of them, or (``HUB_SHARDED``) its partitions' (hub.control.leases)."""
    if not settings.sharded:
        return Shard()
    await bus.leases_bucket()  # created now: a wrong credential stops the hub at start, not in the keeper's thread
    keeper = LeaseKeeper(None, settings.hub_id(), settings.partitions,
                         renew_s=settings.lease_renew_s, ttl_s=settings.lease_ttl_s, metrics=metrics)
    logger.info("sharded: hub %s, %d partitions, leases renewed every %.1fs, lapse after %.1fs", keeper.hub_id,
                keeper.partitions, keeper.renew_s, keeper.ttl_s)
    return Shard(keeper)


async def run_hub(
    settings: HubSettings, *, stop: asyncio.Event, on_ready: Callable[[Hub], None] | None = None
) -> None:
    metrics = HubMetrics()
    # Credentials first: a wrong tokens file or certificate must stop the hub before it touches NATS.
    access, tokens = api_guard(settings, metrics)
    tls = settings.server_tls()
    tls_loaded_from = tls.fingerprint() if tls is not None else None
    ssl_context = tls.context() if tls is not None else None
    options = settings.bus_options("fleetscale-hub", stream_replicas=settings.nats_stream_replicas)
    async with Bus.connect(options) as bus:
        await bus.ensure_topology(decisions=settings.decision_retention())
        policies = PolicyStore(await bus.policies_bucket())
        await policies.load()
        budgets = BudgetStore(await bus.budgets_bucket())
        await budgets.load()
        sources = await PolicySources.open(settings, policies, budgets)
        state = FleetState(stale_after_intervals=settings.stale_after_intervals,
                           moved=partial(moved, tolerance=settings.change_tolerance))
        decisions = DecisionLog(settings.decision_log_size)
        journal = DecisionJournal(bus, metrics, max_pending=max(settings.decision_log_size, 1000))
        # The history comes back before anything can decide or attach a result; only then do
        # changes start going to the journal.
        await journal.replay(decisions, last=settings.decision_log_size)
        decisions.listeners.append(journal.record)
        admission = Admission(
            allowed=frozenset(settings.clusters) if settings.clusters is not None else None,
            max_clusters=settings.max_clusters,
            max_workloads=settings.max_workloads,
            max_clock_skew_s=settings.max_clock_skew_s,
            stale_after_intervals=settings.stale_after_intervals,
        )
        # Results of commands sent before a restart are checked against the history read back.
        ledger = IssuedCommands(settings.issued_commands_kept)
        ledger.restore(decisions.recent(limit=len(decisions) or 1))
        shard = await sharding(bus, settings, metrics)
        dispatcher = Dispatcher(
            bus, state, decisions, metrics, deadline_s=settings.command_deadline_s, ledger=ledger,
            admission=admission, drift_backoff_base_s=settings.drift_backoff_base_s,
            drift_backoff_cap_s=settings.drift_backoff_cap_s, shard=shard,
        )
        feed = Feed(metrics, fleet=lambda: fleet_json(state.snapshot(), decisions, policies))
        decisions.listeners.append(feed.on_decision)
        advisor = Advisor(metrics, decisions)
        resources = ResourceHistory()
        hub = Hub(
            settings=settings,
            bus=bus,
            state=state,
            decisions=decisions,
            metrics=metrics,
            policies=policies,
            budgets=budgets,
            intake=Intake(
                bus, state, metrics, admission, queue_size=settings.intake_queue_size,
                queue_bytes=settings.intake_queue_bytes, retention_s=settings.cluster_retention_s,
                resources=resources,
            ),
            dispatcher=dispatcher,
            evaluator=Evaluator(
                state=state,
                policies=policies,
                dispatcher=dispatcher,
                decisions=decisions,
                metrics=metrics,
                prices=settings.gpu_prices,
                tick_s=settings.tick_s,
                unready_after_failed_ticks=settings.unready_after_failed_ticks,
                journal=journal,
                startup_grace_s=settings.startup_grace_s,
                sweep_s=settings.sweep_s,
                batch=settings.evaluation_batch,
                listening=lambda: bus.connected,
                advice=advisor.advice,
                budgets=budgets,
                resources=resources,
                resizer=Resizer(resources, deadline_s=settings.command_deadline_s,
                                settle_s=settings.resize_settle_s),
                shard=shard,
            ),
            feed=feed,
            journal=journal,
            history=FleetHistory(fine_s=settings.history_interval_s),
            advisor=advisor,
            resources=resources,
            shard=shard,
            tokens=tokens,
            sources=sources,
            api_scheme="https" if ssl_context is not None else "http",
        )
        app = make_app(
            state=state,
            decisions=decisions,
            policies=policies,
            metrics=metrics,
            ready=hub.problems,
            access=access,
            history=hub.history,
            advisor=hub.advisor,
            budgets=budgets,
            budget_use=lambda: hub.evaluator.planner.budget_use,
            resources=resources,
            approvals=hub.evaluator.approvals,
        )
        hub.evaluator.approvals.restore()  # the history read back: what still waits, waits again
        add_page(app, feed)

        def bound(port: int) -> None:
            hub.api_port = port
            logger.info("hub API on %s://%s:%d", hub.api_scheme, settings.api_host, port)
            if on_ready is not None:
                on_ready(hub)

        tasks: dict[str, Coroutine[Any, Any, None]] = {
            "telemetry intake": hub.intake.run(),
            "command results": dispatcher.results_listener(),
            "policy watcher": policies.watcher(bus.kv_changes(policies.kv)),
            "budget watcher": budgets.watcher(bus.kv_changes(budgets.kv)),
            "evaluator": hub.evaluator.run(),
            "heartbeat": Heartbeat(bus, interval_s=settings.tick_s).run(),
            "decision journal": journal.run(),
            "live feed": feed.run(),
            "history sampler": hub.history.run(metrics, lambda: decisions.latest),
            "llm advisor": hub.advisor.run(),
            "web api": serve(app, settings.api_host, settings.api_port, ssl_context=ssl_context, on_bound=bound),
            **sources.tasks(),
        }
        if shard.keeper is not None:
            shard.keeper.on_change = hub.evaluator.wake
            tasks["partition leases"] = shard.keeper.run(
                lambda: Bus.connect(settings.bus_options("fleetscale-hub-leases")))
        if tokens is not None:
            tasks["token reloader"] = tokens.watch(interval_s=settings.auth_reload_interval_s)
        if tls is not None and ssl_context is not None:  # (both or neither)
            tasks["certificate reloader"] = tls.watch(
                ssl_context,
                interval_s=settings.auth_reload_interval_s,
                since=tls_loaded_from,
                on_failed=lambda: metrics.reload_failures.labels("tls").inc(),
            )
        await run_until_stopped(
            tasks,
            stop=stop,
            shutdown_timeout_s=settings.shutdown_timeout_s,
        )
