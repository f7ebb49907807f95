"""Holt-Winters against series whose forecasts are known, and the per-tick forecaster around it."""

from __future__ import annotations

import math

import pytest

from hub.policy.forecast import HoltWinters, RateForecaster


def test_the_recurrences_match_a_hand_computed_series() -> None:
    hw = HoltWinters(alpha=0.5, beta=0.5, phi=1.0)
    for y in (10.0, 12.0, 14.0):
        hw.update(y)
    # level 10 -> 11 (trend 0.5) -> 12.75 (trend 1.125), by FPP3 eq. 8.3's additive recurrences.
    assert (hw.level, hw.trend) == pytest.approx((12.75, 1.125))
    assert hw.forecast(1) == pytest.approx(13.875) and hw.forecast(2) == pytest.approx(15.0)


def test_an_undamped_linear_series_is_forecast_exactly() -> None:
    hw = HoltWinters(alpha=0.5, beta=0.3, phi=1.0)
    for t in range(300):
        hw.update(5.0 + 2.0 * t)
    assert hw.forecast(6) == pytest.approx(5.0 + 2.0 * 305, rel=1e-9)


def test_damping_fades_the_trend_geometrically() -> None:
    hw = HoltWinters(phi=0.5)
    hw.level, hw.trend, hw.steps = 100.0, 8.0, 10
    assert hw.forecast(1) == pytest.approx(104.0)
    assert hw.forecast(2) == pytest.approx(106.0)  # 100 + (0.5 + 0.25) x 8
    assert hw.forecast(50) == pytest.approx(108.0)  # at most phi / (1 - phi) x trend


def test_a_seasonal_pattern_is_learnt_and_its_peak_found() -> None:
    pattern = [10.0, -10.0, 20.0, -20.0]
    hw = HoltWinters(season_length=4, phi=1.0, beta=0.05)
    for t in range(400):
        hw.update(100.0 + pattern[t % 4])
    assert [hw.forecast(h) for h in range(1, 5)] == pytest.approx([100 + p for p in pattern], abs=0.5)
    assert hw.peak(4) == pytest.approx(120.0, abs=0.5)
    assert len(hw.season) == 4  # state does not grow with the series


def test_parameters_are_checked_and_nothing_is_forecast_before_data() -> None:
    with pytest.raises(ValueError, match="alpha"):
        HoltWinters(alpha=1.5)
    with pytest.raises(ValueError, match="phi"):
        HoltWinters(phi=0.0)
    assert HoltWinters().forecast(3) is None
    with pytest.raises(ValueError, match="learn"):
        HoltWinters().update(math.nan)


def test_the_forecaster_averages_ticks_into_steps_and_skips_missing_readings() -> None:
    f = RateForecaster.for_season(None, step_s=10.0)
    for t in range(10):
        f.add(float(t), 4.0 if t % 2 else None)  # missing readings are not zeros
    assert f.model.level is None  # the first step is still open
    f.add(10.0, 8.0)  # closes step 0 with the mean of its readings, 4
    assert f.model.level == 4.0 and f.model.steps == 1
    assert RateForecaster.for_season(3600, step_s=30.0).model.season_length == 120


def test_a_rising_rate_is_forecast_above_the_last_reading_and_never_below_zero() -> None:
    f = RateForecaster.for_season(None, step_s=10.0)
    for t in range(0, 600):
        f.add(float(t), 0.01 * t)
    peak = f.peak(180.0)
    assert peak is not None and peak > 0.01 * 599
    falling = RateForecaster.for_season(None, step_s=10.0)
    for t in range(0, 600):
        falling.add(float(t), max(0.0, 5.0 - 0.01 * t))
    assert falling.peak(600.0) >= 0.0
