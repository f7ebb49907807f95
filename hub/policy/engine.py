"""Policy evaluation: snapshot + policies -> one Recommendation per workload. Pure; no I/O.

The foundation engine is target tracking on one signal, ``desired = ceil(ready × value / target)``
(the HPA's formula), with three safety rules that every later engine keeps:

* missing or stale data never scales down: with no value the workload holds, and a value that some
  serving cluster did not measure may scale up but not down (the HPA's rule for missing pods);
* no scale-down while replicas are still starting (they were asked for a reason);
* scale-down goes to the highest recommendation of the stabilisation window, as the HPA does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from hub.policy.model import Policy, Signal
from hub.state import FleetSnapshot, WorkloadView


@dataclass(frozen=True, slots=True)
class Recommendation:
    workload_key: str
    policy: Policy
    current_replicas: int
    ready_replicas: int
    signal_value: float | None
    proposal: int | None
    desired_replicas: int
    reason: str
    inputs: dict[str, float | int | None] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas


@dataclass(frozen=True, slots=True)
class SignalReading:
    value: float | None
    partial: bool
    """Some cluster with ready replicas did not measure it: the value may be an underestimate."""


def signal_value(view: WorkloadView, signal: Signal) -> SignalReading:
    """The workload's value of ``signal`` across fresh clusters.

    A cluster with no ready replica has nothing to measure, so its missing value does not count.
    A cluster *with* ready replicas that did not measure makes the reading ``partial``: the HPA's
    rule then applies, and a partial reading may scale up but never down.
    """
    measured = [r for r in view.reports.values() if r.ready_replicas > 0 or r.samples.requests_waiting]
    if signal is Signal.QUEUE_PER_REPLICA:
        known = [r.samples.requests_waiting for r in measured if r.samples.requests_waiting is not None]
        partial = len(known) < len(measured)
        if not known:
            return SignalReading(None, partial)
        return SignalReading(sum(known) / max(view.ready_replicas, 1), partial)
    if signal is Signal.TTFT_P95:
        # Weighted by request rate where known: the fleet's p95 is dominated by busy clusters.
        pairs = [(r.samples.ttft.p95_s, r.samples.request_rate_per_s or 0.0) for r in measured]
        known_pairs = [(v, w) for v, w in pairs if v is not None]
        partial = len(known_pairs) < len(pairs)
        if not known_pairs:
            return SignalReading(None, partial)
        total_w = sum(w for _, w in known_pairs)
        if total_w <= 0:
            return SignalReading(max(v for v, _ in known_pairs), partial)
        return SignalReading(sum(v * w for v, w in known_pairs) / total_w, partial)
    if signal is Signal.GPU_UTILIZATION:
        values = [g.utilization_ratio for r in measured for g in r.samples.gpus if g.utilization_ratio is not None]
        partial = any(not r.samples.gpus for r in measured)
        return SignalReading(sum(values) / len(values) if values else None, partial)
    raise ValueError(f"unknown signal {signal}")  # pragma: no cover


@dataclass
class Engine:
    """Holds the per-workload recommendation history the stabilisation window needs."""

    _history: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def evaluate(self, snapshot: FleetSnapshot, policies: list[Policy]) -> list[Recommendation]:
        # History of workloads that no policy covers any more would otherwise grow without bound.
        for gone in self._history.keys() - {p.workload.key for p in policies}:
            del self._history[gone]
        out = []
        for policy in policies:
            view = snapshot.workloads.get(policy.workload.key)
            if view is None or not view.reports:
                continue  # not reported by any fresh cluster: nothing to decide on
            out.append(self._recommend(view, policy, snapshot.taken_at))
        return out

    def _recommend(self, view: WorkloadView, policy: Policy, now: float) -> Recommendation:
        current = view.desired_replicas
        ready = view.ready_replicas
        reading = signal_value(view, policy.target.signal)
        value = reading.value
        inputs: dict[str, float | int | None] = {
            "current_replicas": current,
            "ready_replicas": ready,
            policy.target.signal.value: value,
            "target": policy.target.value,
            "stale_clusters": len(view.stale_clusters),
            "partial": reading.partial,
        }

        def hold(reason: str, proposal: int | None = None) -> Recommendation:
            desired = min(max(current, policy.min_replicas), policy.max_replicas)
            return Recommendation(view.key, policy, current, ready, value, proposal, desired, reason, inputs)

        if value is None:
            return hold(f"{policy.target.signal.value} is missing; holding")
        ratio = value / policy.target.value
        if policy.target.signal is Signal.QUEUE_PER_REPLICA:
            # ceil(ready × (waiting/ready) / target) == ceil(waiting / target), and stays
            # meaningful with no ready replica yet.
            proposal = math.ceil(value * max(ready, 1) / policy.target.value)
        elif ready == 0:
            return hold("no ready replica to measure against; holding")
        else:
            proposal = math.ceil(ready * ratio)
        if abs(ratio - 1.0) <= policy.tolerance:
            proposal = current

        history = self._history.setdefault(view.key, deque())
        history.append((now, proposal))
        while history and history[0][0] < now - policy.scale_down_stabilization_s:
            history.popleft()
        stabilised = max(r for _, r in history)

        if proposal < current and reading.partial:
            return hold(f"{policy.target.signal.value} is missing on some clusters; no scale-down", proposal)
        if proposal >= current:
            desired, reason = proposal, f"{policy.target.signal.value}={value:.3g} vs target {policy.target.value:g}"
        elif ready < current:
            return hold(f"{current - ready} replicas still starting; no scale-down", proposal)
        else:
            desired = min(current, stabilised)
            reason = (
                f"{policy.target.signal.value}={value:.3g} vs target {policy.target.value:g}; "
                f"stabilised over {policy.scale_down_stabilization_s:g}s"
            )
        bounded = min(max(desired, policy.min_replicas), policy.max_replicas)
        if bounded != desired:
            reason += f"; bounded to [{policy.min_replicas}, {policy.max_replicas}]"
        return Recommendation(view.key, policy, current, ready, value, proposal, bounded, reason, inputs)
