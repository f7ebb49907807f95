"""What the engine remembers about one workload between evaluations, and how long.

The HPA keeps recommendations and scale events in memory; Knative keeps its windows and panic
state; KEDA counts failures. This is all of that for one workload, bounded in time: entries older
than the longest window that can still read them are pruned on every evaluation, so memory stays
proportional to the number of workloads.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from hub.policy.behavior import MAX_PERIOD_SECONDS, Recommendation, ScaleEvent
from hub.policy.forecast import RateForecaster
from hub.policy.panic import PanicState
from hub.policy.signals import LoadReading

MIX_TAU_S = 300.0
"""Time constant of the token-mix averages (tokens per request): a mix drifts over minutes."""


@dataclass(slots=True)
class Ewma:
    """Time-weighted exponential average: ``x += (1 - exp(-dt / tau)) (y - x)``."""

    tau_s: float
    value: float | None = None
    at: float = 0.0

    def add(self, now: float, y: float | None) -> None:
        if y is None:
            return
        if self.value is None:
            self.value, self.at = y, now
            return
        dt = max(now - self.at, 0.0)
        self.value += (1.0 - math.exp(-dt / self.tau_s)) * (y - self.value)
        self.at = now


@dataclass(slots=True)
class WorkloadMemory:
    policy_id: str
    recommendations: deque[Recommendation] = field(default_factory=deque)
    scale_up_events: deque[ScaleEvent] = field(default_factory=deque)
    scale_down_events: deque[ScaleEvent] = field(default_factory=deque)
    panic: PanicState = field(default_factory=PanicState)
    failures: int = 0
    """Consecutive evaluations in which every signal was missing (KEDA's failure count)."""
    idle_since: float | None = None
    """Since when nothing arrived and nothing waited (scale to zero); None while busy or unknown."""
    demand: deque[tuple[float, float]] = field(default_factory=deque)
    """(time, tokens/s) per evaluation, for the stable and panic windows."""
    requests: Ewma = field(default_factory=lambda: Ewma(MIX_TAU_S))
    prompt: Ewma = field(default_factory=lambda: Ewma(MIX_TAU_S))
    generation: Ewma = field(default_factory=lambda: Ewma(MIX_TAU_S))
    request_forecast: RateForecaster | None = None
    token_forecast: RateForecaster | None = None
    forecast_season_s: int | None = None
    observed_at: dict[str, float] = field(default_factory=dict)
    """Per latency signal: when its capacity evidence was last recorded."""

    # --- load --------------------------------------------------------------------------------------

    def tokens_per_request(self) -> float | None:
        r, p, g = self.requests.value, self.prompt.value, self.generation.value
        if not r or p is None or g is None:
            return None
        return (p + g) / r

    def mean_tokens(self) -> tuple[float, float] | None:
        """(prompt, generated) tokens of the mean request."""
        r, p, g = self.requests.value, self.prompt.value, self.generation.value
        if not r or p is None or g is None or p <= 0 or g <= 0:
            return None
        return p / r, g / r

    def arrival_demand(self, load: LoadReading) -> float | None:
        """Tokens/s arriving: processed tokens, or arriving requests x tokens per request if more.

        Processed tokens lag arrivals while a queue builds (a saturated replica processes its
        capacity, not its load); arrivals times the recent mix see the burst at once.
        """
        tpr = self.tokens_per_request()
        arriving = None if load.request_rate is None or tpr is None else load.request_rate * tpr
        known = [v for v in (load.token_rate, arriving) if v is not None]
        return max(known) if known else None

    def record_load(self, now: float, load: LoadReading, demand: float | None, keep_s: float) -> None:
        if load.request_rate is not None and load.prompt_rate is not None and load.generation_rate is not None:
            self.requests.add(now, load.request_rate)
            self.prompt.add(now, load.prompt_rate)
            self.generation.add(now, load.generation_rate)
        if demand is not None:
            self.demand.append((now, demand))
        while self.demand and self.demand[0][0] <= now - keep_s:
            self.demand.popleft()

    def mean_demand(self, now: float, window_s: float) -> float | None:
        """Mean demand over ``(now - window_s, now]``; the latest when the window holds none."""
        values = [d for t, d in self.demand if t > now - window_s]
        if not values:
            return self.demand[-1][1] if self.demand else None
        return sum(values) / len(values)

    # --- prediction --------------------------------------------------------------------------------

    def forecasters(self, season_s: int | None) -> tuple[RateForecaster, RateForecaster]:
        if self.request_forecast is None or self.token_forecast is None or self.forecast_season_s != season_s:
            self.request_forecast = RateForecaster.for_season(season_s)
            self.token_forecast = RateForecaster.for_season(season_s)
            self.forecast_season_s = season_s
        return self.request_forecast, self.token_forecast

    # --- behaviour ---------------------------------------------------------------------------------

    def prune(self, now: float, window_s: float) -> None:
        """Drop recommendations older than ``window_s`` and events older than any period."""
        while self.recommendations and self.recommendations[0][0] <= now - window_s:
            self.recommendations.popleft()
        for events in (self.scale_up_events, self.scale_down_events):
            while events and events[0][0] <= now - MAX_PERIOD_SECONDS:
                events.popleft()

    def record_scale(self, now: float, current: int, desired: int) -> None:
        if desired > current:
            self.scale_up_events.append((now, desired - current))
        elif desired < current:
            self.scale_down_events.append((now, current - desired))
