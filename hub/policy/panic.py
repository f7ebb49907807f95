"""Knative's panic mode: react to a burst at once, and do not scale down until it has passed.

The KPA (knative/serving ``pkg/autoscaler/scaling/autoscaler.go``, anchors.md §2.3) averages its
load over a stable window (60 s) and, in parallel, over a panic window (10 % of it, 6 s). When the
panic window's load needs at least ``panic_threshold`` (200 %) of the ready replicas, it panics:

* the desired count jumps to the panic window's proposal, without waiting for the stable average
  (here: without the behaviour's scale-up stabilisation and rate limits either, which would
  otherwise hold the burst back);
* it never decreases while panicking: the desired count is the largest panic proposal seen;
  here the largest *load* seen (the proposal times the tokens/s a replica of that evaluation's
  mix took), read back in replicas of today's estimate, so a count made while the start-up L4
  was rated on the whole mix is not re-valued as that many H100s once the rating moves;
* each evaluation that still meets the condition extends the panic; it ends once a whole stable
  window has passed without it.

The engine computes the panic proposal from its load signals on the panic window; this module
only keeps the state machine, per workload.
"""

from __future__ import annotations

import math
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
    load: float | None = None
    """While panicking: the held proposal as tokens/s (None: a bare count), what placement buys."""


@dataclass(slots=True)
class PanicState:
    since: float | None = None
    """When the panic began; None when calm."""
    last_over: float | None = None
    """The last evaluation that met the condition."""
    held: tuple[int, float | None] | None = None
    """The largest proposal while panicking and the tokens/s per replica it was counted at (None:
    no capacity estimate, a bare count)."""

    def update(self, spec: PanicSpec, *, now: float, proposal: int | None, ready: int,
               per_replica: float | None = None) -> PanicDecision:
        """``per_replica``: tokens/s one replica of today's mix takes, the unit of ``proposal``."""
        if not spec.enabled:
            self.since, self.last_over, self.held = None, None, None
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
            self.since, self.last_over, self.held = None, None, None
            left = True
        if self.since is None:
            return PanicDecision(False, entered, left, 0, ratio)
        if proposal is not None and self._floor(per_replica) <= proposal:
            self.held = (proposal, per_replica)
        return PanicDecision(True, entered, left, self._floor(per_replica), ratio, self._load())

    def _load(self) -> float | None:
        if self.held is None or self.held[1] is None:
            return None
        return self.held[0] * self.held[1]

    def _floor(self, per_replica: float | None) -> int:
        """The held load in replicas that take ``per_replica`` tokens/s (a bare count where either
        side has no estimate)."""
        if self.held is None:
            return 0
        count, then = self.held
        if then is None or per_replica is None:
            return count
        return math.ceil(count * then / per_replica - 1e-9)
