"""Forecasting a workload's request and token rates: Holt-Winters, additive, O(1) per update.

Why Holt-Winters, written here: the engine forecasts thousands of series once per tick, each a few
minutes ahead, from a stream (no stored history). Exponential smoothing is the textbook method for
that: one update per new point, a few floats of state (plus one per seasonal slot), and forecasts
in closed form. ARIMA or Prophet (Dynamo's other predictors, anchors.md §2.8) refit on a stored
history and cost orders of magnitude more per tick; statsmodels is not installed and its
``ExponentialSmoothing`` refits from the whole series on each call. The recurrences are those of
Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.), §8.3 (additive
Holt-Winters with a damped trend), for the additive-error form::

    level_t  = a (y_t - s_{t-m}) + (1 - a)(level_{t-1} + phi b_{t-1})
    b_t      = b (level_t - level_{t-1}) + (1 - b) phi b_{t-1}
    s_t      = g (y_t - level_{t-1} - phi b_{t-1}) + (1 - g) s_{t-m}
    y_{t+h}  = level_t + (phi + ... + phi^h) b_t + s_{t+h-m(k+1)}

``phi = 1`` is the undamped additive trend. The engine damps (``DAMPING``) because a burst's
slope extrapolated for minutes buys replicas for load that never comes; damping keeps the trend
for the first steps and fades it. Smoothing constants are fixed, documented choices rather than
fitted per series (a fit per tick is what this module avoids): ``LEVEL`` 0.5 follows a rate that
moves within minutes, ``TREND`` 0.1 needs a few steps of agreement before it believes a slope,
``SEASON`` 0.2 learns a daily shape over a few days.

The series is the per-tick reading averaged over steps of ``STEP_S``; a step with no reading is
skipped (missing data is not a zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LEVEL = 0.5
TREND = 0.1
SEASON = 0.2
DAMPING = 0.9
STEP_S = 30.0
"""Forecast resolution: the readings of 30 s are averaged into one point."""


@dataclass(slots=True)
class HoltWinters:
    """Additive Holt-Winters (damped trend, optional additive season of ``season_length`` steps)."""

    alpha: float = LEVEL
    beta: float = TREND
    gamma: float = SEASON
    phi: float = DAMPING
    season_length: int = 0
    level: float | None = None
    trend: float = 0.0
    season: list[float] = field(default_factory=list)
    steps: int = 0
    """Points seen; the seasonal slot of the next point is ``steps % season_length``."""

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 < self.phi <= 1.0:
            raise ValueError("phi must be in (0, 1]")
        if self.season_length < 0:
            raise ValueError("season_length must be >= 0")
        if self.season_length and not self.season:
            self.season = [0.0] * self.season_length

    def update(self, y: float) -> None:
        if not math.isfinite(y):
            raise ValueError(f"cannot learn from {y!r}")
        if self.level is None:
            # The first point is the level; trend and season start flat and are learnt.
            self.level = y
            self.steps = 1
            return
        m = self.season_length
        s_old = self.season[self.steps % m] if m else 0.0
        prev_level, damped = self.level, self.phi * self.trend
        self.level = self.alpha * (y - s_old) + (1 - self.alpha) * (prev_level + damped)
        self.trend = self.beta * (self.level - prev_level) + (1 - self.beta) * damped
        if m:
            self.season[self.steps % m] = self.gamma * (y - prev_level - damped) + (1 - self.gamma) * s_old
        self.steps += 1

    def forecast(self, h: int) -> float | None:
        """The point ``h`` >= 1 steps after the last one; None before any point."""
        if self.level is None:
            return None
        if h < 1:
            raise ValueError("h must be >= 1")
        if self.phi == 1.0:
            damped_sum = float(h)
        else:
            damped_sum = self.phi * (1 - self.phi**h) / (1 - self.phi)
        m = self.season_length
        s = self.season[(self.steps - 1 + h) % m] if m else 0.0
        return self.level + damped_sum * self.trend + s

    def peak(self, horizon: int) -> float | None:
        """The highest forecast over the next ``horizon`` steps (a seasonal peak may come before the end)."""
        points = [self.forecast(h) for h in range(1, horizon + 1)]
        known = [p for p in points if p is not None]
        return max(known) if known else None


@dataclass(slots=True)
class RateForecaster:
    """A Holt-Winters model fed per-tick readings of one rate, averaged over ``STEP_S`` steps."""

    model: HoltWinters
    step_s: float = STEP_S
    _step: int | None = None
    _sum: float = 0.0
    _count: int = 0

    @classmethod
    def for_season(cls, season_seconds: int | None, step_s: float = STEP_S) -> RateForecaster:
        m = 0 if season_seconds is None else max(round(season_seconds / step_s), 2)
        return cls(HoltWinters(season_length=m), step_s)

    def add(self, now: float, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        step = int(now // self.step_s)
        if self._step is not None and step != self._step and self._count:
            self.model.update(self._sum / self._count)
            self._sum, self._count = 0.0, 0
        self._step = step
        self._sum += value
        self._count += 1

    def peak(self, horizon_s: float) -> float | None:
        """The highest forecast within ``horizon_s`` (at least one step), never negative."""
        value = self.model.peak(max(1, math.ceil(horizon_s / self.step_s)))
        return None if value is None else max(value, 0.0)
