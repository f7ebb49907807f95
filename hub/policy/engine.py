"""Policy evaluation: snapshot + policies -> one Recommendation per workload. Pure; no I/O.

Each signal of the policy proposes ``ceil(ready × value / target)`` (the HPA's formula) and the
largest proposal wins, with three safety rules that every later engine keeps:

* missing or stale data never scales down: with no value the workload holds, and a value that some
  serving cluster did not measure may scale up but not down (the HPA's rule for missing pods);
* no scale-down while replicas are still starting (they were asked for a reason);
* scale-down goes to the highest recommendation of the stabilisation window, as the HPA does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from hub.policy.binding import bind
from hub.policy.hpa import DEFAULT_TOLERANCE
from hub.policy.model import Metric, Policy, SignalSpec
from hub.state import FleetSnapshot, WorkloadView
from shared.messages import GpuSample


@dataclass(frozen=True, slots=True)
class Recommendation:
    workload_key: str
    policy: Policy
    current_replicas: int
    ready_replicas: int
    proposal: int | None
    desired_replicas: int
    reason: str
    inputs: dict[str, float | int | None] = field(default_factory=dict)
    proposals: dict[str, int | None] = field(default_factory=dict)
    """Per signal name; None where the signal was missing."""

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas


@dataclass(frozen=True, slots=True)
class SignalReading:
    value: float | None
    partial: bool
    """Some cluster with ready replicas did not measure it: the value may be an underestimate."""


def _percent(ratio: float | None) -> float | None:
    return None if ratio is None else 100 * ratio


def _gpu_percent(gpu: GpuSample, metric: Metric) -> float | None:
    if metric is Metric.GPU_UTILIZATION:
        return None if gpu.utilization_ratio is None else 100 * gpu.utilization_ratio
    if gpu.memory_used_bytes is None or not gpu.memory_total_bytes:
        return None
    return 100 * gpu.memory_used_bytes / gpu.memory_total_bytes


def signal_value(view: WorkloadView, signal: SignalSpec) -> SignalReading:
    """The workload's value of ``signal`` across fresh clusters, in the signal's unit.

    A cluster with no ready replica has nothing to measure, so its missing value does not count.
    A cluster *with* ready replicas that did not measure makes the reading ``partial``: the HPA's
    rule then applies, and a partial reading may scale up but never down.
    """
    measured = [r for r in view.reports.values() if r.ready_replicas > 0 or r.samples.requests_waiting]
    metric = signal.metric
    if metric is Metric.QUEUE_PER_REPLICA:
        known = [r.samples.requests_waiting for r in measured if r.samples.requests_waiting is not None]
        partial = len(known) < len(measured)
        if not known:
            return SignalReading(None, partial)
        return SignalReading(sum(known) / max(view.ready_replicas, 1), partial)
    if metric.is_latency:
        # Weighted by request rate where known: the fleet's percentile is dominated by busy clusters.
        field_ = {Metric.TTFT: "ttft", Metric.ITL: "itl", Metric.E2E_LATENCY: "e2e"}[metric]
        pairs = [(getattr(r.samples, field_).at(signal.percentile or "p95"), r.samples.request_rate_per_s or 0.0)
                 for r in measured]
        known_pairs = [(v, w) for v, w in pairs if v is not None]
        partial = len(known_pairs) < len(pairs)
        if not known_pairs:
            return SignalReading(None, partial)
        total_w = sum(w for _, w in known_pairs)
        if total_w <= 0:
            return SignalReading(max(v for v, _ in known_pairs), partial)
        return SignalReading(sum(v * w for v, w in known_pairs) / total_w, partial)
    if metric in (Metric.GPU_UTILIZATION, Metric.GPU_MEMORY):
        values = [v for r in measured for g in r.samples.gpus if (v := _gpu_percent(g, metric)) is not None]
        partial = any(not r.samples.gpus for r in measured)
        return SignalReading(sum(values) / len(values) if values else None, partial)
    per_cluster = {
        Metric.CPU: lambda r: _percent(r.samples.cpu_utilization_ratio),
        Metric.MEMORY: lambda r: _percent(r.samples.memory_utilization_ratio),
        Metric.KV_CACHE: lambda r: _percent(r.samples.kv_cache_usage_ratio),
    }
    if metric in per_cluster:
        pairs2 = [(per_cluster[metric](r), r.ready_replicas) for r in measured]
        known2 = [(v, w) for v, w in pairs2 if v is not None]
        partial = len(known2) < len(pairs2)
        weight = sum(w for _, w in known2)
        if not known2 or weight <= 0:
            return SignalReading(None, partial)
        return SignalReading(sum(v * w for v, w in known2) / weight, partial)
    rates = {
        Metric.REQUEST_RATE_PER_REPLICA: lambda r: r.samples.request_rate_per_s,
        Metric.TOKEN_RATE_PER_REPLICA: lambda r: None if r.samples.prompt_tokens_per_s is None
        or r.samples.generation_tokens_per_s is None
        else r.samples.prompt_tokens_per_s + r.samples.generation_tokens_per_s,
    }
    known3 = [rates[metric](r) for r in measured]
    values3 = [v for v in known3 if v is not None]
    partial = len(values3) < len(known3)
    if not values3:
        return SignalReading(None, partial)
    return SignalReading(sum(values3) / max(view.ready_replicas, 1), partial)


@dataclass
class Engine:
    """Holds the per-workload recommendation history the stabilisation window needs."""

    _history: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def evaluate(self, snapshot: FleetSnapshot, policies: list[Policy]) -> list[Recommendation]:
        bindings = [b for b in bind(policies, snapshot.workloads) if b.view.reports]
        # History of workloads that no policy covers any more would otherwise grow without bound.
        for gone in self._history.keys() - {b.view.key for b in bindings}:
            del self._history[gone]
        return [self._recommend(b.view, b.policy, snapshot.taken_at) for b in bindings]

    def _propose(self, view: WorkloadView, signal: SignalSpec, current: int) -> tuple[int | None, SignalReading]:
        reading = signal_value(view, signal)
        if reading.value is None:
            return None, reading
        ratio = reading.value / signal.target
        if signal.metric is Metric.QUEUE_PER_REPLICA:
            # ceil(ready × (waiting/ready) / target) == ceil(waiting / target), and stays
            # meaningful with no ready replica yet.
            proposal = math.ceil(reading.value * max(view.ready_replicas, 1) / signal.target)
        elif view.ready_replicas == 0:
            return None, reading
        else:
            proposal = math.ceil(view.ready_replicas * ratio)
        if abs(ratio - 1.0) <= DEFAULT_TOLERANCE:
            proposal = current
        return proposal, reading

    def _recommend(self, view: WorkloadView, policy: Policy, now: float) -> Recommendation:
        current = view.desired_replicas
        ready = view.ready_replicas
        bounds = policy.bounds
        inputs: dict[str, float | int | None] = {
            "current_replicas": current,
            "ready_replicas": ready,
            "stale_clusters": len(view.stale_clusters),
        }
        proposals: dict[str, int | None] = {}
        partial = False
        for signal in policy.signals:
            proposal, reading = self._propose(view, signal, current)
            inputs[signal.name] = reading.value
            inputs[f"{signal.name}_target"] = signal.target
            proposals[signal.name] = proposal
            partial = partial or reading.partial or proposal is None
        inputs["partial"] = partial
        known = {k: v for k, v in proposals.items() if v is not None}

        def hold(reason: str, proposal: int | None = None) -> Recommendation:
            desired = min(max(current, bounds.min_replicas), bounds.max_replicas)
            return Recommendation(view.key, policy, current, ready, proposal, desired, reason, inputs, proposals)

        if not known:
            return hold("every signal is missing; holding")
        name, proposal = max(known.items(), key=lambda kv: kv[1])
        what = f"{name}={inputs[name]:.3g} vs target {inputs[name + '_target']:g}"
        window = policy.behavior.behavior().scale_down.stabilization_window_seconds
        history = self._history.setdefault(view.key, deque())
        history.append((now, proposal))
        while history and history[0][0] < now - window:
            history.popleft()
        stabilised = max(r for _, r in history)

        if proposal < current and partial:
            return hold(f"{what}; a signal is missing on some clusters; no scale-down", proposal)
        if proposal >= current:
            desired, reason = proposal, what
        elif ready < current:
            return hold(f"{current - ready} replicas still starting; no scale-down", proposal)
        else:
            desired = min(current, stabilised)
            reason = f"{what}; stabilised over {window}s"
        bounded = min(max(desired, bounds.min_replicas), bounds.max_replicas)
        if bounded != desired:
            reason += f"; bounded to [{bounds.min_replicas}, {bounds.max_replicas}]"
        return Recommendation(view.key, policy, current, ready, proposal, bounded, reason, inputs, proposals)
