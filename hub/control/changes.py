"""Changes: whether a workload's new report says something its last one did not.

Event-driven evaluation re-plans a workload only when its inputs moved. Replica counts, GPU types
and labels must match exactly; a measured sample may drift by ``tolerance`` (relative) before it
counts. The default, 2 %, is a fifth of the HPA's 10 % tolerance band, so a drift too small to count
cannot on its own move a proposal across that band; a slower drift is caught by the periodic sweep
that re-evaluates every workload anyway (``hub.control.tick``). A sample that appears or disappears
(measured, then missing) always counts.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.messages import WorkloadReport

DEFAULT_TOLERANCE = 0.02


def moved(before: WorkloadReport | None, after: WorkloadReport, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    if before is None:
        return True
    if before is after or before == after:
        return False  # the common case at 1 Hz: one comparison, no per-field work
    if (before.desired_replicas, before.ready_replicas, before.gpus_per_replica, before.variants, before.labels) != (
        after.desired_replicas, after.ready_replicas, after.gpus_per_replica, after.variants, after.labels
    ):
        return True
    return _differs(before.samples, after.samples, tolerance)


def _differs(a: object, b: object, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a != b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) > tolerance * max(abs(a), abs(b))
    if isinstance(a, BaseModel) and isinstance(b, BaseModel):
        if type(a) is not type(b):
            return True
        return any(_differs(getattr(a, f), getattr(b, f), tolerance) for f in type(a).model_fields)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) != len(b) or any(_differs(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return a != b

