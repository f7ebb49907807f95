"""The fleet over time: a bounded in-memory history of per-workload and fleet aggregates.

The page's charts and ``GET /api/v1/history`` read it. Every ``fine_s`` seconds the sampler takes the
latest tick (``HubMetrics.latest_tick``: the snapshot, the plans and the prices, the same inputs as
the per-workload gauges, through ``fleet_frames``) and the latest decision per workload, and appends
one point per workload and one for the fleet. Nothing on the control path waits for it.

Memory is bounded by construction: two fixed-size rings per series, fine (``fine_points`` at
``fine_s``: 1 hour at 10 s) and coarse (``coarse_points`` means of ``coarse_every`` fine points: 24 h
at 2 min), each value a float32, and at most ``max_workloads`` series (past that, the oldest-updated
is dropped for a new one, unless it was updated in the same sample: the fleet is then larger than the
history, and the workloads it holds keep their series). docs/operations.md gives the measured size.
A value the hub did not have is NaN in the ring and ``null`` in JSON, so a chart shows a gap, never
an invented zero.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.metrics import HubMetrics, fleet_frames

FIELDS = ("desired", "ready", "cost_usd_per_hour", "ttft_p95_s", "ttft_slo_s", "queue_per_replica",
          "load_tokens_per_s", "capacity_tokens_per_s")
"""Per-point values: the hub's plan and the ready replicas (all clusters), the list-price cost rate of
what runs, fleet TTFT p95 (request-weighted over clusters) and its objective, waiting requests per
ready replica, the tokens/s the replicas served, and the engine's capacity estimate for the replicas
that run (tokens/s at the SLO, from the latest decision's audit; null without a latency signal)."""

NAN = math.nan


class Ring:
    """A fixed-capacity ring of (time, fields, keyed values) points, oldest overwritten first."""

    __slots__ = ("cap", "count", "head", "keyed", "t", "values")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = 0  # next slot to write
        self.count = 0
        self.t = array("d", [NAN]) * cap
        self.values = {f: array("f", [NAN]) * cap for f in FIELDS}
        self.keyed: dict[str, array[float]] = {}

    def append(self, t: float, values: Mapping[str, float | None], keyed: Mapping[str, float]) -> None:
        i = self.head
        self.t[i] = t
        for f in FIELDS:
            v = values.get(f)
            self.values[f][i] = NAN if v is None else v
        for k in keyed.keys() - self.keyed.keys():
            self.keyed[k] = array("f", [NAN]) * self.cap
        for k, col in self.keyed.items():
            col[i] = keyed.get(k, 0.0)  # a key absent now has 0 replicas there
        self.head = (i + 1) % self.cap
        self.count = min(self.count + 1, self.cap)

    def order(self, since: float) -> list[int]:
        first = (self.head - self.count) % self.cap
        idx = [(first + j) % self.cap for j in range(self.count)]
        return [i for i in idx if self.t[i] >= since]

    def nbytes(self) -> int:
        columns = (self.t, *self.values.values(), *self.keyed.values())
        return sum(a.itemsize * len(a) for a in columns)


def _json(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


class Series:
    """One workload's (or the fleet's) history at two resolutions."""

    __slots__ = ("_acc", "_acc_keyed", "_acc_n", "coarse", "coarse_every", "fine", "updated")

    def __init__(self, fine_points: int, coarse_points: int, coarse_every: int) -> None:
        self.fine = Ring(fine_points)
        self.coarse = Ring(coarse_points)
        self.coarse_every = coarse_every
        self._acc: dict[str, list[float]] = {f: [] for f in FIELDS}
        self._acc_keyed: dict[str, list[float]] = {}
        self._acc_n = 0
        self.updated = NAN
        """When the history last sampled it (``FleetHistory._workload``)."""

    def append(self, t: float, values: Mapping[str, float | None], keyed: Mapping[str, float]) -> None:
        self.fine.append(t, values, keyed)
        for f in FIELDS:
            v = values.get(f)
            if v is not None:
                self._acc[f].append(v)
        for k in keyed.keys() | self._acc_keyed.keys():
            self._acc_keyed.setdefault(k, []).append(keyed.get(k, 0.0))
        self._acc_n += 1
        if self._acc_n >= self.coarse_every:
            mean = {f: (sum(v) / len(v) if v else None) for f, v in self._acc.items()}
            kmean = {k: sum(v) / len(v) for k, v in self._acc_keyed.items()}
            self.coarse.append(t, mean, kmean)
            self._acc = {f: [] for f in FIELDS}
            self._acc_keyed = {}
            self._acc_n = 0

    def window(self, window_s: float, now: float, fine_span_s: float) -> dict[str, Any]:
        ring = self.fine if window_s <= fine_span_s else self.coarse
        idx = ring.order(now - window_s)
        return {
            "t": [ring.t[i] for i in idx],
            "values": {f: [_json(ring.values[f][i]) for i in idx] for f in FIELDS},
            "replicas": {k: [_json(col[i]) for i in idx] for k, col in sorted(ring.keyed.items())
                         if any(col[i] for i in idx if not math.isnan(col[i]))},
        }

    def nbytes(self) -> int:
        return self.fine.nbytes() + self.coarse.nbytes()


def _weighted_ttft(ttft: Mapping[str, float], rate: Mapping[str, float]) -> float | None:
    """Fleet p95 as the engine reads a latency: weighted by each cluster's request rate, else the worst."""
    if not ttft:
        return None
    total = sum(rate.get(c, 0.0) for c in ttft)
    if total > 0:
        return sum(v * rate.get(c, 0.0) for c, v in ttft.items()) / total
    return max(ttft.values())


def _capacity(audit: Mapping[str, Any] | None, replicas: Mapping[tuple[str, str], float]) -> float | None:
    """Tokens/s the running replicas sustain at the SLO by the engine's estimate (the tightest signal)."""
    caps = (audit or {}).get("capacity") or {}
    total, known = 0.0, False
    for (_, gpu), n in replicas.items():
        per_signal = [c.get("capacity") for c in (caps.get(gpu) or {}).values() if isinstance(c, Mapping)]
        values = [float(v) for v in per_signal if isinstance(v, (int, float)) and math.isfinite(v)]
        if values and n:
            total += n * min(values)
            known = True
        elif n:
            return None  # a type the engine has no estimate for: the total is unknown
    return total if known else None


@dataclass
class FleetHistory:
    fine_s: float = 10.0
    fine_points: int = 360
    coarse_every: int = 12
    coarse_points: int = 720
    max_workloads: int = 5000
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._workloads: OrderedDict[str, Series] = OrderedDict()
        self._fleet = self._series()

    def _series(self) -> Series:
        return Series(self.fine_points, self.coarse_points, self.coarse_every)

    @property
    def span_s(self) -> float:
        return self.fine_s * self.coarse_every * self.coarse_points

    def sample(self, tick: tuple[Any, Mapping[str, Any], Mapping[str, float]] | None,
               latest: Mapping[str, Any]) -> None:
        """One point per workload of the tick and one for the fleet; ``latest``: workload -> Decision."""
        if tick is None:
            return
        snapshot, plans, prices = tick
        now = self.clock()
        frames = fleet_frames(snapshot, plans, prices)
        per: dict[str, dict[str, Any]] = {}

        def slot(key: str) -> dict[str, Any]:
            return per.setdefault(key, {"desired": 0.0, "ready": 0.0, "cost_usd_per_hour": 0.0, "replicas": {},
                                        "ttft": {}, "rate": {}})

        for (key, _c, _g), n in frames["desired"].items():
            slot(key)["desired"] += n
        for (key, c, g), n in frames["current"].items():
            slot(key)["replicas"][(c, g)] = n
        for (key, _c, _g), n in frames["ready"].items():
            slot(key)["ready"] += n
        for (key, _c, _g), v in frames["cost"].items():
            slot(key)["cost_usd_per_hour"] += v
        for (key, c), v in frames["ttft_p95"].items():
            slot(key)["ttft"][c] = v
        for (key, c), v in frames["rate"].items():
            slot(key)["rate"][c] = v
        fleet: dict[str, float] = {"desired": 0.0, "ready": 0.0, "cost_usd_per_hour": 0.0}
        fleet_replicas: dict[str, float] = {}
        for key, p in per.items():
            values = self._workload_values(key, p, snapshot, frames, latest.get(key))
            keyed = {f"{c}/{g}": float(n) for (c, g), n in p["replicas"].items()}
            series = self._workload(key, now)
            if series is not None:
                series.append(now, values, keyed)
            for f in fleet:
                fleet[f] += values[f] or 0.0
            for (_, g), n in p["replicas"].items():
                fleet_replicas[g] = fleet_replicas.get(g, 0.0) + n
        self._fleet.append(now, fleet, fleet_replicas)

    def _workload_values(self, key: str, p: Mapping[str, Any], snapshot: Any, frames: Mapping[str, Any],
                         decision: Any) -> dict[str, float | None]:
        view = snapshot.workloads.get(key)
        waiting = [r.samples.requests_waiting for r in view.reports.values()] if view is not None else []
        tokens = [(r.samples.prompt_tokens_per_s or 0.0) + (r.samples.generation_tokens_per_s or 0.0)
                  for r in view.reports.values()
                  if r.samples.prompt_tokens_per_s is not None or r.samples.generation_tokens_per_s is not None
                  ] if view is not None else []
        ready = p["ready"]
        return {
            "desired": p["desired"],
            "ready": ready,
            "cost_usd_per_hour": p["cost_usd_per_hour"],
            "ttft_p95_s": _weighted_ttft(p["ttft"], p["rate"]),
            "ttft_slo_s": frames["slo"].get((key,)),
            "queue_per_replica": (sum(w for w in waiting if w is not None) / ready
                                  if ready and any(w is not None for w in waiting) else None),
            "load_tokens_per_s": sum(tokens) if tokens else None,
            "capacity_tokens_per_s": _capacity(getattr(decision, "audit", None), p["replicas"]),
        }

    def _workload(self, key: str, now: float = NAN) -> Series | None:
        """The workload's series; None when every one held was updated in this same sample (``now``).

        NB: a workload past the bound takes the place of the oldest-updated one only if that one was
        not sampled now: with more workloads than ``max_workloads`` in every sample, evicting in turn
        threw away and rebuilt every series on every sample (10,000 workloads: a tenth of the hub's
        CPU), and no workload kept a history at all."""
        series = self._workloads.get(key)
        if series is None:
            if len(self._workloads) >= self.max_workloads:
                oldest = next(iter(self._workloads.values()))
                if oldest.updated == now:
                    return None
                self._workloads.popitem(last=False)
            series = self._workloads[key] = self._series()
        series.updated = now
        self._workloads.move_to_end(key)
        return series

    def workloads(self) -> list[str]:
        return sorted(self._workloads)

    def window(self, workload: str | None, window_s: float) -> dict[str, Any] | None:
        series = self._fleet if workload is None else self._workloads.get(workload)
        if series is None:
            return None
        out = series.window(window_s, self.clock(), self.fine_s * self.fine_points)
        out["resolution_s"] = self.fine_s if window_s <= self.fine_s * self.fine_points else (
            self.fine_s * self.coarse_every)
        return out

    def nbytes(self) -> int:
        return self._fleet.nbytes() + sum(s.nbytes() for s in self._workloads.values())

    async def run(self, metrics: HubMetrics, latest: Callable[[], Mapping[str, Any]]) -> None:
        """The sampler task: a point every ``fine_s`` seconds, until cancelled.

        NB: sampling runs in a worker thread: at 1,000 workloads it takes a few hundred ms of CPU
        (docs/operations.md), which on the event loop would delay every report and command behind
        it. Its inputs are immutable (a frozen snapshot, the plans of a finished tick, a copy of the
        latest decisions), and the rings it writes are read by the API one value at a time, so the
        worst a concurrent read sees is a point half written."""
        while True:
            await asyncio.sleep(self.fine_s)
            await asyncio.to_thread(self.sample, metrics.latest_tick(), dict(latest()))


def markers(decisions: Iterable[Any]) -> list[dict[str, Any]]:
    """Decision markers for a chart's time axis: when, what, and the id the page links to."""
    return [{"t": d.at.timestamp(), "id": d.id, "action": d.action, "from": d.current_replicas,
             "to": d.desired_replicas, "cause": getattr(d, "cause", None)} for d in decisions]
