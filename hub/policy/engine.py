"""The decision engine: fleet snapshot + policies -> one Recommendation per workload. Pure; no I/O.

For each workload its policy binds, in this order (docs/engine.md has the formulas and sources):

1. **signals -> proposals.** Utilisation-like and per-replica signals go through the HPA's own
   replica math on per-pod samples (``signals.py``, ``hpa.py``); latency signals through the
   capacity model (``capacity.py``), sized on the stable window's demand, with the latency guard.
2. **merge.** ``replicas_for_metrics``: the largest proposal wins; a failed signal blocks a
   scale-down; every signal failing counts toward KEDA's fallback. A reading that some serving
   cluster did not measure may scale up but never down.
3. **prediction.** The forecast load's proposal may raise the merged proposal, never lower it.
   **advice.** With ``advisor.mode: bounded``, the LLM's count inside the guard rails (``advice.py``).
4. **behaviour.** ``apply_behavior``: the HPA's stabilisation windows, rate limits and bounds, with
   the per-workload recommendation history and scale events kept here.
5. **overrides.** Knative's panic floor (jump to the burst's proposal, no scale-down while
   panicking), no scale-down while replicas are starting, and scale to zero after an idle period
   (and activation from zero).

"Current" is what the hub last asked for (or what telemetry shows once it is newer): the HPA's
``spec.replicas``, so rate limits count from the count in flight, not from a lagging report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from hub.policy import steps
from hub.policy.advice import WorkloadAdvice
from hub.policy.audit import Audit, Proposal, SignalInput
from hub.policy.behavior import Behavior, apply_behavior
from hub.policy.binding import PolicyIndex, bind
from hub.policy.capacity import CapacityModel, mix_capacity
from hub.policy.cause import Cause
from hub.policy.classes import (
    ExponentialPrompts,
    RequestClass,
    bounds_of,
    effective_capacity,
    fleet_capacity,
    request_classes,
)
from hub.policy.hpa import MetricProposal, MetricsDecision, Tolerances, replicas_for_metrics
from hub.policy.memory import WorkloadMemory
from hub.policy.model import BehaviorSpec, Metric, Policy, SignalSpec
from hub.policy.prior import PERCENTILES, class_capacity, infeasible_share, longest_prompt, prior_capacity
from hub.policy.proposals import (
    LatencyContext,
    hpa_proposal,
    latency_proposal,
    per_replica_forecast,
)
from hub.policy.signals import (
    AVERAGE_VALUE,
    ClusterPart,
    LatencyReading,
    LoadReading,
    cluster_parts,
    read_latency,
    read_load,
    read_signal,
)
from hub.policy.starts import StartEstimate, horizon_s, slowest, start_estimates
from hub.policy.steps import Step, behaviour_clamps
from hub.policy.steps import lead as lead_text
from hub.state import FleetSnapshot, WorkloadView


@lru_cache(maxsize=4096)
def _behavior(spec: BehaviorSpec) -> Behavior:
    """The HPA behaviour of a policy; policies are frozen, so one build serves every tick."""
    return spec.behavior()


def _mix_per_replica(props: _Proposed, ctx: _Context) -> float | None:
    """Tokens/s one replica of today's GPU mix takes (None: no estimate): the unit in which the
    behaviour's history and the panic floor keep load, so a count is never re-valued on another mix."""
    return (mix_capacity(props.effective, ctx.mix) or None) if props.effective else None


@dataclass(frozen=True, slots=True)
class Recommendation:
    workload_key: str
    policy: Policy
    current_replicas: int
    ready_replicas: int
    proposal: int | None
    """The merged proposal of the signals (before behaviour); None when it held."""
    desired_replicas: int
    reason: str
    inputs: dict[str, float | int | None] = field(default_factory=dict)
    proposals: dict[str, int | None] = field(default_factory=dict)
    """Per signal name; None where the signal could not propose."""
    capacity_per_replica: dict[str, float] = field(default_factory=dict)
    """Tokens/s one replica of each GPU type takes within the latency targets, headroom taken off
    (the tightest latency signal). Empty without latency signals or estimates."""
    demand: float | None = None
    """Tokens/s the desired fleet must take, in the units of ``capacity_per_replica``: the load
    when the capacity model decided, else what ``desired_replicas`` serve at today's GPU mix."""
    audit: Audit | None = None
    cause: Cause = Cause.SIGNAL
    """Which rule decided the count (``hub.policy.cause``)."""
    deciding_signal: str | None = None
    """The signal whose proposal the count came from; None for a hold."""
    demand_is_load: bool = False
    """``demand`` is the load itself (the capacity model sized the count from it, or today's GPU types
    cannot serve it at all), not a count of today's replicas."""
    classes: tuple[RequestClass, ...] = ()
    """The demand split by prompt length (``classes.py``), capacities in the units of
    ``capacity_per_replica`` (correction and headroom applied); empty when one class is all there is
    to know (no prompt-bound latency signal, no token mix yet, or a single class)."""
    starts: Mapping[tuple[str, str], StartEstimate] = field(default_factory=dict)
    """A new replica's measured start per (cluster, GPU type) (``starts.py``); empty: none measured."""

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas


