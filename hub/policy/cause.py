"""The cause of a recommendation: which rule decided the count, as a closed set.

The reason text says the same for people; this is what code reads (the decision metric's label,
the page, the planner's choice between the engine's load and its count). A recommendation's cause
is the last stage that changed the count, or, when none did, what the merge said: a signal's
proposal (``signal``, with the signal's name in ``deciding_signal``) or a hold for missing data.
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    SIGNAL = "signal"
    """A signal's proposal decided (``deciding_signal`` names it)."""
    BOUNDS = "bounds"
    """``min_replicas``/``max_replicas`` clamped the count (or moved a hold)."""
    STABILISED = "stabilised"
    """The HPA's stabilisation window held a higher (or lower) recommendation."""
    RATE_LIMITED = "rate-limited"
    """The behaviour's scale-up or scale-down policies limited the step."""
    PANIC = "panic"
    """Knative's panic mode: the burst's proposal at once, or no scale-down while panicking."""
    FORECAST = "forecast"
    """The forecast load asked for more, ahead of time."""
    STARTING = "starting"
    """Replicas asked for are not ready yet: no scale-down."""
    FALLBACK = "fallback"
    """KEDA's fallback: every signal missing for ``failure_threshold`` evaluations."""
    ZERO = "zero"
    """Scale to zero: idle long enough, or kept at one until then, or left at zero below activation."""
    ACTIVATION = "activation"
    """Woken from zero by load above the activation threshold."""
    MISSING_DATA = "missing-data"
    """A signal missing (wholly or on some clusters) held the count."""
    COST_CEILING = "cost-ceiling"
    """The policy's cost ceiling ($/h) capped the count."""
    ADVICE = "advice"
    """The LLM advisor's count, inside the guard rails (``advisor.mode: bounded``; ``hub.policy.advice``)."""
    BUDGET = "budget"
    """Placement: a budget the workload is under reached its cap, so demand was left unplaced (docs/budgets.md)."""
    PRIORITY = "priority"
    """Placement: replicas reclaimed for a higher-priority workload, down to ``min_replicas`` at most."""
    RESOURCES = "resources"
    """Not a count: containers' requests and limits resized to the vertical recommendation
    (``resources.apply``; ``hub.control.resizing``), replicas unchanged."""


STAGE_CAUSES: dict[str, Cause] = {
    "forecast": Cause.FORECAST,
    "advice": Cause.ADVICE,
    "stabilised": Cause.STABILISED,
    "rate-limited": Cause.RATE_LIMITED,
    "bounds": Cause.BOUNDS,
    "panic": Cause.PANIC,
    "starting": Cause.STARTING,
    "fallback": Cause.FALLBACK,
    "zero": Cause.ZERO,
    "activation": Cause.ACTIVATION,
    "cost-ceiling": Cause.COST_CEILING,
}
"""The audit's clamp stage -> the cause it gives when it changes the count."""
