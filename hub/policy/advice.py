"""The advisor's guard rails: what of an LLM's replica count may be applied. Pure and tested.

``advisory`` never applies: the engine's count stands and the advice is only recorded. ``bounded``
applies the model's count only inside every rail at once:

- the policy's bounds (``min_replicas`` .. ``max_replicas``);
- at most ``max_delta`` replicas away from the engine's own recommendation;
- never below the engine's SLO-safe floor: the count its latency and queue signals ask for, so an
  advisor can trim headroom but never talk the fleet under its objective.

When the rails leave no room (the floor is above engine + delta, which cannot happen while the
engine honours its own floor, but is checked), the engine's count stands. The result then goes
through the same behaviour stage (rate limits, stabilisation) as any engine count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Bounded:
    desired: int
    applied: bool
    """Whether the advice changed the count."""
    reason: str


def bound_advice(
    engine: int,
    advised: int | None,
    *,
    mode: Literal["off", "advisory", "bounded"],
    min_replicas: int,
    max_replicas: int,
    floor: int,
    max_delta: int,
) -> Bounded:
    if mode != "bounded" or advised is None:
        why = "no advice" if advised is None else f"advisory only: the advisor said {advised}"
        return Bounded(engine, False, why)
    lo = max(min_replicas, floor, engine - max_delta)
    hi = min(max_replicas, engine + max_delta)
    if lo > hi:
        return Bounded(engine, False, f"advisor said {advised}; the rails leave no room (floor {floor})")
    desired = min(max(advised, lo), hi)
    if desired == engine:
        return Bounded(engine, False, f"advisor said {advised}; within the rails the engine's {engine} stands")
    clipped = "" if desired == advised else f", clipped to {desired} (rails {lo}..{hi})"
    return Bounded(desired, True, f"advisor said {advised}{clipped}")