@dataclass(slots=True)
class _Context:
    """One workload's evaluation inputs, read once (stage 0) and shared by the stages after it."""

    now: float
    view: WorkloadView
    policy: Policy
    mem: WorkloadMemory
    parts: tuple[ClusterPart, ...]
    current: int
    ready: int
    behavior: Behavior
    panic_s: float
    stable_s: float
    load: LoadReading
    demand: float | None
    """Tokens/s to serve: the larger of the stable and the panic window's mean."""
    panic_demand: float | None
    forecast_req: float | None
    forecast_tok: float | None
    ready_by_type: dict[str, int]
    types: set[str]
    mix: dict[str, int]
    """The GPU mix the counts are replicas of: ready, else asked, else one of each type."""
    advice: WorkloadAdvice | None = None
    """The LLM advisor's latest answer, handed in by the hub (``Engine.evaluate``)."""
    starts: dict[tuple[str, str], StartEstimate] = field(default_factory=dict)
    """Measured start of a new replica per (cluster, GPU type) where the spokes measured one."""
    horizon_s: float = 0.0
    """The forecast's horizon: ``prediction.horizon_seconds``, or the slowest measured start if longer."""


@dataclass(slots=True)
class _Proposed:
    """Stage 1's output: every signal's proposal and what the audit records about it."""

    metric: list[MetricProposal] = field(default_factory=list)
    audit: list[Proposal] = field(default_factory=list)
    signals: list[SignalInput] = field(default_factory=list)
    panic: list[tuple[str, int]] = field(default_factory=list)
    forecast: list[tuple[str, int]] = field(default_factory=list)
    capacity: dict[str, dict[str, object]] = field(default_factory=dict)
    learned: dict[str, dict[str, object]] = field(default_factory=dict)
    effective: dict[str, float] = field(default_factory=dict)
    """GPU type -> tightest capacity per replica after headroom."""
    infeasible: dict[str, float] = field(default_factory=dict)
    """Latency signal -> share of requests no allowed GPU type prefills within its target."""
    infeasible_rate: float | None = None
    """Requests/s of those (the largest over the latency signals)."""
    classes: dict[str, tuple[RequestClass, ...]] = field(default_factory=dict)
    """Latency signal -> its request classes (prompt-bound signals only)."""
    per_signal: dict[str, dict[str, float]] = field(default_factory=dict)
    """Latency signal -> GPU type -> capacity per replica after headroom (for ``request_classes``)."""

    def request_classes(self) -> tuple[RequestClass, ...]:
        """The classes placement sizes by: the first prompt-bound signal's, each type's capacity capped
        by every other latency signal's (an ITL target caps a replica whatever its prompts)."""
        if not self.classes:
            return ()
        name, classes = next(iter(self.classes.items()))
        if len(classes) < 2:
            return ()
        others = [caps for sig, caps in self.per_signal.items() if sig != name]
        out = []
        for c in classes:
            caps = {t: min([v, *(o[t] for o in others if t in o)]) for t, v in c.capacity.items()}
            out.append(RequestClass(c.lower_tokens, c.upper_tokens, c.request_share, c.token_share, c.mean_input,
                                    caps))
        return tuple(out)


