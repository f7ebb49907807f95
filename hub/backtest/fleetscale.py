"""Fleetscale under test, through the hub's own code: FleetState -> Planner -> placement applied.

Every report interval each simulated cluster's telemetry becomes a real ``TelemetryReport``
(``telemetry.py``), ingested into a real ``hub.state.FleetState``; the snapshot and the policies go
through ``hub.control.planner.Planner`` (the hub evaluator's policy and placement step), and each plan's
placement is turned into per-cluster targets by ``hub.control.dispatch.cluster_targets``, exactly what the
dispatcher would send, then applied to the world, where new replicas cold-start. Only dispatch's
bus round trip is skipped: the backtest's "spoke" applies the command at once and the next report
shows it, which is what an intent in flight stands for in the hub.

With several workloads (``harness.run_fleet``) one controller plans them all: every workload's
telemetry goes into the one ``FleetState``, the planner places all of them in one solve over the
shared GPUs, and each plan is applied to its own workload (``Fleet.of``).

Nothing here looks inside the engine or the placer: whatever they become behind ``Planner.plan``
is what gets backtested. ``advice`` hands the planner the LLM advisor's answers, as the hub's
evaluator does (``bench/advisor_backtest.py`` asks a real model on simulated time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from hub.backtest.harness import Fleet
from hub.backtest.scenario import Scenario
from hub.backtest.telemetry import cluster_report
from hub.control.dispatch import cluster_targets
from hub.control.planner import Plan, Planner
from hub.policy.advice import WorkloadAdvice
from hub.policy.model import Policy
from hub.settings import DEFAULT_GPU_PRICES
from hub.state import FleetSnapshot, FleetState

AdviceSource = Callable[[FleetSnapshot, float], Mapping[str, WorkloadAdvice]]
"""(snapshot, simulated time) -> each workload's latest usable answer, with its age."""

REPORT_INTERVAL_S = 1.0
"""The spoke's default report interval; the hub's default tick is the same."""
SAMPLES_WINDOW_S = 10.0
"""The simulated spoke backend's default samples window."""
SOLVE_LIMIT_S = 60.0
"""The placement solver's time limit in a replay. The hub's (1 s) is a wall-clock deadline: on a
loaded machine some solves stopped at it with another placement than on a quiet one, so the same
trace and code gave another cost from run to run (steady: $5.54 and $6.55). In simulated time the
limit costs nothing, so a replay lets every solve finish, and its figures depend on the code alone."""


class FleetscaleController:
    def __init__(
        self,
        scenario: Scenario,
        policies: Sequence[Policy],
        *,
        name: str = "fleetscale",
        description: str | None = None,
        prices: Mapping[str, float] | None = None,
        report_interval_s: float = REPORT_INTERVAL_S,
        window_s: float = SAMPLES_WINDOW_S,
        advice: AdviceSource | None = None,
    ) -> None:
        if not policies:
            raise ValueError("Fleetscale needs at least one policy")
        if report_interval_s <= 0 or window_s <= 0:
            raise ValueError("report_interval_s and window_s must be positive")
        self.scenario = scenario
        self.policies = list(policies)
        self.name = name
        self.description = description or f"Fleetscale, policy {self.policies[0].id!r}, all clusters"
        self.prices = dict(prices if prices is not None else DEFAULT_GPU_PRICES)
        self.report_interval_s = report_interval_s
        self.window_s = window_s
        self.state = FleetState()
        self.planner = Planner(self.prices, time_limit_s=SOLVE_LIMIT_S)
        self.sequence = 0
        self.advice = advice
        self.plans: list[Plan] = []
        """The latest plans (an advisor's summary reads them, as the hub's reads its latest tick)."""

    @property
    def gateway_cluster(self) -> str | None:
        return None  # the first cluster, as in the demo

    def next_at(self, now_s: float) -> float:
        if now_s < 0:
            return 0.0
        return (math.floor(now_s / self.report_interval_s + 1e-9) + 1) * self.report_interval_s

    def act(self, fleet: Fleet, now_s: float) -> None:
        world = fleet.world
        labels = {ref.key: fleet.of(ref.key).scenario.labels for ref in world.workload_refs}
        for cluster_id in world.cluster_ids:
            report = cluster_report(
                world, cluster_id, sequence=self.sequence, interval_s=self.report_interval_s,
                window_s=self.window_s, labels=labels,
            )
            self.state.ingest(report, now=now_s)
        self.sequence += 1
        snapshot = self.state.snapshot(now=now_s)
        advice = self.advice(snapshot, now_s) if self.advice is not None else None
        self.plans = self.planner.plan(snapshot, self.policies, advice=advice)
        for plan in self.plans:
            if plan.policy.mode != "enforce":
                continue
            # The gateway follows the plan's routing rules, as a real one reads them from the spoke.
            namespace, name = plan.view.key.split("/", 1)
            world.set_routing(namespace, name, plan.routing)
            if not plan.changed:
                continue
            workload = fleet.of(plan.view.key)  # one solve places every workload; each has its own replicas
            for cluster_id, by_type in sorted(cluster_targets(plan.result.placement, plan.view).items()):
                workload.set(cluster_id, by_type)
