"""What the engine remembers about one workload between evaluations, and how long.

The HPA keeps recommendations and scale events in memory; Knative keeps its windows and panic
state; KEDA counts failures. This is all of that for one workload, bounded in time: entries older
than the longest window that can still read them are pruned on every evaluation, so memory stays
proportional to the number of workloads.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.policy.behavior import MAX_PERIOD_SECONDS, Recommendation, ScaleEvent
from hub.policy.classes import HistogramPrompts
from hub.policy.forecast import RateForecaster
from hub.policy.panic import PanicState
from hub.policy.signals import LoadReading
from shared.messages import TokenHistogram

LoadRecommendation = tuple[float, float, float | None]
"""(time, replicas proposed, tokens/s one replica of the GPU mix of that time took; None without an
estimate): a recommendation in load units, ``replicas x per_replica``.

The HPA's windows remember replica counts, and a count of one GPU mix is not a count of another.
Re-expressed on every change of mix and rounded up to whole replicas each time, a remembered 1
became 2, then 3, as placement moved the workload between A100s and H100s, and the scale-down
window held a fleet several times the load (conv: 3-4 replicas where 1 was sized). Kept as the
capacity it asked for, it is turned into whole replicas of today's mix only when read, rounded up
once. The whole count is kept, not the demand it was sized from: the HPA's window holds the
capacity recommended, and that rounding is headroom bursts use (holding the bare demand lost
half a point of attainment on the bursty code trace)."""

MIN_HISTOGRAM_REQUESTS = 50.0
"""Requests' worth of (decayed) histogram before it replaces the exponential law of the mean."""

MIX_TAU_S = 300.0
"""Time constant of the token-mix averages (tokens per request): a mix drifts over minutes."""


@dataclass(slots=True)
class DecayedSum:
    """A sum of readings whose weight decays as ``exp(-age / tau)``.

    Ratios of two such sums fed at the same times (tokens / requests) are exponentially weighted
    averages of the ratio without the bias an average started from its first reading has: the
    first minutes count fully until older evidence exists.
    """

    tau_s: float
    total: float = 0.0
    at: float | None = None

    def add(self, now: float, y: float) -> None:
        if self.at is not None and now > self.at:
            self.total *= math.exp(-(now - self.at) / self.tau_s)
        self.total += y
        self.at = now if self.at is None else max(self.at, now)


