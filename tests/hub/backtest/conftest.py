"""A short synthetic scenario the backtest tests share: quiet, a step up to six times the load, quiet."""

from __future__ import annotations

import pytest

from hub.backtest.comparison import Comparison, compare
from hub.backtest.policy import default_policy
from hub.backtest.scenario import Scenario
from hub.backtest.sweep import Grid
from shared.simulation import synthetic

TINY = Grid("tiny", (1.0, 2.0), (50,), (2.0,), (), every_gpu_type=False)
"""One or two settings per baseline: enough to test the machinery, cheap enough for a unit test."""


def step_scenario() -> Scenario:
    trace = synthetic(
        "step", duration_s=900, rate_per_s=1.0, step_at_s=300, step_rate_per_s=6.0, step_back_at_s=600, seed=3,
        input_tokens=(256, 1024), output_tokens=(16, 128),
    )
    return Scenario(trace, warmup_s=200)


@pytest.fixture(scope="package")
def step_comparison() -> Comparison:
    scenario = step_scenario()
    return compare(scenario, [default_policy(scenario)], grid=TINY)
