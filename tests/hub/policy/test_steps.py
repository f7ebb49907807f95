"""The engine's named stages, each by table: the count in, the count out, and the cause it sets."""

from __future__ import annotations

import pytest

from hub.policy import steps
from hub.policy.cause import Cause
from hub.policy.model import ScaleToZeroSpec
from hub.policy.panic import PanicDecision
from hub.policy.signals import LoadReading
from hub.policy.steps import Step
from tests.hub.policy.fleet import policy

QUEUE = [{"metric": "queue_per_replica", "target": 5}]


def start(value: int) -> Step:
    step = Step(value)
    step.signal = "queue_per_replica"
    return step


@pytest.mark.parametrize(("value", "proposal", "out", "cause"), [
    (4, None, 4, Cause.SIGNAL),
    (4, 3, 4, Cause.SIGNAL),  # a forecast never lowers the count
    (4, 4, 4, Cause.SIGNAL),
    (4, 7, 7, Cause.FORECAST),
])
def test_forecast(value: int, proposal: int | None, out: int, cause: Cause) -> None:
    step = start(value)
    steps.forecast(step, proposal, 180)
    assert (step.value, step.cause) == (out, cause)


@pytest.mark.parametrize(("value", "panicking", "floor", "current", "ceiling", "out", "cause"), [
    (6, False, 0, 2, 40, 6, Cause.SIGNAL),
    (6, True, 20, 2, 40, 20, Cause.PANIC),   # the burst's proposal at once
    (6, True, 20, 2, 10, 10, Cause.PANIC),   # never past max_replicas
    (3, True, 2, 8, 40, 8, Cause.PANIC),     # no scale-down while panicking
    (9, True, 5, 2, 40, 9, Cause.SIGNAL),    # a higher proposal stands
])
def test_panic(value: int, panicking: bool, floor: int, current: int, ceiling: int, out: int, cause: Cause) -> None:
    step = start(value)
    steps.panic(step, PanicDecision(panicking, False, False, floor, 2.0), current, ceiling)
    assert (step.value, step.cause) == (out, cause)


@pytest.mark.parametrize(("value", "current", "ready", "out", "cause", "reasons"), [
    (2, 4, 4, 2, Cause.SIGNAL, 1),     # all ready: the scale-down stands
    (2, 4, 2, 4, Cause.STARTING, 1),   # replicas starting: held, earlier reasons dropped
    (6, 4, 2, 6, Cause.SIGNAL, 1),     # a scale-up is never held
])
def test_starting(value: int, current: int, ready: int, out: int, cause: Cause, reasons: int) -> None:
    step = start(value)
    step.reasons.append("an earlier stage")
    steps.starting(step, current, ready)
    assert (step.value, step.cause, len(step.reasons)) == (out, cause, reasons)


@pytest.mark.parametrize(("value", "enabled", "idle_s", "out", "cause"), [
    (0, False, 600.0, 0, Cause.SIGNAL),  # disabled: the stage does nothing
    (3, True, None, 3, Cause.SIGNAL),
    (0, True, None, 1, Cause.ZERO),      # at least one until idle long enough
    (0, True, 30.0, 1, Cause.ZERO),
    (2, True, 60.0, 0, Cause.ZERO),      # idle for the period: to zero
    (0, True, 61.0, 0, Cause.ZERO),
])
def test_scale_to_zero(value: int, enabled: bool, idle_s: float | None, out: int, cause: Cause) -> None:
    step = start(value)
    steps.scale_to_zero(step, ScaleToZeroSpec(enabled=enabled, idle_seconds=60), idle_s)
    assert (step.value, step.cause) == (out, cause)


@pytest.mark.parametrize(("current", "waiting", "bounds", "out"), [
    (12, 0.0, (1, 10), 10),
    (0, 0.0, (2, 10), 2),
    (0, 40.0, (2, 10), 8),    # from zero the queue decides how many: ceil(40 / 5)
    (0, 400.0, (2, 10), 10),
])
def test_outside_bounds(current: int, waiting: float, bounds: tuple[int, int], out: int) -> None:
    p = policy(QUEUE, bounds={"min_replicas": bounds[0], "max_replicas": bounds[1]})
    step = start(current)
    steps.outside_bounds(step, p, LoadReading(None, None, None, None, waiting))
    assert (step.value, step.cause, step.signal) == (out, Cause.BOUNDS, None)


def test_a_stage_that_does_not_move_the_count_leaves_the_cause_alone() -> None:
    step = start(5)
    step.to(5, "bounds", "TooManyReplicas", "")
    assert step.cause is Cause.SIGNAL and not step.clamps
    step.to(4, "bounds", "TooManyReplicas", "")
    assert step.cause is Cause.BOUNDS and step.clamps[-1].before == 5
    step.hold(Cause.MISSING_DATA)
    assert (step.cause, step.signal) == (Cause.MISSING_DATA, None)


@pytest.mark.parametrize(("value", "ceiling", "price", "out", "cause"), [
    (6, None, 10.0, 6, Cause.SIGNAL),    # no ceiling
    (6, 100.0, None, 6, Cause.SIGNAL),   # no price for the mix: the ceiling cannot be read in replicas
    (6, 100.0, 10.0, 6, Cause.SIGNAL),   # within it
    (6, 35.0, 10.0, 3, Cause.COST_CEILING),
    (6, 5.0, 10.0, 1, Cause.COST_CEILING),  # min_replicas stays a floor
])
def test_cost_ceiling(value: int, ceiling: float | None, price: float | None, out: int, cause: Cause) -> None:
    step = start(value)
    steps.cost_ceiling(step, ceiling, price, floor=1)
    assert (step.value, step.cause) == (out, cause)


def test_a_panic_floor_hands_placement_its_load_and_a_later_stage_takes_it_back() -> None:
    step = start(6)
    steps.panic(step, PanicDecision(True, False, False, 20, 2.0, load=7000.0), 2, 40)
    assert (step.value, step.load) == (20, 7000.0)  # 20 replicas of the ready mix stand for 7,000 tokens/s
    held = start(3)
    steps.panic(held, PanicDecision(True, False, False, 2, 2.0, load=700.0), 8, 40)
    assert (held.value, held.load) == (8, None)  # held at the current count: a count, not the floor's load
    step.to(10, "bounds", "TooManyReplicas", "bounds")
    assert step.load is None