@dataclass(slots=True)
class WorkloadMemory:
    policy_id: str
    recommendations: deque[LoadRecommendation] = field(default_factory=deque)
    """The behaviour's recommendation history in load units where the capacity model gives them
    (see ``LoadRecommendation``); read as counts of today's mix by ``counts``."""
    scale_up_events: deque[ScaleEvent] = field(default_factory=deque)
    scale_down_events: deque[ScaleEvent] = field(default_factory=deque)
    panic: PanicState = field(default_factory=PanicState)
    failures: int = 0
    """Consecutive evaluations in which every signal was missing (KEDA's failure count)."""
    idle_since: float | None = None
    """Since when nothing arrived and nothing waited (scale to zero); None while busy or unknown."""
    demand: deque[tuple[float, float]] = field(default_factory=deque)
    """(time, tokens/s) per evaluation, for the stable and panic windows."""
    requests: DecayedSum = field(default_factory=lambda: DecayedSum(MIX_TAU_S))
    prompt: DecayedSum = field(default_factory=lambda: DecayedSum(MIX_TAU_S))
    generation: DecayedSum = field(default_factory=lambda: DecayedSum(MIX_TAU_S))
    finished: DecayedSum = field(default_factory=lambda: DecayedSum(MIX_TAU_S))
    """Requests/s that left the replicas (the generated tokens' denominator); ``requests`` counts
    those whose prefill began (the prompt tokens')."""
    request_forecast: RateForecaster | None = None
    token_forecast: RateForecaster | None = None
    forecast_season_s: int | None = None
    class_bounds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Per latency signal: the prompt bounds its request classes were last split at (kept unless
    another split saves enough, ``classes.KEEP_SAVING``)."""
    observed_at: dict[str, float] = field(default_factory=dict)
    """Per latency signal: when its capacity evidence was last recorded."""
    mix: dict[str, int] | None = None
    """Replicas per GPU type the counts of this memory are expressed in (see ``rescale``)."""
    prompt_bounds: tuple[float, ...] | None = None
    prompt_counts: list[float] = field(default_factory=list)
    """Decayed prompt-length histogram from the engines (``learn_prompts``), on ``prompt_bounds``."""
    prompt_at: float | None = None
    calm_since: float | None = None
    queue_seen: deque[tuple[float, float, float]] = field(default_factory=deque)
    """(time, requests waiting, requests waiting or running) over the last samples window (``learn_mix``)."""
    """Since when nothing has waited (the token mix is learnt from calm windows)."""
    ready_fleet: tuple[tuple[str, int], ...] | None = None
    ready_since: float | None = None
    ready_changed_at: float | None = None
    """When the ready fleet last changed while this memory watched (None: not since first seen)."""
    """Since when the ready replicas per GPU type have been what they are now."""

    def settled(self, now: float, window_s: float, latency_s: float) -> bool:
        """This window's latency is evidence about the fleet that is ready now: it has not changed since
        the window's requests arrived (``window + latency`` ago), and nothing has waited for two
        windows (the requests of a drained backlog report their wait for a window after the queue
        empties)."""
        if self.ready_since is None or now - self.ready_since < window_s + latency_s:
            return False
        return self.calm_since is not None and now - self.calm_since >= 2 * window_s

    def latency_is_current(self, now: float, window_s: float, latency_s: float) -> bool:
        """The latency cannot be the wait of requests from before a change of the ready fleet that this
        memory saw (a fleet first seen as it is counts as current: its history is unknown)."""
        return self.ready_changed_at is None or now - self.ready_changed_at >= window_s + latency_s

    def note_ready(self, now: float, ready_by_type: dict[str, int]) -> None:
        fleet = tuple(sorted((t, n) for t, n in ready_by_type.items() if n))
        if fleet != self.ready_fleet:
            if self.ready_since is not None:
                self.ready_changed_at = now
            self.ready_fleet, self.ready_since = fleet, now

    # --- load --------------------------------------------------------------------------------------

    def tokens_per_request(self) -> float | None:
        mix = self.mean_tokens()
        return None if mix is None else mix[0] + mix[1]

    def mean_tokens(self) -> tuple[float, float] | None:
        """(prompt, generated) tokens of the mean request, from the rates of the last minutes."""
        r, f, p, g = self.requests.total, self.finished.total, self.prompt.total, self.generation.total
        if r <= 0 or f <= 0 or p <= 0 or g <= 0:
            return None
        return p / r, g / f

    def arrival_demand(self, load: LoadReading, *, drain_s: float) -> float | None:
        """Tokens/s to serve: processed, or arriving (requests x tokens per request) if more, plus the
        waiting requests' tokens spread over ``drain_s``.

        Processed tokens lag arrivals while a queue builds (a saturated replica processes its
        capacity, not its load); arrivals times the recent mix see the burst at once; and a queue
        is load that arrived and still has to be served.
        """
        tpr = self.tokens_per_request()
        arriving = None if load.request_rate is None or tpr is None else load.request_rate * tpr
        if load.waiting and arriving is not None and tpr is not None:
            # A queue drains: the replicas process the backlog as well as the arrivals, so their
            # token rate is the drain, which the backlog term counts already. Taken as load too,
            # every queued request was sized for twice, and the start-up backlog of one L4 bought
            # 32 L4s and 16 A100s for a load 2 A100s serve (synthetic-steady, whole run $32.71).
            return arriving + load.waiting * tpr / drain_s
        known = [v for v in (load.token_rate, arriving) if v is not None]
        if not known:
            return None
        backlog = 0.0 if tpr is None or not load.waiting else load.waiting * tpr / drain_s
        return max(known) + backlog

    def learn_mix(self, now: float, load: LoadReading, window_s: float = 0.0) -> None:
        """Fold this window's rates into the token mix (prompt and generated tokens per request), and
        note since when nothing has waited (``settled``).

        Prompt tokens are counted against the requests whose prefill began in the window (arrivals
        less the queue's growth) and generated tokens against those that left the batch (arrivals
        less the growth of queue and batch). Tokens over arrivals read the mean prompt 3x long
        while a start-up backlog drained (the tokens were the backlog's), and a seventh of it while
        long prompts piled up; tokens over finished requests read it 4x long while the backlog was
        prefilled (those requests finish later)."""
        if load.waiting:
            self.calm_since = None
        elif self.calm_since is None:
            self.calm_since = now
        if load.request_rate is None or load.prompt_rate is None or load.generation_rate is None or load.partial:
            return
        began = finished = load.request_rate
        if load.waiting is not None and load.running is not None:
            before = self._queue_before(now, window_s)
            self.queue_seen.append((now, load.waiting, load.waiting + load.running))
            if before is not None and window_s > 0:
                # (A window that began before the first report seen counts its arrivals: the first
                # minute reads the prompt short, but a workload must be sized from its first report.)
                began -= (load.waiting - before[0]) / window_s
                finished -= (load.waiting + load.running - before[1]) / window_s
        # A window can end with fewer requests begun than its tokens say (chunked prefills span
        # windows); a negative count is noise, not evidence: left out, with its tokens.
        if began > 0:
            self.requests.add(now, began)
            self.prompt.add(now, load.prompt_rate)
        if finished > 0:
            self.finished.add(now, finished)
            self.generation.add(now, load.generation_rate)

    def _queue_before(self, now: float, window_s: float) -> tuple[float, float] | None:
        """(waiting, waiting or running) ``window_s`` ago; None if nothing seen is that old."""
        seen = self.queue_seen
        while len(seen) > 1 and seen[1][0] <= now - window_s + 1e-9:
            seen.popleft()
        if seen and seen[0][0] <= now - window_s + 1e-9:
            return seen[0][1], seen[0][2]
        return None

    def learn_prompts(self, now: float, histograms: Sequence[TokenHistogram | None]) -> None:
        """Fold this window's prompt-length histograms (one per cluster) into a decayed one.

        Histograms with other buckets than the rest cannot be added; then the window is skipped (and
        a change of buckets starts the sum again)."""
        hs = [h for h in histograms if h is not None and h.total > 0]
        if not hs or any(h.le_tokens != hs[0].le_tokens for h in hs):
            return
        counts = [float(sum(c)) for c in zip(*(h.counts for h in hs), strict=True)]
        if self.prompt_bounds != hs[0].le_tokens:
            self.prompt_bounds, self.prompt_counts = hs[0].le_tokens, [0.0] * len(counts)
        elif self.prompt_at is not None and now > self.prompt_at:
            f = math.exp(-(now - self.prompt_at) / MIX_TAU_S)
            self.prompt_counts = [c * f for c in self.prompt_counts]
        self.prompt_counts = [a + b for a, b in zip(self.prompt_counts, counts, strict=True)]
        self.prompt_at = now if self.prompt_at is None else max(self.prompt_at, now)

    def prompt_lengths(self) -> HistogramPrompts | None:
        """The prompt-length distribution the engines measured, once it holds enough requests."""
        if self.prompt_bounds is None or sum(self.prompt_counts) < MIN_HISTOGRAM_REQUESTS:
            return None
        return HistogramPrompts(tuple(self.prompt_bounds), tuple(self.prompt_counts))

    def record_demand(self, now: float, demand: float | None, keep_s: float) -> None:
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

    def remember(self, now: float, replicas: float, per_replica: float | None) -> None:
        """Append ``replicas`` (of a mix whose replica takes ``per_replica`` tokens/s) to the history.

        ``replicas`` is a fraction where the capacity model sized the count from the load: the load
        itself over ``per_replica``. Kept as the rounded-up count, one H100 asked for 5,750 tokens/s
        was held as 16,905 tokens/s and read back after a move to A100s as 3 replicas of the new
        mix, so the H100 and the A100s that replaced it stayed for the whole scale-down window, then
        the H100 alone, then the A100s again: a 390 s cycle at up to 2.5x the cost.

        An equal load just before it is dropped: every window that holds the older one holds the
        newer too, so min and max over any window are unchanged. (The estimate drifts as it is
        learnt, so the history may hold one entry per evaluation of the window, as the HPA's does.)"""
        if self.recommendations:
            _, last, last_pr = self.recommendations[-1]
            same_units = (last_pr is None) == (per_replica is None)
            if same_units and last * (last_pr or 1.0) == replicas * (per_replica or 1.0):
                self.recommendations.pop()
        self.recommendations.append((now, replicas, per_replica))

    def counts(self, per_replica: float | None) -> list[Recommendation]:
        """The history as whole replicas of a mix whose replica takes ``per_replica`` tokens/s."""
        out = []
        for t, n, then in self.recommendations:
            load = n * then / per_replica if then and per_replica else n
            out.append((t, math.ceil(load - 1e-9)))
        return out

    def held_load(self, now: float, window_s: float) -> float | None:
        """The largest load recommended within ``(now - window_s, now]`` (the scale-down window's
        hold, in tokens/s); None when some entry of it is a bare count (no load to value it by)."""
        loads = []
        for t, n, then in self.recommendations:
            if t > now - window_s:
                if not then:
                    return None
                loads.append(n * then)
        return max(loads, default=None)

    def rescale(self, factor: float) -> None:
        """Multiply the remembered scale events by ``factor`` (a change of GPU mix).

        The recommendations and the panic floor need no rescaling: they are kept in load units."""
        self.scale_up_events = deque((t, round(c * factor)) for t, c in self.scale_up_events)
        self.scale_down_events = deque((t, round(c * factor)) for t, c in self.scale_down_events)

    def record_scale(self, now: float, current: int, desired: int) -> None:
        if desired > current:
            self.scale_up_events.append((now, desired - current))
        elif desired < current:
            self.scale_down_events.append((now, current - desired))
