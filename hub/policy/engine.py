"""The decision engine: fleet snapshot + policies -> one Recommendation per workload. Pure; no I/O.

For each workload its policy binds, in this order (docs/engine.md has the formulas and sources):

1. **signals -> proposals.** Utilisation-like and per-replica signals go through the HPA's own
   replica math on per-pod samples (``signals.py``, ``hpa.py``); latency signals through the
   capacity model (``capacity.py``), sized on the stable window's demand, with the latency guard.
2. **merge.** ``replicas_for_metrics``: the largest proposal wins; a failed signal blocks a
   scale-down; every signal failing counts toward KEDA's fallback. A reading that some serving
   cluster did not measure may scale up but never down.
3. **prediction.** The forecast load's proposal may raise the merged proposal, never lower it.
4. **behaviour.** ``apply_behavior``: the HPA's stabilisation windows, rate limits and bounds, with
   the per-workload recommendation history and scale events kept here.
5. **overrides.** Knative's panic floor (jump to the burst's proposal, no scale-down while
   panicking), no scale-down while replicas are starting, and scale to zero after an idle period
   (and activation from zero).

"Current" is what the hub last asked for (or what telemetry shows once it is newer): the HPA's
``spec.replicas``, so rate limits count from the count in flight, not from a lagging report.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache

from hub.policy.audit import Audit, Proposal, SignalInput
from hub.policy.behavior import Behavior, apply_behavior
from hub.policy.binding import bind
from hub.policy.capacity import CapacityModel, mix_capacity
from hub.policy.hpa import MetricProposal, Tolerances, replicas_for_metrics
from hub.policy.memory import WorkloadMemory
from hub.policy.model import BehaviorSpec, Policy, SignalSpec
from hub.policy.prior import prior_capacity
from hub.policy.proposals import (
    LatencyContext,
    activation_replicas,
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
from hub.policy.steps import Step, all_missing, behaviour_clamps, from_zero, queue_targets
from hub.policy.steps import lead as lead_text
from hub.state import FleetSnapshot, WorkloadView


@lru_cache(maxsize=4096)
def _behavior(spec: BehaviorSpec) -> Behavior:
    """The HPA behaviour of a policy; policies are frozen, so one build serves every tick."""
    return spec.behavior()


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

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas


class Engine:
    """Holds what evaluations need to remember per workload (histories, panic, evidence)."""

    def __init__(self) -> None:
        self._memory: dict[str, WorkloadMemory] = {}
        self.capacity = CapacityModel()

    def evaluate(self, snapshot: FleetSnapshot, policies: list[Policy], *, forget: bool = True) -> list[Recommendation]:
        """One recommendation per bound workload of ``snapshot``. ``forget=False`` for a snapshot of
        part of the fleet (event-driven evaluation): the others' memory is kept."""
        bindings = [b for b in bind(policies, snapshot.workloads) if b.view.reports]
        if forget:
            self.forget({b.view.key for b in bindings})
        return [self._recommend(snapshot, b.view, b.policy) for b in bindings]

    def forget(self, keep: Collection[str]) -> None:
        """Drop what is remembered of workloads not in ``keep``: state of workloads no policy covers
        any more would otherwise grow without bound."""
        for gone in self._memory.keys() - set(keep):
            del self._memory[gone]
        self.capacity.forget(set(keep))

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
                types |= {n.gpu_type for n in cluster.report.inventory if policy.allows(cid, n.gpu_type)}
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

    def _observe(self, key: str, spec: SignalSpec, lat: LatencyReading, load: LoadReading,
                 priors: dict[str, tuple[float | None, str | None]], ready_by_type: dict[str, int],
                 parts: tuple[ClusterPart, ...], mem: WorkloadMemory, now: float) -> None:
        """Record this window as evidence, if it belongs to the fleet that is ready now."""
        last = mem.observed_at.get(spec.name)
        mem.observed_at[spec.name] = now
        window = max((p.samples.window_s or 0.0 for p in parts), default=0.0)
        if lat.value is None or lat.partial or load.partial or not load.token_rate or not ready_by_type:
            return
        if mem.ready_since is None or now - mem.ready_since < window + lat.value:
            # The window's requests arrived up to `latency` before it: if the ready fleet changed
            # since, their latency (a backlog from before, a cold start) is not this fleet's.
            return
        fleet_prior = 0.0
        for t, n in ready_by_type.items():
            prior = priors.get(t, (None, None))[0]
            if not prior:
                return  # a GPU type with no prior: the share of capacity is unknown
            fleet_prior += n * prior
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

    # --- one workload ------------------------------------------------------------------------------

    def _recommend(self, snapshot: FleetSnapshot, view: WorkloadView, policy: Policy) -> Recommendation:
        now = snapshot.taken_at
        key = view.key
        mem = self._memory_for(key, policy)
        parts = cluster_parts(snapshot, view)
        current = sum(p.asked for p in parts)
        ready = sum(p.ready for p in parts)
        behavior = _behavior(policy.behavior)
        tol: Tolerances = behavior.tolerances()
        bounds = policy.bounds
        panic_spec = policy.panic
        stable_s = float(panic_spec.stable_window_seconds)
        panic_s = stable_s * panic_spec.panic_window_percent / 100.0

        load = read_load(parts)
        mem.learn_mix(now, load)
        demand_now = mem.arrival_demand(load, drain_s=stable_s)
        mem.record_demand(now, demand_now, keep_s=stable_s)
        stable_demand = mem.mean_demand(now, stable_s)
        panic_demand = mem.mean_demand(now, panic_s)
        # Up on the short window, down on the long one (the behaviour's scale-down window then
        # holds the peak): a burst is sized for at once, a lull must last before it shrinks.
        known = [d for d in (stable_demand, panic_demand) if d is not None]
        demand = max(known) if known else None
        forecast_req = forecast_tok = None
        prediction = policy.prediction
        if prediction.enabled:
            req_f, tok_f = mem.forecasters(prediction.season_seconds)
            req_f.add(now, load.request_rate)
            tok_f.add(now, demand_now)
            forecast_req, forecast_tok = req_f.peak(prediction.horizon_seconds), tok_f.peak(prediction.horizon_seconds)

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
        mix = ready_by_type or asked_by_type or dict.fromkeys(types, 1)

        metric_proposals: list[MetricProposal] = []
        audit_proposals: list[Proposal] = []
        signals: list[SignalInput] = []
        panic_candidates: list[int] = []
        forecast_candidates: list[tuple[str, int]] = []
        capacity_record: dict[str, dict[str, object]] = {}
        learned: dict[str, dict[str, object]] = {}
        effective: dict[str, float] = {}  # GPU type -> tightest capacity after headroom
        for spec in policy.signals:
            if spec.metric.is_latency:
                lat = read_latency(parts, spec)
                priors = self._priors(spec, types, mem, view.gpus_per_replica)
                self._observe(key, spec, lat, load, priors, ready_by_type, parts, mem, now)
                factor, ev = self.capacity.factor(key, spec.name, now=now)
                caps = {t: None if prior is None else factor * prior for t, (prior, _) in priors.items()}
                learned[spec.name] = {"factor": factor, "seen_ok": ev.ok, "seen_miss": ev.bad,
                                      "evidence_requests": ev.weight}
                for t, (prior, source) in priors.items():
                    capacity_record.setdefault(t, {})[spec.name] = {"capacity": caps[t], "prior": prior,
                                                                    "prior_source": source}
                    cap = caps[t]
                    if cap is not None:
                        effective[t] = min(effective.get(t, math.inf), cap / (1.0 + spec.headroom_percent / 100.0))
                ctx = LatencyContext(current, ready, demand, load.partial, caps, mix)
                mp, prop, sig, per_replica = latency_proposal(lat, ctx, tol)
                if per_replica:
                    head = 1.0 + spec.headroom_percent / 100.0
                    if panic_demand is not None:
                        panic_candidates.append(math.ceil(panic_demand * head / per_replica - 1e-9))
                    if forecast_tok is not None:
                        forecast_candidates.append((spec.name, math.ceil(forecast_tok * head / per_replica - 1e-9)))
            else:
                reading = read_signal(parts, spec)
                mp, prop, sig = hpa_proposal(reading, current, tol)
                if spec.metric in AVERAGE_VALUE and mp.computed:
                    # Knative's dppc: the load itself over the per-replica target, not the HPA's
                    # proposal (which holds the current count within tolerance, starting replicas
                    # included, and would read as a burst against the ready ones).
                    total = sum(p.value for p in reading.pods if p.value is not None)
                    panic_candidates.append(math.ceil(total / spec.target - 1e-9))
                    f = per_replica_forecast(spec, forecast_req, forecast_tok)
                    if f is not None:
                        forecast_candidates.append((spec.name, f))
            metric_proposals.append(mp)
            audit_proposals.append(prop)
            signals.append(sig)
        merged = replicas_for_metrics(current, metric_proposals)
        self._follow_mix(mem, effective, mix)
        partial = [s.signal for s in signals if s.partial]

        panic_proposal = max(panic_candidates) if panic_candidates else None
        if panic_proposal is not None and panic_spec.enabled:
            audit_proposals.append(Proposal("load", "panic", panic_proposal,
                                            {"window_s": panic_s, "demand_tokens_per_s": panic_demand}))
        for name, n in forecast_candidates:
            audit_proposals.append(Proposal(name, "forecast", n, {"horizon_s": prediction.horizon_seconds,
                                                                  "request_rate": forecast_req,
                                                                  "tokens_per_s": forecast_tok}))

        step = Step(current)
        merged_value: int | None = None
        panic_state: dict[str, object] = {}
        zero = policy.scale_to_zero
        mem.idle_since = (mem.idle_since if mem.idle_since is not None else now) if load.idle else None
        mem.prune(now, max(behavior.scale_up.stabilization_window_seconds,
                           behavior.scale_down.stabilization_window_seconds))
        all_failed = merged.replicas is None and merged.invalid == len(metric_proposals)
        lead = ""
        if current == 0 and zero.enabled:
            lead = from_zero(step, policy, load, merged.replicas, mem, audit_proposals)
        elif current > bounds.max_replicas or current < bounds.min_replicas:
            # The HPA's pre-check: a count outside the bounds goes straight back inside them. At 0
            # with min > 0 the HPA stops scaling instead; Fleetscale owns the count, so it wakes the
            # workload like an activation: to the minimum, or more when the queue says so.
            mem.failures = 0
            above = current > bounds.max_replicas
            merged_value = merged.replicas
            target = bounds.max_replicas if above else bounds.min_replicas
            if current == 0:
                target = min(max(target, activation_replicas(queue_targets(policy), load.waiting)),
                             bounds.max_replicas)
            text = f"bounded to [{bounds.min_replicas}, {bounds.max_replicas}]"
            if not above and target > bounds.min_replicas:
                text += f"; {target} for the queue waiting at zero"
            step.to(target, "bounds", "AboveMaxReplicas" if above else "BelowMinReplicas",
                    "current count outside the policy's bounds", text)
            lead = "current replicas outside the bounds"
        elif all_failed:
            lead = all_missing(step, policy, mem, merged.error or "", audit_proposals)
        else:
            mem.failures = 0
            if merged.replicas is None:
                lead = f"a signal failed and the others point down; no scale-down ({merged.error})"
            elif partial and merged.replicas < current:
                merged_value = merged.replicas
                lead = f"{', '.join(partial)} missing on some clusters; no scale-down"
            else:
                merged_value = merged.replicas
                lead = lead_text(merged.metric, signals, audit_proposals)
                step.value = merged.replicas  # the clamps below are counted from the proposal
                forecast = max((n for _, n in forecast_candidates), default=None)
                if forecast is not None and forecast > step.value:
                    step.to(forecast, "forecast", "Forecast", "the forecast load needs more replicas ahead of time",
                            f"forecast over {prediction.horizon_seconds}s needs {forecast}")
                # The windows read the history as replicas of today's mix; it is kept as the load each
                # count stood for, so a change of mix re-expresses it once, exactly (memory.py).
                per_replica = (mix_capacity(effective, mix) or None) if effective else None
                result = apply_behavior(current, step.value, min_replicas=bounds.min_replicas,
                                        max_replicas=bounds.max_replicas, behavior=behavior,
                                        recommendations=mem.counts(per_replica), scale_up_events=mem.scale_up_events,
                                        scale_down_events=mem.scale_down_events, now=now)
                mem.remember(now, step.value, per_replica)
                behaviour_clamps(step, result, bounds.min_replicas, bounds.max_replicas)
                decision = mem.panic.update(panic_spec, now=now, proposal=panic_proposal, ready=ready)
                panic_state = {"panicking": decision.panicking, "entered": decision.entered, "left": decision.left,
                               "ratio": decision.ratio, "floor": decision.floor, "window_s": panic_s}
                if decision.panicking:
                    target = min(max(decision.floor, current), bounds.max_replicas)
                    if step.value < target:
                        step.to(target, "panic", "Panic", "panic mode: the burst's proposal at once, no scale-down",
                                f"panic ({decision.ratio or 0:.2g}x ready capacity)")
                if step.value < current and ready < current:
                    step.reasons.clear()  # the hold decides; the clamps before it did not matter
                    step.to(current, "starting", "ReplicasStarting", "replicas are starting; no scale-down",
                            f"{current - ready} replicas still starting; no scale-down")
                if zero.enabled:
                    idle_s = None if mem.idle_since is None else now - mem.idle_since
                    if idle_s is not None and idle_s >= zero.idle_seconds:
                        step.to(0, "zero", "Idle", f"no request and no queue for {zero.idle_seconds}s")
                        step.reasons.append(f"idle for {idle_s:.0f}s; scale to zero")
                    elif step.value == 0:
                        step.to(1, "zero", "NotIdleLongEnough", "zero only after the idle period",
                                f"at least 1 until idle for {zero.idle_seconds}s")
        if policy.mode == "enforce":
            mem.record_scale(now, current, step.value)

        inputs: dict[str, float | int | None] = {"current_replicas": current, "ready_replicas": ready,
                                                 "stale_clusters": len(view.stale_clusters)}
        for s in signals:
            inputs[s.signal] = s.value
            inputs[f"{s.signal}_target"] = s.target
        inputs["partial"] = bool(partial)
        inputs["demand_tokens_per_s"] = demand
        proposals = {p.source: p.replicas for p in audit_proposals if p.method in ("hpa", "capacity-model")}
        reason = "; ".join([lead, *step.reasons]) if lead else "; ".join(step.reasons)
        demand_out = self._demand_out(step.value, demand, effective, mix)
        audit = Audit(
            workload=key, policy_id=policy.id, policy_revision=policy.revision, current_replicas=current,
            ready_replicas=ready, inputs=tuple(signals),
            load={"request_rate": load.request_rate, "tokens_per_s": load.token_rate, "waiting": load.waiting,
                  "demand_tokens_per_s": demand, "panic_demand_tokens_per_s": panic_demand,
                  "demand_out_tokens_per_s": demand_out, "partial": dict(load.missing),
                  "idle_for_s": None if mem.idle_since is None else now - mem.idle_since},
            capacity=capacity_record, proposals=tuple(audit_proposals), merged=merged_value,
            clamps=tuple(step.clamps), desired_replicas=step.value, reason=reason, panic=panic_state,
            correction=learned,
        )
        return Recommendation(key, policy, current, ready, merged_value, step.value, reason, inputs, proposals,
                              dict(sorted(effective.items())), demand_out, audit)

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
    def _demand_out(desired: int, demand: float | None, effective: dict[str, float], mix: dict[str, int]
                    ) -> float | None:
        if not effective:
            return None  # no capacity estimate for any GPU type: nothing to compare them by
        per_replica = mix_capacity(effective, mix)
        if demand is None:
            return desired * per_replica if per_replica else None
        if not per_replica or desired == math.ceil(demand / per_replica - 1e-9):
            # The load itself: the capacity model decided, or today's GPU types cannot serve it at
            # the target at all (placement must move it to types that can).
            return demand
        return desired * per_replica
