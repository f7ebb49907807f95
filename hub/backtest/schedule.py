"""A controller that plays a fixed replica schedule: static fleets and the hindsight plan.

Neither looks at telemetry: they were computed from the whole trace before the run. The schedule is
a list of (time, placement) steps; at each step the fleet is set to that placement
(make-before-break: ``Fleet.apply``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence

from hub.backtest.harness import Fleet
from hub.backtest.scenario import Pool


class ScheduleController:
    def __init__(
        self,
        name: str,
        description: str,
        steps: Sequence[tuple[float, Mapping[Pool, int]]],
        *,
        gateway_cluster: str | None = None,
    ) -> None:
        if not steps or steps[0][0] > 0:
            raise ValueError("a schedule starts with its step at time 0")
        self.name = name
        self.description = description
        self.steps = [(t, dict(p)) for t, p in steps]
        self._times = [t for t, _ in self.steps]
        self._gateway = gateway_cluster

    @property
    def gateway_cluster(self) -> str | None:
        return self._gateway

    def next_at(self, now_s: float) -> float:
        i = bisect_right(self._times, now_s)
        return self._times[i] if i < len(self._times) else math.inf

    def act(self, fleet: Fleet, now_s: float) -> None:
        i = bisect_right(self._times, now_s) - 1
        fleet.apply(self.steps[i][1])
