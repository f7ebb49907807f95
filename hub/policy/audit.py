"""The audit record: why the engine recommended what it did, from inputs to the final count.

Every ``Recommendation`` carries one. It reads top to bottom as the engine worked:

1. ``inputs``: each signal's value against its target, and which clusters did not measure it and
   why (a partial reading may scale up but not down);
2. ``proposals``: what each signal proposed and by which method (``hpa``, ``capacity-model``,
   ``forecast``, ``panic``, ``activation``, ``fallback``), with the numbers behind it;
3. ``clamps``: each step that changed the count after the merge (advice, stabilised, rate-limited,
   bounded, held for partial data or starting replicas, panic floor, scale to zero), with the
   HPA's condition reason where the step is the HPA's;
4. ``desired``: the result;
5. ``starts``: a new replica's measured start time per cluster and GPU type, where the spokes
   measured one (``hub.policy.starts``; the forecast looks at least that far ahead);
6. ``advice``: where the policy has an advisor, what the LLM said, the rails it was cut to, what was
   applied and why, and the exchange (summary sent, answer) (``hub.policy.advice``).

It is a frozen dataclass whose ``to_json`` gives plain JSON types, so the decision log, the API
and a backtest report can store it as it is (Dynamo's planner audit events are the model,
anchors.md §2.8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

METHODS = ("hpa", "capacity-model", "forecast", "panic", "activation", "fallback")


def _clean(value: Any) -> Any:
    # NB: the exact types first: the ABC check (``Mapping``) cost more than the rest of the audit,
    # and an audit is made for every decision.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return round(value, 6)
    if kind is dict:
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class SignalInput:
    signal: str
    """The signal's name, e.g. ``ttft_p95``."""
    value: float | None
    target: float
    unit: str
    partial: bool = False
    missing: Mapping[str, str] = field(default_factory=dict)
    """Cluster id -> why it did not measure the signal."""
    note: str = ""

    def to_json(self) -> Json:
        return _clean({"signal": self.signal, "value": self.value, "target": self.target, "unit": self.unit,
                       "partial": self.partial, "missing": dict(self.missing), "note": self.note})


@dataclass(frozen=True, slots=True)
class Proposal:
    source: str
    """The signal (or ``load`` for activation and fallback) the proposal comes from."""
    method: str
    replicas: int | None
    """None: the signal could not propose (see ``detail``)."""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}")

    def to_json(self) -> Json:
        return _clean({"source": self.source, "method": self.method, "replicas": self.replicas,
                       "detail": dict(self.detail)})


@dataclass(frozen=True, slots=True)
class Clamp:
    stage: str
    """merge, hold, forecast, advice, stabilised, rate-limited, bounds, panic, starting, fallback, zero."""
    before: int
    after: int
    reason: str
    """The HPA's condition reason where the stage is the HPA's, else ours."""
    message: str = ""

    def to_json(self) -> Json:
        return {"stage": self.stage, "before": self.before, "after": self.after, "reason": self.reason,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class Audit:
    workload: str
    policy_id: str
    policy_revision: int
    current_replicas: int
    ready_replicas: int
    inputs: tuple[SignalInput, ...]
    load: Mapping[str, Any]
    """Fleet load: request and token rates, waiting, the demand the capacity model sized for."""
    capacity: Mapping[str, Mapping[str, Any]]
    """GPU type -> latency signal -> capacity per replica (tokens/s), its prior and the prior's source."""
    proposals: tuple[Proposal, ...]
    merged: int | None
    """The merged proposal (max of the signals, as the HPA merges metrics); None: hold."""
    clamps: tuple[Clamp, ...]
    desired_replicas: int
    reason: str
    panic: Mapping[str, Any] = field(default_factory=dict)
    correction: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Latency signal -> the learned correction factor on the priors and the evidence behind it."""
    cause: str = "signal"
    """Which rule decided the count (``hub.policy.cause.Cause``)."""
    deciding_signal: str | None = None
    """The signal whose proposal the count came from; None for a hold."""
    advice: Mapping[str, Any] | None = None
    """The advice stage's verdict (``hub.policy.advice.AdviceVerdict.to_json``); None: no advice consulted."""
    starts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """"cluster/GPU type" -> a new replica's measured start there (``hub.policy.starts``); empty: none measured."""

    def to_json(self) -> Json:
        return {
            "workload": self.workload,
            "policy_id": self.policy_id,
            "policy_revision": self.policy_revision,
            "current_replicas": self.current_replicas,
            "ready_replicas": self.ready_replicas,
            "inputs": [i.to_json() for i in self.inputs],
            "load": _clean(dict(self.load)),
            "capacity": _clean({k: dict(v) for k, v in self.capacity.items()}),
            "correction": _clean({k: dict(v) for k, v in self.correction.items()}),
            "proposals": [p.to_json() for p in self.proposals],
            "merged": self.merged,
            "clamps": [c.to_json() for c in self.clamps],
            "panic": _clean(dict(self.panic)),
            "desired_replicas": self.desired_replicas,
            "cause": str(self.cause),
            "deciding_signal": self.deciding_signal,
            "reason": self.reason,
            "advice": None if self.advice is None else dict(self.advice),
            "starts": _clean({k: dict(v) for k, v in self.starts.items()}),
        }
