"""The hub's composition root: build every part once, run them as guarded root tasks, stop together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hub.api import make_app
from hub.decisions import DecisionLog
from hub.dispatch import Dispatcher
from hub.evaluator import Evaluator
from hub.feed import Feed
from hub.intake import Intake
from hub.metrics import HubMetrics
from hub.overview import fleet_json
from hub.page import add_page
from hub.policies import PolicyStore
from hub.settings import HubSettings
from hub.state import FleetState
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
    intake: Intake
    dispatcher: Dispatcher
    evaluator: Evaluator
    feed: Feed
    api_port: int | None = None


async def run_hub(
    settings: HubSettings, *, stop: asyncio.Event, on_ready: Callable[[Hub], None] | None = None
) -> None:
    async with Bus.connect(settings.bus_options("fleetscale-hub")) as bus:
        await bus.ensure_topology()
        policies = PolicyStore(await bus.policies_bucket())
        await policies.load()
        if settings.policy_file is not None:
            await policies.import_file(settings.policy_file)
        state = FleetState(stale_after_intervals=settings.stale_after_intervals)
        decisions = DecisionLog(settings.decision_log_size)
        metrics = HubMetrics()
        dispatcher = Dispatcher(bus, state, decisions, metrics, deadline_s=settings.command_deadline_s)
        feed = Feed(metrics, fleet=lambda: fleet_json(state.snapshot(), decisions, policies))
        decisions.listeners.append(feed.on_decision)
        hub = Hub(
            settings=settings,
            bus=bus,
            state=state,
            decisions=decisions,
            metrics=metrics,
            policies=policies,
            intake=Intake(bus, state, metrics),
            dispatcher=dispatcher,
            evaluator=Evaluator(
                state=state,
                policies=policies,
                dispatcher=dispatcher,
                decisions=decisions,
                metrics=metrics,
                prices=settings.gpu_prices,
                tick_s=settings.tick_s,
            ),
            feed=feed,
        )
        app = make_app(
            state=state, decisions=decisions, policies=policies, metrics=metrics, ready=lambda: bus.connected
        )
        add_page(app, feed)

        def bound(port: int) -> None:
            hub.api_port = port
            logger.info("hub API on http://%s:%d", settings.api_host, port)
            if on_ready is not None:
                on_ready(hub)

        await run_until_stopped(
            {
                "telemetry intake": hub.intake.run(),
                "command results": dispatcher.results_listener(),
                "policy watcher": policies.watcher(),
                "evaluator": hub.evaluator.run(),
                "live feed": feed.run(),
                "web api": serve(app, settings.api_host, settings.api_port, on_bound=bound),
            },
            stop=stop,
            shutdown_timeout_s=settings.shutdown_timeout_s,
        )
