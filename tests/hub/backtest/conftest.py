"""A short synthetic scenario the backtest tests share: quiet, a step up to six times the load, quiet."""

from __future__ import annotations

import pytest

from hub.backtest.comparison import Comparison, compare
from hub.backtest.policy import default_policy
from hub.backtest.scenario import Scenario
from shared.simulation import synthetic


def step_scenario() -> Scenario:
    trace = synthetic(
        "step", duration_s=900, rate_per_s=1.0, step_at_s=300, step_rate_per_s=6.0, step_back_at_s=600, seed=3,
        input_tokens=(256, 1024), output_tokens=(16, 128),
    )
    return Scenario(trace)


@pytest.fixture(scope="package")
def step_comparison() -> Comparison:
    scenario = step_scenario()
    return compare(scenario, [default_policy(scenario)])
