"""Knative's panic mode: react to a burst at once, and do not scale down until it has passed.

The KPA (knative/serving ``pkg/autoscaler/scaling/autoscaler.go``, anchors.md §2.3) averages its
load over a stable window (60 s) and, in parallel, over a panic window (10 % of it, 6 s). When the
panic window's load needs at least ``panic_threshold`` (200 %) of the ready replicas, it panics:

* the desired count jumps to the panic window's proposal, without waiting for the stable average
  (here: without the behaviour's scale-up stabilisation and rate limits either, which would
  otherwise hold the burst back);
* it never decreases while panicking: the desired count is the largest panic proposal seen;
* each evaluation that still meets the condition extends the panic; it ends once a whole stable
  window has passed without it.

The engine computes the panic proposal from its load signals on the panic window; this module
only keeps the state machine, per workload.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.policy.model import PanicSpec


@dataclass(frozen=True, slots=True)
class PanicDecision:
    panicking: bool
    entered: bool
    """This evaluation started the panic."""
    left: bool
    """This evaluation ended it."""
    floor: int
    """While panicking: the replicas the workload must not go below (the largest panic proposal)."""
    ratio: float | None
    """Panic proposal / ready replicas (Knative's dppc / readyPodsCount)."""


@dataclass(slots=True)
class PanicState:
    since: float | None = None
    """When the panic began; None when calm."""
    last_over: float | None = None
    """The last evaluation that met the condition."""
    max_proposal: int = 0

    def update(self, spec: PanicSpec, *, now: float, proposal: int | None, ready: int) -> PanicDecision:
        if not spec.enabled:
            self.since, self.last_over, self.max_proposal = None, None, 0
            return PanicDecision(False, False, False, 0, None)
        ratio = None if proposal is None else proposal / max(ready, 1)
        over = ratio is not None and ratio >= spec.panic_threshold_percent / 100.0
        entered = left = False
        if over:
            entered = self.since is None
            if entered:
                self.since = now
            self.last_over = now
        elif self.last_over is not None and now - self.last_over >= spec.stable_window_seconds:
            self.since, self.last_over, self.max_proposal = None, None, 0
            left = True
        if self.since is None:
            return PanicDecision(False, entered, left, 0, ratio)
        if proposal is not None:
            self.max_proposal = max(self.max_proposal, proposal)
        return PanicDecision(True, entered, left, self.max_proposal, ratio)
