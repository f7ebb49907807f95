"""The spoke's composition root: bus, reporter, executor and health server as guarded root tasks.

The backend is built by the caller (``spoke.__main__`` from settings, the demo from its simulated
world, tests from whatever they need) and closed by it; the agent only uses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from shared import subjects
from shared.bus import Bus
from shared.lifecycle import run_until_stopped
from shared.web import serve
from spoke.autonomy import Autonomy
from spoke.backend import ClusterBackend
from spoke.executor import Executor
from spoke.health import make_app
from spoke.keda.actuator import KedaActuator
from spoke.keda.scaler import serve as serve_keda
from spoke.keda.targets import KedaTargets
from spoke.metrics import SpokeMetrics
from spoke.reporter import Reporter
from spoke.settings import SpokeSettings

logger = logging.getLogger(__name__)


@dataclass
class Spoke:
    """The parts of a running spoke, exposed so tests and the demo can look inside."""

    settings: SpokeSettings
    bus: Bus
    metrics: SpokeMetrics
    reporter: Reporter
    executor: Executor
    autonomy: Autonomy
    health_port: int | None = None
    keda_targets: KedaTargets | None = None
    """The hub's targets served to KEDA (``SPOKE_ACTUATOR=keda``); None when the spoke writes /scale."""
    keda_port: int | None = None


async def run_agent(
    settings: SpokeSettings,
    backend: ClusterBackend,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[Spoke], None] | None = None,
    extra_tasks: dict[str, Coroutine[Any, Any, Any]] | None = None,
    serve_health: bool = True,
    metrics: SpokeMetrics | None = None,
    readiness_detail: Callable[[], dict[str, object]] | None = None,
) -> None:
    metrics = metrics or SpokeMetrics(cluster=settings.cluster_id)
    keda_targets = KedaTargets() if settings.actuator == "keda" else None
    actuator: ClusterBackend = backend if keda_targets is None else KedaActuator(backend, keda_targets)
    options = settings.bus_options(
        f"fleetscale-spoke-{settings.cluster_id}", inbox_prefix=subjects.spoke_inbox_prefix(settings.cluster_id),
        js_domain=settings.nats_js_domain,
    )
    # NB: no ensure_topology: the streams and this spoke's consumer are the hub's to create (a spoke's
    # NATS permissions allow none of it); until the hub has, results wait unacked and fetches retry.
    async with Bus.connect(options) as bus:
        # Through the actuator, as commands go: with KEDA, holding a count sets KEDA's target.
        autonomy = Autonomy(bus, actuator, metrics, away_after_s=settings.hub_away_after_s,
                            hold_s=settings.autonomy_hold_s, interval_s=settings.report_interval_s)
        spoke = Spoke(
            settings=settings,
            bus=bus,
            metrics=metrics,
            reporter=Reporter(bus, backend, settings.cluster_id, metrics, interval_s=settings.report_interval_s),
            executor=Executor(bus, actuator, settings.cluster_id, metrics, on_applied=autonomy.record_applied),
            keda_targets=keda_targets,
            autonomy=autonomy,
        )
        tasks: dict[str, Coroutine[Any, Any, Any]] = {
            "telemetry reporter": spoke.reporter.run(),
            "command executor": spoke.executor.run(),
            "hub heartbeat listener": autonomy.listen(),
            "autonomy": autonomy.run(),
        }
        if serve_health:

            def bound(port: int) -> None:
                spoke.health_port = port

            app = make_app(metrics, ready=lambda: bus.connected, detail=readiness_detail)
            tasks["health server"] = serve(app, settings.health_host, settings.health_port, on_bound=bound)
        if keda_targets is not None:

            def keda_bound(port: int) -> None:
                spoke.keda_port = port

            tasks["keda external scaler"] = serve_keda(
                keda_targets, settings.keda_scaler_host, settings.keda_scaler_port, on_bound=keda_bound
            )
        tasks.update(extra_tasks or {})
        logger.info("spoke %s connected to %s", settings.cluster_id, settings.nats_url)
        if on_ready is not None:
            on_ready(spoke)
        await run_until_stopped(tasks, stop=stop, shutdown_timeout_s=settings.shutdown_timeout_s)