class Engine:
    """Holds what evaluations need to remember per workload (histories, panic, evidence)."""

    def __init__(self, prices: Mapping[str, float] | None = None) -> None:
        self.prices = dict(prices or {})
        """USD per GPU-hour by GPU type, for the policies' cost ceilings (the policy's own prices first)."""
        self._memory: dict[str, WorkloadMemory] = {}
        self._index: PolicyIndex | None = None
        """The latest policies' index (``bind``), kept while the same policies come."""
        self.capacity = CapacityModel()

    def evaluate(self, snapshot: FleetSnapshot, policies: list[Policy], *, forget: bool = True,
                 advice: Mapping[str, WorkloadAdvice] | None = None) -> list[Recommendation]:
        """One recommendation per bound workload of ``snapshot``. ``forget=False`` for a snapshot of
        part of the fleet (event-driven evaluation): the others' memory is kept. ``advice``: the LLM
        advisor's latest answer per workload key, with its age (the hub's; the engine does no I/O)."""
        if self._index is None or not self._index.covers(policies):
            self._index = PolicyIndex.of(policies)
        bindings = [b for b in bind(self._index, snapshot.workloads) if b.view.reports]
        if forget:
            self.forget({b.view.key for b in bindings})
        return [self._recommend(snapshot, b.view, b.policy, (advice or {}).get(b.view.key)) for b in bindings]

    def forget(self, keep: Collection[str]) -> None:
        """Drop what is remembered of workloads not in ``keep``: state of workloads no policy covers
        any more would otherwise grow without bound."""
        for gone in self._memory.keys() - set(keep):
            del self._memory[gone]
        self.capacity.forget(set(keep))

    def record_applied(self, key: str, policy: Policy, *, now: float, current: int, desired: int) -> None:
        """A scale sent after the evaluation that proposed it (an approval-mode decision, once approved):
        from now on the behaviour's rate limits count it, as they count an enforced one at once."""
        self._memory_for(key, policy).record_scale(now, current, desired)

    def _memory_for(self, key: str, policy: Policy) -> WorkloadMemory:
        mem = self._memory.get(key)
        if mem is None or mem.policy_id != policy.id:
            mem = self._memory[key] = WorkloadMemory(policy.id)
        return mem

    # --- capacity ---------------------------------------------------------------------------------

    def _gpu_types(self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy,
                   parts: tuple[ClusterPart, ...]) -> set[str]:
        """GPU types the workload runs on or could be placed on (its clusters' inventories)."""
        types = {t for p in parts for t, n in p.ready_by_type.items() if n and t != "unknown"}
        for cid in view.reports:
            cluster = snapshot.clusters.get(cid)
            if cluster is not None:
                types |= {t for t in cluster.gpu_types or () if policy.allows(cid, t)}
        return types

    def _priors(self, spec: SignalSpec, types: set[str], mem: WorkloadMemory, gpr: int
                ) -> dict[str, tuple[float | None, str | None]]:
        """Each GPU type's prior capacity for the signal, and where it comes from."""
        mix = mem.mean_tokens()
        out: dict[str, tuple[float | None, str | None]] = {}
        for t in sorted(types):
            given = spec.capacity_per_replica.get(t)
            if given is not None:
                out[t] = (given, "policy")
                continue
            prior = None
            if mix is not None:
                prior = prior_capacity(t, gpus_per_replica=gpr, metric=spec.metric, percentile=spec.percentile or "p95",
                                       target_s=spec.target, mean_input=mix[0], mean_output=mix[1])
            out[t] = (prior, None if prior is None else "datasheet roofline")
        return out

    def _observe(self, ctx: _Context, spec: SignalSpec, lat: LatencyReading,
                 priors: dict[str, tuple[float | None, str | None]], classes: tuple[RequestClass, ...]) -> None:
        """Record this window as evidence, if it belongs to the fleet that is ready now."""
        key, load, ready_by_type, mem, now = ctx.view.key, ctx.load, ctx.ready_by_type, ctx.mem, ctx.now
        parts = ctx.parts
        last = mem.observed_at.get(spec.name)
        mem.observed_at[spec.name] = now
        window = max((p.samples.window_s or 0.0 for p in parts), default=0.0)
        if lat.value is None or lat.partial or load.partial or not load.token_rate or not ready_by_type:
            return
        if not mem.settled(now, window, lat.value):
            # The window's requests arrived up to `latency` before it: if the ready fleet changed
            # since, or a backlog just drained, their latency is not this fleet's.
            return
        fleet_prior = 0.0
        for t, n in ready_by_type.items():
            prior = priors.get(t, (None, None))[0]
            if not prior:
                return  # a GPU type with no prior: the share of capacity is unknown
            fleet_prior += n * prior
        if len(classes) > 1:
            # What the fleet serves of the classes, not the sum of its types' capacities: 23 L4s
            # for the short prompts and 4 A100s for the long ones miss once the A100s are full,
            # at a third of the summed figure, and read so the correction fell to 0.16.
            fleet_prior = fleet_capacity([(c.token_share, c.capacity) for c in classes], ready_by_type)
            if fleet_prior <= 0:
                return
        requests = sum(c.requests or 0.0 for c in lat.clusters)
        if requests < 1.0:
            return
        met = lat.value <= spec.target
        if not met and load.waiting:
            # Requests queue outside the batch: the fleet is past saturation, where its processed
            # tokens/s no longer say what it can take (a KV-bound replica decoding a full cache
            # processes a fraction of its unsaturated token rate). The guard and the backlog in
            # the demand handle overload; the knee is learnt from windows without a queue.
            return
        # Ticks faster than the spoke's window see the same requests again; count each once.
        share = 1.0 if last is None or not window else min(1.0, (now - last) / window)
        self.capacity.observe(key, spec.name, spec.target, utilization=load.token_rate / fleet_prior,
                              met=met, weight=requests * share, now=now)

    # --- one workload: the stages ------------------------------------------------------------------

    def _recommend(self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy,
                   advice: WorkloadAdvice | None = None) -> Recommendation:
        """read -> signals (proposals) -> merge -> decide (the named stages of ``steps``) -> record."""
        ctx = self._read(snapshot, view, policy)
        ctx.advice = advice
        props = self._propose(ctx)
        merged = replicas_for_metrics(ctx.current, props.metric)
        self._follow_mix(ctx.mem, props.effective, ctx.mix)
        step, lead, merged_value, panic_state = self._decide(ctx, props, merged)
        if policy.mode == "enforce":
            ctx.mem.record_scale(ctx.now, ctx.current, step.value)
        return self._record(ctx, props, step, lead, merged_value, panic_state)

    def _read(self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy) -> _Context:
        """Stage 0: the workload's fleet, load and demand windows, as this evaluation sees them."""
        now = snapshot.taken_at
        mem = self._memory_for(view.key, policy)
        parts = cluster_parts(snapshot, view)
        stable_s = float(policy.panic.stable_window_seconds)
        panic_s = stable_s * policy.panic.panic_window_percent / 100.0
        load = read_load(parts)
        mem.learn_mix(now, load, max((p.samples.window_s or 0.0 for p in parts), default=0.0))
        mem.learn_prompts(now, [p.samples.prompt_tokens for p in parts])
        demand_now = mem.arrival_demand(load, drain_s=stable_s)
        mem.record_demand(now, demand_now, keep_s=stable_s)
        stable_demand = mem.mean_demand(now, stable_s)
        panic_demand = mem.mean_demand(now, panic_s)
        # Up on the short window, down on the long one (the behaviour's scale-down window then
        # holds the peak): a burst is sized for at once, a lull must last before it shrinks.
        known = [d for d in (stable_demand, panic_demand) if d is not None]
        forecast_req = forecast_tok = None
        prediction = policy.prediction
        starts = start_estimates(view)
        horizon = horizon_s(prediction.horizon_seconds, starts)
        if prediction.enabled:
            req_f, tok_f = mem.forecasters(prediction.season_seconds)
            req_f.add(now, load.request_rate)
            tok_f.add(now, demand_now)
            forecast_req, forecast_tok = req_f.peak(horizon), tok_f.peak(horizon)
        ready_by_type: dict[str, int] = {}
        for p in parts:
            for t, n in p.ready_by_type.items():
                if n and t != "unknown":
                    ready_by_type[t] = ready_by_type.get(t, 0) + n
        asked_by_type: dict[str, int] = {}
        for (_, t), n in snapshot.current_placement(view).items():
            asked_by_type[t] = asked_by_type.get(t, 0) + n
        types = self._gpu_types(snapshot, view, policy, parts)
        mem.note_ready(now, ready_by_type)
        return _Context(
            now=now, view=view, policy=policy, mem=mem, parts=parts, current=sum(p.asked for p in parts),
            ready=sum(p.ready for p in parts), behavior=_behavior(policy.behavior), panic_s=panic_s,
            stable_s=stable_s, load=load, demand=max(known) if known else None, panic_demand=panic_demand,
            forecast_req=forecast_req, forecast_tok=forecast_tok, ready_by_type=ready_by_type, types=types,
            mix=ready_by_type or asked_by_type or dict.fromkeys(types, 1), starts=starts, horizon_s=horizon,
        )

    def _propose(self, ctx: _Context) -> _Proposed:
        """Stage 1 (signals): one proposal per signal, plus the panic and forecast candidates.

        Latency signals go first: their capacity model sizes the backlog of the queue signals."""
        out = _Proposed()
        tol: Tolerances = ctx.behavior.tolerances()
        done: dict[int, tuple[MetricProposal, Proposal, SignalInput]] = {}
        for i, spec in enumerate(ctx.policy.signals):
            if spec.metric.is_latency:
                done[i] = self._latency(ctx, spec, tol, out)
        per_replica = (mix_capacity(out.effective, ctx.mix) or None) if out.effective else None
        for i, spec in enumerate(ctx.policy.signals):
            if not spec.metric.is_latency:
                done[i] = self._per_replica(ctx, spec, tol, out, per_replica)
        for i in range(len(ctx.policy.signals)):
            mp, prop, sig = done[i]
            out.metric.append(mp)
            out.audit.append(prop)
            out.signals.append(sig)
        panic_proposal = max((n for _, n in out.panic), default=None)
        if panic_proposal is not None and ctx.policy.panic.enabled:
            out.audit.append(Proposal("load", "panic", panic_proposal,
                                      {"window_s": ctx.panic_s, "demand_tokens_per_s": ctx.panic_demand}))
        for name, n in out.forecast:
            detail: dict[str, object] = {"horizon_s": ctx.horizon_s, "request_rate": ctx.forecast_req,
                                         "tokens_per_s": ctx.forecast_tok}
            if ctx.horizon_s != ctx.policy.prediction.horizon_seconds:
                worst = slowest(ctx.starts)
                detail["horizon_from"] = (f"measured start {ctx.horizon_s:.0f}s on {worst.where if worst else '?'} "
                                          f"(policy horizon_seconds {ctx.policy.prediction.horizon_seconds})")
            out.audit.append(Proposal(name, "forecast", n, detail))
        return out

    @staticmethod
    def _per_replica(ctx: _Context, spec: SignalSpec, tol: Tolerances, out: _Proposed, per_replica: float | None
                     ) -> tuple[MetricProposal, Proposal, SignalInput]:
        """A utilisation or per-replica signal through the HPA's math; a queue is drained by rate.

        ``ceil(waiting / target)`` multiplies replicas by the backlog: 200 requests queued on one
        starting L4 asked for 50 replicas, which placement bought as 64 GPUs for a load one H100
        serves. Where the capacity model gives a capacity per replica, the queue's proposal is at
        most the fleet that serves the arrivals plus the backlog drained over the stable window
        (``ctx.demand`` holds both): a backlog is a rate to drain, not a count to multiply."""
        reading = read_signal(ctx.parts, spec)
        mp, prop, sig = hpa_proposal(reading, ctx.current, tol)
        drain = None
        # Only where the backlog has a value in tokens (the token mix is known): else the demand
        # leaves the queue out and the cap would hide it.
        valued = ctx.mem.mean_tokens() is not None or not ctx.load.waiting
        if spec.metric is Metric.QUEUE_PER_REPLICA and per_replica and ctx.demand is not None and valued:
            drain = max(1, math.ceil(ctx.demand / per_replica - 1e-9))
            if mp.computed and mp.replicas > drain:
                mp = dataclasses.replace(mp, replicas=drain)
                prop = Proposal(prop.source, prop.method, drain,
                                {**prop.detail, "backlog_drained_by_rate": drain,
                                 "demand_tokens_per_s": ctx.demand, "capacity_per_replica": per_replica})
        if spec.metric in AVERAGE_VALUE and mp.computed:
            # Knative's dppc: the load itself over the per-replica target, not the HPA's
            # proposal (which holds the current count within tolerance, starting replicas
            # included, and would read as a burst against the ready ones).
            total = sum(p.value for p in reading.pods if p.value is not None)
            dppc = math.ceil(total / spec.target - 1e-9)
            out.panic.append((spec.name, dppc if drain is None else min(dppc, drain)))
            f = per_replica_forecast(spec, ctx.forecast_req, ctx.forecast_tok)
            if f is not None:
                out.forecast.append((spec.name, f))
        return mp, prop, sig

    def _latency(self, ctx: _Context, spec: SignalSpec, tol: Tolerances, out: _Proposed
                 ) -> tuple[MetricProposal, Proposal, SignalInput]:
        """A latency signal through the capacity model, learning from this window first.

        With request classes, a GPU type's prior is what it serves of the classes it can serve
        (``classes.effective_capacity``): an L4 that takes only the short prompts is rated on those,
        not 0 on the whole mix's long tail, and counts of a mix with L4s mean what they serve."""
        lat = read_latency(ctx.parts, spec)
        priors = self._priors(spec, ctx.types, ctx.mem, ctx.view.gpus_per_replica)
        classes = self._classes(ctx, spec)
        if len(classes) > 1:
            priors = {t: (effective_capacity(classes, t), "datasheet roofline by request class") for t in priors}
        if all(any(ctx.ready_by_type.get(t) for t in c.capacity) for c in classes):
            # With classes, only a fleet with a ready type for every class says what it can take:
            # the start-up L4 serving 6,000-token prompts misses at any load, and learnt as capacity
            # that miss sized every type 3x too large.
            self._observe(ctx, spec, lat, priors, classes)
        factor, ev = self.capacity.factor(ctx.view.key, spec.name, now=ctx.now)
        caps = {t: None if prior is None else factor * prior for t, (prior, _) in priors.items()}
        out.learned[spec.name] = {"factor": factor, "seen_ok": ev.ok, "seen_miss": ev.bad,
                                  "evidence_requests": ev.weight}
        self._infeasible(ctx, spec, out)
        head = 1.0 + spec.headroom_percent / 100.0
        for t, (prior, source) in priors.items():
            out.capacity.setdefault(t, {})[spec.name] = {"capacity": caps[t], "prior": prior, "prior_source": source}
            cap = caps[t]
            if cap is not None:
                out.effective[t] = min(out.effective.get(t, math.inf), cap / head)
                out.per_signal.setdefault(spec.name, {})[t] = cap / head
        if len(classes) > 1:
            out.classes[spec.name] = tuple(c.scaled(factor / head) for c in classes)
        window = max((p.samples.window_s or 0.0 for p in ctx.parts), default=0.0)
        settled = ctx.current == ctx.ready and ctx.mem.latency_is_current(ctx.now, window, lat.value or 0.0)
        lctx = LatencyContext(ctx.current, ctx.ready, ctx.demand, ctx.load.partial, caps, ctx.mix, settled)
        mp, prop, sig, per_replica = latency_proposal(lat, lctx, tol)
        if per_replica:
            if ctx.panic_demand is not None:
                out.panic.append((spec.name, math.ceil(ctx.panic_demand * head / per_replica - 1e-9)))
            if ctx.forecast_tok is not None:
                out.forecast.append((spec.name, math.ceil(ctx.forecast_tok * head / per_replica - 1e-9)))
        return mp, prop, sig

    def _classes(self, ctx: _Context, spec: SignalSpec) -> tuple[RequestClass, ...]:
        """The signal's request classes at the datasheet priors (``classes.py``), when its target bounds
        the prompt; () otherwise.

        Priced per GPU (a replica's GPUs scale every type alike). A policy that gives capacities
        per replica has measured its whole mix: no classes then. The split is chosen on the fluid
        cost, which depends on the prompt lengths and prices only, so it stays put while the load
        moves; placement then buys whole replicas against the classes (sharing replicas between
        them), so a small load still lands on one A100 where that is cheapest."""
        gpr = ctx.view.gpus_per_replica
        mix = ctx.mem.mean_tokens()
        if mix is None or spec.metric is Metric.ITL or spec.capacity_per_replica \
                or not ctx.policy.placement.request_classes:
            return ()
        longest = {t: x for t in ctx.types
                   if (x := longest_prompt(t, gpus_per_replica=gpr, metric=spec.metric, target_s=spec.target))}
        prices = {t: p for t in longest if (p := self._price(ctx.policy, t)) is not None}

        def capacity(t: str, mean_in: float, prompt_q: float) -> float | None:
            return class_capacity(t, gpus_per_replica=gpr, metric=spec.metric, target_s=spec.target,
                                  mean_input=mean_in, mean_output=mix[1], prompt_at_percentile=prompt_q)

        lengths = ctx.mem.prompt_lengths() or ExponentialPrompts(mix[0])
        classes = request_classes(lengths, mix[1], longest, prices, capacity,
                                  percentile=PERCENTILES[spec.percentile or "p95"],
                                  keep=ctx.mem.class_bounds.get(spec.name))
        ctx.mem.class_bounds[spec.name] = bounds_of(classes)
        return classes

    def _price(self, policy: Policy, gpu_type: str) -> float | None:
        price = policy.placement.price("*", gpu_type)
        return self.prices.get(gpu_type) if price is None else price

    @staticmethod
    def _infeasible(ctx: _Context, spec: SignalSpec, out: _Proposed) -> None:
        """The share of requests no allowed GPU type prefills within the target, even on an idle replica.

        More replicas do not serve them in time;
        they are reported, in the audit and the decision's inputs, not sized for."""
        mix = ctx.mem.mean_tokens()
        longest = [x for t in ctx.types if (x := longest_prompt(t, gpus_per_replica=ctx.view.gpus_per_replica,
                                                                  metric=spec.metric, target_s=spec.target))
                   is not None]
        if mix is None or not longest:
            return
        share = infeasible_share(max(longest), mix[0])
        out.infeasible[spec.name] = share
        if ctx.load.request_rate is not None:
            out.infeasible_rate = max(out.infeasible_rate or 0.0, share * ctx.load.request_rate)

    def _decide(self, ctx: _Context, props: _Proposed, merged: MetricsDecision
                ) -> tuple[Step, str, int | None, dict[str, object]]:
        """Stages 2-6: the merge's answer, or a hold, through the named stages (each sets the cause)."""
        policy, mem, now, current = ctx.policy, ctx.mem, ctx.now, ctx.current
        bounds = policy.bounds
        step = Step(current)
        mem.idle_since = (mem.idle_since if mem.idle_since is not None else now) if ctx.load.idle else None
        mem.prune(now, max(ctx.behavior.scale_up.stabilization_window_seconds,
                           ctx.behavior.scale_down.stabilization_window_seconds))
        all_failed = merged.replicas is None and merged.invalid == len(props.metric)
        if current == 0 and policy.scale_to_zero.enabled:
            return step, steps.from_zero(step, policy, ctx.load, merged.replicas, mem, props.audit), None, {}
        if current > bounds.max_replicas or current < bounds.min_replicas:
            mem.failures = 0
            return step, steps.outside_bounds(step, policy, ctx.load), merged.replicas, {}
        if all_failed:
            return step, steps.all_missing(step, policy, mem, merged.error or "", props.audit), None, {}
        mem.failures = 0
        partial = [s.signal for s in props.signals if s.partial]
        if merged.replicas is None:
            step.hold(Cause.MISSING_DATA)
            return step, f"a signal failed and the others point down; no scale-down ({merged.error})", None, {}
        if partial and merged.replicas < current:
            step.hold(Cause.MISSING_DATA)
            return step, f"{', '.join(partial)} missing on some clusters; no scale-down", merged.replicas, {}
        lead = lead_text(merged.metric, props.signals, props.audit)
        step.value = merged.replicas  # the stages below are counted from the proposal
        step.signal = None if merged.metric is None else merged.metric.target.name
        steps.forecast(step, max((n for _, n in props.forecast), default=None), ctx.horizon_s)
        steps.advise(step, ctx.advice, policy, props.audit, props.signals)
        self._behaviour(ctx, props, step)
        panic_proposal = max((n for _, n in props.panic), default=None)
        decision = mem.panic.update(policy.panic, now=now, proposal=panic_proposal, ready=ctx.ready,
                                    per_replica=_mix_per_replica(props, ctx))
        panic_state: dict[str, object] = {"panicking": decision.panicking, "entered": decision.entered,
                                          "left": decision.left, "ratio": decision.ratio, "floor": decision.floor,
                                          "window_s": ctx.panic_s}
        steps.panic(step, decision, current, bounds.max_replicas)
        steps.starting(step, current, ctx.ready)
        steps.scale_to_zero(step, policy.scale_to_zero, None if mem.idle_since is None else now - mem.idle_since)
        steps.cost_ceiling(step, bounds.max_cost_per_hour, self._price_per_replica(ctx), bounds.min_replicas)
        return step, lead, merged.replicas, panic_state

    def _price_per_replica(self, ctx: _Context) -> float | None:
        """USD per hour of one replica of today's GPU mix (the policy's '*' price, else the hub's);
        None when a type of the mix has no price."""
        total, cost = 0, 0.0
        for t, n in ctx.mix.items():
            if n <= 0:
                continue
            price = self._price(ctx.policy, t)
            if price is None:
                return None
            cost += n * price * max(ctx.view.gpus_per_replica, 1)
            total += n
        return cost / total if total else None

    @staticmethod
    def _behaviour(ctx: _Context, props: _Proposed, step: Step) -> None:
        """Stage: the HPA's stabilisation windows, rate limits and bounds, on the history in load units.

        The windows read the history as replicas of today's mix; it is kept as the load each count
        stood for, so a change of mix re-expresses it once, exactly (memory.py)."""
        mem, bounds = ctx.mem, ctx.policy.bounds
        per_replica = _mix_per_replica(props, ctx)
        result = apply_behavior(ctx.current, step.value, min_replicas=bounds.min_replicas,
                                max_replicas=bounds.max_replicas, behavior=ctx.behavior,
                                recommendations=mem.counts(per_replica), scale_up_events=mem.scale_up_events,
                                scale_down_events=mem.scale_down_events, now=ctx.now)
        replicas: float = step.value
        if per_replica and ctx.demand is not None and Engine._sized_by_load(step, props, ctx.demand):
            replicas = ctx.demand / per_replica  # the load the capacity model sized, not its round-up
        mem.remember(ctx.now, replicas, per_replica)
        behaviour_clamps(step, result, bounds.min_replicas, bounds.max_replicas)
        if result.replicas == result.stabilized_replicas > result.proposed_replicas:
            # Held by the scale-down window: the hold is the window's largest load, which placement
            # buys at the cheapest mix (the count is that load in replicas of today's mix).
            step.load = mem.held_load(ctx.now, ctx.behavior.scale_down.stabilization_window_seconds)

    def _record(self, ctx: _Context, props: _Proposed, step: Step, lead: str, merged_value: int | None,
                panic_state: dict[str, object]) -> Recommendation:
        """Stage 7: the recommendation and its audit record."""
        mem, policy, load, now = ctx.mem, ctx.policy, ctx.load, ctx.now
        partial = [s.signal for s in props.signals if s.partial]
        inputs: dict[str, float | int | None] = {"current_replicas": ctx.current, "ready_replicas": ctx.ready,
                                                 "stale_clusters": len(ctx.view.stale_clusters)}
        for s in props.signals:
            inputs[s.signal] = s.value
            inputs[f"{s.signal}_target"] = s.target
        inputs["partial"] = bool(partial)
        inputs["demand_tokens_per_s"] = ctx.demand
        inputs["infeasible_requests_per_s"] = props.infeasible_rate
        proposals = {p.source: p.replicas for p in props.audit if p.method in ("hpa", "capacity-model")}
        reason = "; ".join([lead, *step.reasons]) if lead else "; ".join(step.reasons)
        demand_out: float | None
        if step.load is not None and props.effective:
            demand_out, is_load = step.load, True
        else:
            demand_out, is_load = self._demand_out(step.value, ctx.demand, props.effective, ctx.mix,
                                                   self._sized_by_load(step, props, ctx.demand))
        audit = Audit(
            workload=ctx.view.key, policy_id=policy.id, policy_revision=policy.revision,
            current_replicas=ctx.current, ready_replicas=ctx.ready, inputs=tuple(props.signals),
            load={"request_rate": load.request_rate, "tokens_per_s": load.token_rate, "waiting": load.waiting,
                  "demand_tokens_per_s": ctx.demand, "panic_demand_tokens_per_s": ctx.panic_demand,
                  "demand_out_tokens_per_s": demand_out, "partial": dict(load.missing),
                  "infeasible_share": dict(props.infeasible), "infeasible_requests_per_s": props.infeasible_rate,
                  "idle_for_s": None if mem.idle_since is None else now - mem.idle_since},
            capacity=props.capacity, proposals=tuple(props.audit), merged=merged_value,
            clamps=tuple(step.clamps), desired_replicas=step.value, reason=reason, panic=panic_state,
            correction=props.learned, cause=step.cause, deciding_signal=step.signal, advice=step.advice,
            starts={e.where: e.to_json() for e in ctx.starts.values()},
        )
        return Recommendation(ctx.view.key, policy, ctx.current, ctx.ready, merged_value, step.value, reason, inputs,
                              proposals, dict(sorted(props.effective.items())), demand_out, audit,
                              cause=step.cause, deciding_signal=step.signal, demand_is_load=is_load,
                              classes=props.request_classes(), starts=dict(ctx.starts))

    @staticmethod
    def _sized_by_load(step: Step, props: _Proposed, demand: float | None) -> bool:
        """The capacity model's load sizing decided the count (not its guard, a hold or a clamp)."""
        if step.cause is not Cause.SIGNAL or step.signal is None or demand is None:
            return False
        prop = next((p for p in props.audit if p.source == step.signal), None)
        if prop is None or prop.method != "capacity-model":
            return False
        return prop.detail.get("sized") == step.value

    @staticmethod
    def _follow_mix(mem: WorkloadMemory, effective: dict[str, float], mix: dict[str, int]) -> None:
        """Re-express the count history in replicas of today's GPU mix when the mix changed.

        A latency signal's counts are replicas of the current mix; when placement moves the workload
        to faster (or slower) GPUs, the 8 L4 replicas of five minutes ago are not 8 A100 replicas now.
        The panic floor and scale events are scaled by the ratio of the two mixes' capacity per
        replica, so they keep meaning the same load; the recommendations are kept in load units and
        re-expressed when read (``WorkloadMemory.counts``).
        """
        old_mix, mem.mix = mem.mix, dict(mix)
        if not effective or old_mix is None or old_mix == mix:
            return
        old, new = mix_capacity(effective, old_mix), mix_capacity(effective, mix)
        if old and new and abs(old / new - 1.0) > 0.01:
            mem.rescale(old / new)

    @staticmethod
    def _demand_out(desired: int, demand: float | None, effective: dict[str, float], mix: dict[str, int],
                    sized_by_load: bool) -> tuple[float | None, bool]:
        """The load the desired fleet must take, and whether it is the load itself (else a count)."""
        if not effective:
            return None, False  # no capacity estimate for any GPU type: nothing to compare them by
        per_replica = mix_capacity(effective, mix)
        if demand is None:
            return (desired * per_replica if per_replica else None), False
        if not per_replica or sized_by_load:
            # The load itself: the capacity model decided, or today's GPU types cannot serve it at
            # the target at all (placement must move it to types that can).
            return demand, True
        return desired * per_replica, False
