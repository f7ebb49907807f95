"""The planner: a fleet snapshot and the policies -> one plan per workload. Pure; no I/O.

It is the policy → placement half of the hub's pipeline, kept apart from dispatch so that the hub's
evaluator and ``fleetscale simulate`` run the very same code: the evaluator turns plans into
commands and decision records, the backtest applies them to simulated clusters.

Each tick, every workload's recommendation becomes a ``WorkloadDemand`` and all of them are placed
together in one exact solve (``hub.placement.solve``), so workloads that want the same free GPUs
are weighed against each other instead of served first come, first served:

* offers: the fresh clusters that run the workload (a Deployment there may have 0 replicas; growth
  elsewhere could not be sent), each GPU type there with free GPUs reported, if the policy allows it
  and a price is known: the policy's per-(cluster, type) price, else the hub's per-type price;
* load: the recommendation counts replicas; the demand is that count times the workload's
  *reference throughput*, the mean throughput of the replicas it ran when last settled (see
  ``Planner.reference``), with throughput per GPU type from ``hub.placement.throughput``;
* bounds: the policy's total and per-cluster bounds, spread, and for the weight strategies the
  Karmada division of the recommended count as per-cluster targets;
* failover: lost clusters' replicas re-placed, recovering ones held (``hub.placement.failover``);
* make before break: nothing running is removed while replicas start, and a move keeps the old
  replicas until the new ones are ready (``make_before_break``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from hub.placement import (
    DEFAULT_TIME_LIMIT_S,
    FailoverTracker,
    FleetHealth,
    Key,
    Offer,
    PlacementProblem,
    PlacementResult,
    Solution,
    WorkloadDemand,
    apply_failover,
    free_gpus,
    solve,
)
from hub.placement.division import divide
from hub.placement.failover import DEFAULT_RECOVERY_REPORTS
from hub.placement.throughput import PROFILE_THROUGHPUT, mean_throughput
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


def settled(snapshot: FleetSnapshot, view: WorkloadView) -> bool:
    """Every replica of the workload ready, and no command to it in flight or unconfirmed."""
    for cid, report in view.reports.items():
        if snapshot.live_intent(view.key, cid) is not None:
            return False
        if any(v.ready_replicas != v.desired_replicas for v in report.variants):
            return False
    return True


def make_before_break(demand: WorkloadDemand, result: PlacementResult) -> PlacementResult:
    """A placement that adds replicas somewhere keeps, for now, the running ones it removes elsewhere.

    A move (L4s out, an A100 in) would otherwise cut capacity for a whole cold start. The kept
    replicas go on a later tick, once the new ones are ready and the workload has settled: then the
    solver's answer only shrinks, and a pure shrink is applied at once.
    """
    placement = dict(result.placement)
    grows = any(n > demand.current.get(k, 0) for k, n in placement.items())
    kept = {}
    for k, n in placement.items():
        hold = min(demand.current.get(k, 0), demand.held.get(k, 0))
        if grows and n < hold:
            kept[k] = hold - n
            placement[k] = hold
    if not kept:
        return result
    price = {o.key: o.price_per_replica_hour for o in demand.offers}
    moved = ", ".join(f"{n} on {c}/{t}" for (c, t), n in sorted(kept.items()))
    return dataclasses.replace(
        result,
        placement=placement,
        cost_per_hour=sum(n * price.get(k, 0.0) for k, n in placement.items()),
        churn=sum(abs(placement.get(k, 0) - demand.current.get(k, 0)) for k in {*placement, *demand.current}),
        notes=(*result.notes, f"make before break: kept {moved} until the new replicas are ready"),
    )


class Planner:
    def __init__(
        self,
        prices: Mapping[str, float],
        *,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        throughput: Mapping[str, float] = PROFILE_THROUGHPUT,
        recovery_reports: int = DEFAULT_RECOVERY_REPORTS,
    ) -> None:
        self.prices = prices
        self.time_limit_s = time_limit_s
        self.throughput = throughput
        self.engine = Engine()
        self.failover = FailoverTracker(recovery_reports)
        self.last_solution: Solution | None = None
        """The last tick's joint solve: method (optimal, incumbent, greedy), time, gap."""
        self._reference: dict[str, float] = {}

    def plan(self, snapshot: FleetSnapshot, policies: list[Policy]) -> list[Plan]:
        recommendations = self.engine.evaluate(snapshot, policies)
        health = self.failover.observe(snapshot)
        pools = free_gpus(snapshot)
        types_of: dict[str, list[str]] = {}
        for cid, gpu_type in pools:
            types_of.setdefault(cid, []).append(gpu_type)
        inputs = []
        for rec in recommendations:
            view = snapshot.workloads[rec.workload_key]
            before = current_placement(snapshot, view)
            demand, notes = self._demand(snapshot, rec, view, before, types_of, pools, health)
            inputs.append((rec, view, before, demand, notes))
        self._reference = {k: v for k, v in self._reference.items() if k in snapshot.workloads}
        if not inputs:
            return []
        solution = solve(PlacementProblem(tuple(i[3] for i in inputs), pools), time_limit_s=self.time_limit_s)
        self.last_solution = solution
        plans = []
        for rec, view, before, demand, notes in inputs:
            result = make_before_break(demand, solution.results[demand.key])
            result = dataclasses.replace(result, notes=(*notes, *result.notes, *solution.notes))
            plans.append(Plan(rec, view, before, result))
        return plans

    def reference(self, snapshot: FleetSnapshot, view: WorkloadView, offered: list[str]) -> float:
        """Load of one of the replicas the recommendation counts.

        The engine sizes a workload in replicas of what it runs (the HPA's ``ready × value / target``),
        so the reference is the mean throughput of its replicas, taken when the workload is settled
        (every replica ready, nothing asked in flight) and kept in between. A mix still changing
        (replicas of a new type starting, old ones going) would otherwise rescale the very count the
        engine computed on the old mix, and a type switch would feed on itself. Before the first
        settled look: the mix it is asked to run, else the mean of the offered types.
        """
        mix: dict[str, int] = {}
        for report in view.reports.values():
            for v in report.variants:
                mix[v.gpu_type] = mix.get(v.gpu_type, 0) + v.desired_replicas
        now = mean_throughput(mix, self.throughput)
        if now is not None and settled(snapshot, view):
            self._reference[view.key] = now
        kept = self._reference.get(view.key)
        if kept is not None:
            return kept
        if now is not None:
            return now
        return mean_throughput(dict.fromkeys(offered, 1), self.throughput) or 1.0

    def _demand(
        self,
        snapshot: FleetSnapshot,
        rec: Recommendation,
        view: WorkloadView,
        before: Placement,
        types_of: Mapping[str, list[str]],
        pools: Mapping[Key, int],
        health: FleetHealth,
    ) -> tuple[WorkloadDemand, list[str]]:
        spec = rec.policy.placement
        gpr = max(view.gpus_per_replica, 1)
        priced: list[tuple[str, str, float]] = []
        for cid in sorted(view.reports):
            for gpu_type in sorted(types_of.get(cid, ())):
                if not spec.allows(cid, gpu_type):
                    continue
                price = spec.price(cid, gpu_type)
                price = self.prices.get(gpu_type) if price is None else price
                if price is not None:  # no price, no placement: we will not guess a cost
                    priced.append((cid, gpu_type, price))
        ref = self.reference(snapshot, view, [t for _, t, _ in priced])
        notes = []
        unknown = sorted({t for _, t, _ in priced if t not in self.throughput})
        if unknown:
            notes.append(f"throughput of {', '.join(unknown)} unknown: a replica there counts as a reference one")
        speed = {t: self.throughput.get(t, ref) for _, t, _ in priced}
        offers = tuple(Offer(cid, t, None, price * gpr, speed[t]) for cid, t, price in priced)
        bounds = rec.policy.bounds
        cluster_min = {c: b.min_replicas for c, b in bounds.per_cluster.items() if b.min_replicas}
        cluster_max = {c: b.max_replicas for c, b in bounds.per_cluster.items() if b.max_replicas is not None}
        if spec.strategy != "cost":
            clusters = sorted({o.cluster_id for o in offers})
            if spec.strategy == "static_weights":
                weights = {c: float(spec.weights.get(c, 0)) for c in clusters}
            else:  # free_capacity: Karmada's dynamic weights, the replicas that fit in each cluster now
                weights = {c: 0.0 for c in clusters}
                for o in offers:
                    weights[o.cluster_id] += (pools.get(o.key, 0) + gpr * view.placement().get(o.key, 0)) // gpr
            shares = divide(rec.desired_replicas, weights)
            notes.append(f"{spec.strategy}: {', '.join(f'{c} {n}' for c, n in sorted(shares.items()))}")
            for c, n in shares.items():
                cluster_min[c] = max(cluster_min.get(c, 0), n)
                cluster_max[c] = min(cluster_max.get(c, n), n)
        observed = view.placement()
        floor: dict[Key, int] = {}
        if not settled(snapshot, view):
            # Replicas are starting or a command is in flight: nothing is taken away until the new
            # replicas serve (the engine likewise does not scale down while replicas start).
            floor = dict(before)
            notes.append("replicas starting: none removed until they are ready")
        demand = WorkloadDemand(
            key=view.key,
            demand=rec.desired_replicas * ref,
            offers=offers,
            reference_throughput=ref,
            gpus_per_replica=gpr,
            current=before,
            held=observed,
            min_replicas=bounds.min_replicas,
            max_replicas=bounds.max_replicas,
            spread=spec.spread_min_per_cluster,
            cluster_min=cluster_min,
            cluster_max=cluster_max,
            floor=floor,
        )
        by_type = dict(self.throughput) | {t: speed[t] for t in speed}
        demand, failover_notes = apply_failover(demand, health, throughput=by_type, failover=spec.failover)
        return demand, notes + failover_notes
