"""The planner: a fleet snapshot and the policies -> one plan per workload. Pure; no I/O.

It is the policy → placement half of the hub's pipeline, kept apart from dispatch so that the hub's
evaluator and ``fleetscale simulate`` run the very same code: the evaluator turns plans into
commands and decision records, the backtest applies them to simulated clusters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.placement import CapacityLedger, PlacementResult, place
from hub.policy.engine import Engine, Recommendation
from hub.policy.model import Policy
from hub.state import FleetSnapshot, Placement, WorkloadView


def current_placement(snapshot: FleetSnapshot, view: WorkloadView) -> Placement:
    """Observed placement on fresh clusters, with in-flight or applied intents taking precedence."""
    return snapshot.current_placement(view)


@dataclass(frozen=True, slots=True)
class Plan:
    recommendation: Recommendation
    view: WorkloadView
    before: Placement
    """What the workload has, or was last asked to have, per (cluster, GPU type)."""
    result: PlacementResult

    @property
    def policy(self) -> Policy:
        return self.recommendation.policy

    @property
    def changed(self) -> bool:
        return self.result.placement != self.before or self.recommendation.changed


class Planner:
    def __init__(self, prices: Mapping[str, float]) -> None:
        self.prices = prices
        self.engine = Engine()

    def plan(self, snapshot: FleetSnapshot, policies: list[Policy]) -> list[Plan]:
        ledger = CapacityLedger(snapshot, self.prices)
        plans = []
        for rec in self.engine.evaluate(snapshot, policies):
            view = snapshot.workloads[rec.workload_key]
            gpr = view.gpus_per_replica
            before = current_placement(snapshot, view)
            observed = view.placement()
            # Only clusters that run the workload can be asked to scale it (a deployment there may
            # have 0 replicas); growth elsewhere would be placed and then never sent.
            offers = ledger.offers(gpus_per_replica=gpr, held=observed, clusters=view.reports,
                                   allows=rec.policy.allows)
            result = place(rec.desired_replicas, before, offers)
            ledger.consume(observed, result.placement, gpr)
            plans.append(Plan(rec, view, before, result))
        return plans
