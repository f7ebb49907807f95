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
* load: in the engine's own units when it gives them (``engine_load``): a replica of type t serves
  ``capacity_per_replica[t]`` tokens/s (headroom already taken off) and the demand is the engine's
  load when its capacity model decided, else its count as a step from the replicas it asked for
  (and never less than that count while latency is above target). Otherwise (no latency signal, or
  an offered type without an estimate) the recommendation counts replicas: the demand is that
  count times the workload's *reference throughput*, the mean throughput of the replicas it ran
  when last settled (see ``Planner.reference``), with throughput per GPU type from
  ``hub.placement.throughput``;
* bounds: the policy's total and per-cluster bounds, spread, and for the weight strategies the
  Karmada division of the recommended count as per-cluster targets;
* failover: lost clusters' replicas re-placed, recovering ones held (``hub.placement.failover``);
* make before break: nothing running is removed while replicas start, and a move keeps the old
  replicas until the new ones are ready (``make_before_break``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from hub.control import budgets as budgeting
from hub.placement import (
    DEFAULT_TIME_LIMIT_S,
    FailoverTracker,
    FleetHealth,
    Key,
    LoadClass,
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
from hub.placement.routing import routing_rules
from hub.placement.throughput import PROFILE_THROUGHPUT, mean_throughput
from hub.policy.advice import WorkloadAdvice
from hub.policy.budget import Budget
from hub.policy.capacity import mix_capacity
from hub.policy.cause import Cause
from hub.policy.classes import fleet_capacity
from hub.policy.engine import Engine, Recommendation
from hub.policy.model import Policy
from hub.policy.starts import StartEstimate
from hub.state import FleetSnapshot, Placement, WorkloadView
from shared.messages import RoutingRule


@dataclass(frozen=True, slots=True)
class Plan:
    recommendation: Recommendation
    view: WorkloadView
    before: Placement
    """What the workload has, or was last asked to have, per (cluster, GPU type)."""
    result: PlacementResult
    routing: tuple[RoutingRule, ...] = ()
    """Which GPU types each prompt-length class may use (``hub.placement.routing``); empty without classes."""
    placement_cause: Cause | None = None
    """A budget's cap or a higher priority left the workload short (``hub.control.budgets``)."""

    @property
    def policy(self) -> Policy:
        return self.recommendation.policy

    @property
    def changed(self) -> bool:
        return self.result.placement != self.before or self.recommendation.changed


def settled(snapshot: FleetSnapshot, view: WorkloadView) -> bool:
    """Every replica of the workload ready, and no command to it in flight or unconfirmed.

    A refused or failed command started nothing, so it does not count: otherwise a grow the cluster
    refused for capacity (re-asked every retry period) would forbid the workload ever to shrink.
    """
    for cid, report in view.reports.items():
        intent = snapshot.intents.get((view.key, cid))
        if intent is not None and intent.phase.stands:
            return False
        if any(v.ready_replicas != v.desired_replicas for v in report.variants):
            return False
    return True


def make_before_break(demand: WorkloadDemand, result: PlacementResult,
                      slack: budgeting.Slack | None = None,
                      starts: Mapping[tuple[str, str], StartEstimate] | None = None) -> PlacementResult:
    """A placement that adds replicas somewhere keeps, for now, the running ones it removes elsewhere.

    A move (L4s out, an A100 in) would otherwise cut capacity for a whole cold start. The kept
    replicas go on a later tick, once the new ones are ready and the workload has settled: then the
    solver's answer only shrinks, and a pure shrink is applied at once. Under a budget the kept
    replicas must fit in what its caps leave (``slack``); if they do not, the move breaks first.
    ``starts``: measured start times, to say in the note how long the old replicas are expected to
    be kept.
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
    short = None if slack is None else slack.take(demand, kept)
    if short is not None:
        return dataclasses.replace(result, notes=(*result.notes, (
            f"make before break: budget {short} has no room to keep the replicas being moved; they go at once")))
    price = {o.key: o.price_per_replica_hour for o in demand.offers}
    moved = ", ".join(f"{n} on {c}/{t}" for (c, t), n in sorted(kept.items()))
    note = f"make before break: kept {moved} until the new replicas are ready"
    added = [k for k, n in sorted(placement.items()) if n > demand.current.get(k, 0)]
    measured = [(starts or {})[k] for k in added if k in (starts or {})]
    if measured:
        note += " (measured start " + ", ".join(f"{e.seconds:.0f}s on {e.where}" for e in measured) + ")"
    return dataclasses.replace(
        result,
        placement=placement,
        cost_per_hour=sum(n * price.get(k, 0.0) for k, n in placement.items()),
        churn=sum(abs(placement.get(k, 0) - demand.current.get(k, 0)) for k in {*placement, *demand.current}),
        notes=(*result.notes, note),
    )


LATE_START_FACTOR = 2.0
"""Replicas still starting this many times their measured start after the command went out are late."""


def late_starts(snapshot: FleetSnapshot, view: WorkloadView,
                starts: Mapping[tuple[str, str], StartEstimate]) -> list[str]:
    """A note per place whose replicas have been starting for over ``LATE_START_FACTOR`` times their
    measured start since the hub's command went out: a pull failing, a pod that cannot be
    scheduled or a crash loop, which the operator should look at (the plan only waits)."""
    out = []
    for cid, report in sorted(view.reports.items()):
        intent = snapshot.intents.get((view.key, cid))
        if intent is None:
            continue
        waited = snapshot.taken_at - intent.sent_monotonic
        for v in report.variants:
            est = starts.get((cid, v.gpu_type))
            if est is not None and v.ready_replicas < v.desired_replicas and waited > LATE_START_FACTOR * est.seconds:
                out.append(f"late start on {est.where}: {v.desired_replicas - v.ready_replicas} replica(s) not ready "
                           f"{waited:.0f}s after the command, measured start {est.seconds:.0f}s; check the pods "
                           f"(image pull, scheduling, crash loop)")
    return out


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """A workload's placement load in the engine's units (tokens/s at the SLO)."""

    demand: float
    throughput: dict[str, float]
    """Per offered GPU type: tokens/s one replica takes within the SLO, headroom off (> 0)."""
    reference: float
    """Tokens/s of one replica of today's mix: unplaced load is reported in these replicas."""
    no_growth: frozenset[str]
    """Types the engine says cannot meet the target at all: offered only to keep what runs there."""
    notes: tuple[str, ...]
    classes: tuple[LoadClass, ...] = ()
    """The demand by request class (the engine's ``Recommendation.classes``), for the offered types."""


ZERO_CAPACITY_SHARE = 0.01
"""A type that cannot meet the target at all (capacity 0) counts this share of the slowest capable
type, only so that the replicas it runs stay while their replacements start (make before break):
it is offered with no growth, so the solver never adds one, and it weighs next to nothing."""


HELD_LOADS = frozenset({Cause.PANIC, Cause.STABILISED})
"""Causes whose load is the hold itself (the panic floor, the scale-down window's largest load): the
count beside it is that load in replicas of the ready mix, which placement must not buy instead."""


def _hot(rec: Recommendation) -> bool:
    """Some latency signal above its target (the engine's latency guard is up)."""
    for spec in rec.policy.signals:
        value = rec.inputs.get(spec.name)
        if spec.metric.is_latency and isinstance(value, (int, float)) and value > spec.target:
            return True
    return False


def engine_load(
    rec: Recommendation, view: WorkloadView, offered: list[str], asked: Placement
) -> tuple[EngineLoad | None, str | None]:
    """The demand and each offered type's throughput in the engine's tokens/s, or why replicas are counted.

    Replicas are counted (the reference path) when the engine gives no load (no latency signal, or
    no capacity estimate for what runs), when an offered type has no estimate (no datasheet prior
    and no policy figure: comparing it by tokens/s would be a guess, so the whole workload keeps the
    replica path; the note says so), or when no offered type can meet the target at all.

    The demand is the engine's load when its capacity model decided the count (the headroom is in
    the capacities, not the demand). A count decided otherwise (another signal, a clamp, a hold,
    panic, the latency guard) is a step from what the engine asked for, the HPA's spec.replicas:
    the replicas asked serve what their types serve, and the step is in replicas of the ready mix,
    on which the engine computed it. While latency is above target the load is never less than
    that count, so a scale-up the guard or panic decided is not undercut by the load figure.
    """
    caps = rec.capacity_per_replica
    if rec.demand is None or not caps or not offered:
        return None, None
    types = sorted(set(offered))
    missing = [t for t in types if caps.get(t) is None]
    if missing:
        return None, f"no capacity estimate for {', '.join(missing)}: placed in replicas of the reference"
    # With request classes the engine's capacity of a type is already what it serves of the classes it
    # can take (``classes.effective_capacity``): an L4 too slow for the whole mix is capable of its share.
    classes = _load_classes(rec, types)
    capable = {t: caps[t] for t in types if caps[t] > 0}
    if not capable:
        return None, "no offered GPU type meets the latency target: placed in replicas of the reference"
    ready: dict[str, int] = {}
    for report in view.reports.values():
        for v in report.variants:
            if v.ready_replicas:
                ready[v.gpu_type] = ready.get(v.gpu_type, 0) + v.ready_replicas
    asked_by_type: dict[str, int] = {}
    for (_, t), n in asked.items():
        if n > 0:
            asked_by_type[t] = asked_by_type.get(t, 0) + n
    # Read on the ready mix alone (``Recommendation.demand``), a hold while H100s start and L4s serve
    # would price every asked L4 as an H100, and the placement of that load would feed the next hold.
    ready_pr = _per_replica(caps, classes, ready or asked_by_type)
    if ready_pr is None:
        # Nothing runs or is asked (activation from zero): a replica is one of the offered types'
        # mean, as the engine sizes a fleet with no mix.
        ready_pr = mix_capacity(caps, dict.fromkeys(types, 1)) or 0.0
    asked_pr = _per_replica(caps, classes, asked_by_type) or ready_pr
    current = rec.current_replicas
    by_count = max(0.0, current * asked_pr + (rec.desired_replicas - current) * ready_pr)
    notes = []
    if rec.demand_is_load:
        demand = rec.demand  # the capacity model decided, or a panic or scale-down hold: the load itself
        if _hot(rec) and by_count > demand and rec.cause not in HELD_LOADS:
            notes.append(f"latency above target: load held at the {rec.desired_replicas} replicas asked "
                         f"({by_count:.0f} tokens/s)")
            demand = by_count
    else:
        demand = by_count
        notes.append(f"{rec.desired_replicas} replicas counted from the {current} asked: {demand:.0f} tokens/s")
    zero = frozenset(t for t in types if t not in capable)
    if zero:
        notes.append(f"{', '.join(sorted(zero))} cannot meet the latency target: no growth there")
    slowest = min(capable.values())
    throughput = {t: capable.get(t, ZERO_CAPACITY_SHARE * slowest) for t in types}
    reference = ready_pr if ready_pr > 0 else max(capable.values())
    if classes:
        notes.append("request classes: " + "; ".join(
            f"{c.name} {100 * c.share:.0f} % on " + ", ".join(f"{t} {v:.0f}" for t, v in sorted(c.throughput.items()))
            for c in classes))
    return EngineLoad(demand, throughput, reference, zero, tuple(notes), classes), None


def _per_replica(caps: Mapping[str, float], classes: tuple[LoadClass, ...], fleet: Mapping[str, int]
                 ) -> float | None:
    """Tokens/s one replica of ``fleet`` takes: with request classes, what the fleet serves of them as
    placement counts it (``classes.fleet_capacity``), so a count valued here and placed again asks for the
    same fleet; else (or where some class has no type in the fleet) the engine's mean over the mix."""
    total = sum(fleet.values())
    if classes and total:
        worth = fleet_capacity([(c.share, c.throughput) for c in classes], fleet)
        if worth > 0:
            return worth / total
    return mix_capacity(caps, fleet)


def _load_classes(rec: Recommendation, types: list[str]) -> tuple[LoadClass, ...]:
    """The engine's request classes on the offered types; () unless every class has a type to run on."""
    out = []
    for c in rec.classes:
        throughput = {t: v for t, v in c.capacity.items() if t in types and v > 0}
        if not throughput:
            return ()  # a class nothing offered serves: the classes say nothing placement can use
        out.append(LoadClass(c.name, c.token_share, throughput))
    total = sum(c.share for c in out)
    if len(out) < 2 or total <= 0:
        return ()
    return tuple(dataclasses.replace(c, share=c.share / total) for c in out)


def return_hold_s(policy: Policy) -> float:
    """How long a failover baseline holds after the workload's clusters are all back: the policy's
    scale-down stabilisation window (the HPA's default when unset), or its stable window when longer
    (the latency signals' demand is averaged over it)."""
    window = policy.behavior.scale_down.rules("down").stabilization_window_seconds
    return float(max(window, policy.panic.stable_window_seconds if policy.panic.enabled else 0))


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
        self.engine = Engine(prices)
        self.failover = FailoverTracker(recovery_reports)
        self.last_solution: Solution | None = None
        """The last tick's joint solve: method (optimal, incumbent, greedy), time, gap."""
        self._reference: dict[str, float] = {}
        self.last_health: FleetHealth | None = None
        """The last plan's cluster phases (the evaluator revokes commands to newly lost clusters)."""
        self.budget_use: dict[str, budgeting.BudgetUse] = {}
        """Each budget against its caps, as last planned (a partial plan holds every workload of the
        budgets it touches, since the evaluator widens it, and updates only those)."""

    def plan(self, snapshot: FleetSnapshot, policies: list[Policy], *, partial: bool = False,
             advice: Mapping[str, WorkloadAdvice] | None = None, budgets: Sequence[Budget] = ()) -> list[Plan]:
        """Plans for the workloads of ``snapshot``; ``partial`` when it holds only some of the fleet's
        (event-driven evaluation): the others keep what the engine and the planner remember of them,
        and their current placements, already in the reported free GPUs, are left as they are.
        ``advice``: the LLM advisor's latest answer per workload, for the engine's advice stage.
        ``budgets``: hard caps over the workloads each selects (docs/budgets.md)."""
        recommendations = self.engine.evaluate(snapshot, policies, forget=not partial, advice=advice)
        health = self.last_health = self.failover.observe(snapshot)
        pools = free_gpus(snapshot)
        types_of: dict[str, list[str]] = {}
        for cid, gpu_type in pools:
            types_of.setdefault(cid, []).append(gpu_type)
        inputs = []
        for rec in recommendations:
            view = snapshot.workloads[rec.workload_key]
            before = snapshot.current_placement(view)
            demand, notes = self._demand(snapshot, rec, view, before, types_of, pools, health)
            inputs.append((rec, view, before, demand, notes))
        if not partial:
            self._reference = {k: v for k, v in self._reference.items() if k in snapshot.workloads}
        if not inputs:
            if not partial:
                self.budget_use = {u.budget.id: u for u in budgeting.usage(budgets, {}, {}, {})}
            return []
        caps = budgeting.caps(budgets, [i[1] for i in inputs])
        problem = PlacementProblem(tuple(i[3] for i in inputs), pools, caps)
        solution = solve(problem, time_limit_s=self.time_limit_s)
        self.last_solution = solution
        demands = {i[3].key: i[3] for i in inputs}
        uses = budgeting.usage(budgets, {c.id: c.members for c in caps}, demands,
                               {k: r.placement for k, r in solution.results.items()})
        if not partial:
            self.budget_use = {}
        self.budget_use.update((u.budget.id, u) for u in uses if u.workloads or not partial)
        top = max(d.priority for d in demands.values())
        slack = budgeting.Slack(uses)
        plans = []
        for rec, view, before, demand, notes in inputs:
            placed = solution.results[demand.key]
            cause, why = budgeting.placement_cause(demand, placed, uses, top)
            result = make_before_break(demand, placed, slack, rec.starts)
            extra = (why,) if why else ()
            result = dataclasses.replace(result, notes=(*notes, *result.notes, *extra, *solution.notes))
            bounds = [(c.lower_tokens, c.upper_tokens) for c in rec.classes]
            routing = routing_rules(demand.classes, bounds, demand.demand, result.placement)
            plans.append(Plan(rec, view, before, result, routing, cause))
        return plans

    def forget(self, keep: Collection[str]) -> None:
        """Forget workloads not in ``keep`` (partial plans never do: the evaluator calls this)."""
        self.engine.forget(keep)
        self._reference = {k: v for k, v in self._reference.items() if k in keep}

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
        load, why_not = engine_load(rec, view, [t for _, t, _ in priced], before)
        # Kept current on every tick, so that a workload whose engine figures lapse (its latency
        # signal gone quiet) falls back to a settled reference, not one from long ago.
        ref = self.reference(snapshot, view, [t for _, t, _ in priced])
        notes = [why_not] if why_not else []
        if load is not None:
            ref = load.reference
            speed = load.throughput
            demanded = load.demand
            notes.append(f"load {demanded:.0f} tokens/s at the SLO, per replica "
                         + ", ".join(f"{t} {v:.0f}" for t, v in sorted(speed.items())))
            notes.extend(load.notes)
            offers = tuple(
                Offer(cid, t, max(view.placement().get((cid, t), 0), before.get((cid, t), 0)) if t in load.no_growth
                      else None, price * gpr, speed[t])
                for cid, t, price in priced
            )
        else:
            demanded = rec.desired_replicas * ref
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
            notes.extend(late_starts(snapshot, view, rec.starts))
        demand = WorkloadDemand(
            key=view.key,
            demand=demanded,
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
            classes=load.classes if load is not None else (),
            priority=rec.policy.priority,
        )
        by_type = (dict(rec.capacity_per_replica) if load is not None else dict(self.throughput)) | speed
        demand, failover_notes = apply_failover(demand, health, throughput=by_type, failover=spec.failover,
                                                hold_s=return_hold_s(rec.policy))
        return demand, notes + failover_notes
