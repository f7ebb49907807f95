"""Request classes: a workload's demand split by prompt length, each class with the GPU types that serve it.

One capacity figure per GPU type for the whole workload judges a slow GPU at the long prompts of the
mix: an L4 must prefill the 95th-percentile prompt within the target, so at a 2,000-token mean it is
rated a tenth of an A100 and never bought, although it serves the short prompts for a fifth of the
price. Mélange (anchors-2026-12.md) splits the load into request-size buckets and assigns GPU types
per bucket; this module does that for the engine:

* a GPU type ``t`` can take a prompt at all only if an idle replica prefills it within the target:
  ``longest(t)`` (``prior.longest_prompt``). Types sorted by it give nested eligibility: a class of
  prompts up to ``b`` is served by every type with ``longest(t) >= b``;
* the class bounds are chosen per workload, among a few fractions of each type's ``longest``
  (``BOUND_FRACTIONS``), as those whose fluid cost bound is lowest: each class's tokens at the
  cheapest per-token type allowed for it. A bound at ``longest`` itself would leave the type no
  time to queue (capacity 0); a low bound sends the type little of the load. Nothing here is fitted
  to a trace: the choice is made on the workload's own prompt-length distribution and prices;
* each type's capacity for a class is the datasheet roofline at the class's mean prompt, with the
  target percentile's prompt taken *within* the class (``PromptLengths.quantile``), but never above
  the workload's own percentile prompt (the requests above it are the share the target lets miss);
* prompts longer than the fastest type's ``longest`` (unattainable on any type) stay in the last
  class: they are served, late, by the fastest types and take their capacity, so they are counted
  as load, but never as a reason for types that cannot help.

The prompt-length distribution comes from the engines' histograms where the spokes send them
(``Samples.prompt_tokens``), else it is taken as exponential with the measured mean, as the prior
does (the maximum-entropy law for a known mean).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import highspy
import numpy as np

BOUND_FRACTIONS = (0.25, 0.5, 0.75)
"""Where a class bound may sit, as a share of the slower type's longest prompt."""

KEEP_SAVING = 0.1
"""Splits within this share of the cheapest count as equal: the last one is kept, else the finest."""

MIN_SHARE = 1e-3
"""A class with less of the requests than this is merged into the next one (too little to place)."""


class PromptLengths(Protocol):
    """A prompt-length distribution (tokens), as the classes need it."""

    def share(self, lo: float, hi: float) -> float:
        """Share of requests with ``lo < prompt <= hi`` (``hi`` may be ``inf``)."""
        ...

    def mean(self, lo: float, hi: float) -> float:
        """Mean prompt of the requests in ``(lo, hi]`` (a point inside it when the share is 0)."""
        ...

    def quantile(self, q: float, lo: float, hi: float) -> float:
        """The ``q`` quantile of the prompts in ``(lo, hi]``."""
        ...


@dataclass(frozen=True, slots=True)
class ExponentialPrompts:
    """Exponentially distributed prompts with mean ``mean_tokens``: all telemetry gives without a histogram."""

    mean_tokens: float

    def _tail(self, x: float) -> float:
        return 0.0 if math.isinf(x) else math.exp(-x / self.mean_tokens)

    def share(self, lo: float, hi: float) -> float:
        return max(0.0, self._tail(lo) - self._tail(hi))

    def mean(self, lo: float, hi: float) -> float:
        mass = self.share(lo, hi)
        if mass <= 1e-12:
            return lo if math.isinf(hi) else (lo + hi) / 2.0
        hi_term = 0.0 if math.isinf(hi) else hi * self._tail(hi)
        return self.mean_tokens + (lo * self._tail(lo) - hi_term) / mass

    def quantile(self, q: float, lo: float, hi: float) -> float:
        mass = self.share(lo, hi)
        if mass <= 1e-12:
            return lo
        return -self.mean_tokens * math.log(max(self._tail(lo) - q * mass, 1e-300))


@dataclass(frozen=True, slots=True)
class HistogramPrompts:
    """Prompts from an engine histogram: uniform within each bucket, the overflow bucket an exponential tail.

    ``counts`` has one entry per bound plus the overflow (``shared.messages.TokenHistogram``). The
    overflow's mean is unknown; it is taken as the last bound plus the bucket width before it, the
    least that keeps the tail decreasing."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]

    def _buckets(self) -> list[tuple[float, float, float]]:
        total = sum(self.counts)
        edges = (0.0, *self.bounds)
        out = [(edges[i], edges[i + 1], c / total) for i, c in enumerate(self.counts[:-1])]
        out.append((self.bounds[-1], math.inf, self.counts[-1] / total))
        return out

    def _tail_scale(self) -> float:
        last = self.bounds[-1]
        before = self.bounds[-2] if len(self.bounds) > 1 else 0.0
        return max(last - before, 1.0)

    def _piece(self, a: float, b: float, w: float, lo: float, hi: float) -> tuple[float, float]:
        """(mass, mass x mean) of one bucket's part inside ``(lo, hi]``."""
        x0, x1 = max(a, lo), min(b, hi)
        if x1 <= x0 or w <= 0:
            return 0.0, 0.0
        if math.isinf(b):
            tail = ExponentialPrompts(self._tail_scale())
            mass = tail.share(x0 - a, x1 - a)
            return w * mass, w * mass * (a + tail.mean(x0 - a, x1 - a))
        frac = (x1 - x0) / (b - a)
        return w * frac, w * frac * (x0 + x1) / 2.0

    def share(self, lo: float, hi: float) -> float:
        return sum(self._piece(a, b, w, lo, hi)[0] for a, b, w in self._buckets())

    def mean(self, lo: float, hi: float) -> float:
        parts = [self._piece(a, b, w, lo, hi) for a, b, w in self._buckets()]
        mass = sum(m for m, _ in parts)
        if mass <= 1e-12:
            return lo if math.isinf(hi) else (lo + hi) / 2.0
        return sum(s for _, s in parts) / mass

    def quantile(self, q: float, lo: float, hi: float) -> float:
        mass = self.share(lo, hi)
        if mass <= 1e-12:
            return lo
        want = q * mass
        for a, b, w in self._buckets():
            m, _ = self._piece(a, b, w, lo, hi)
            if m <= 0:
                continue
            x0 = max(a, lo)
            if want <= m:
                if math.isinf(b):
                    tail = ExponentialPrompts(self._tail_scale())
                    return a + tail.quantile(want / m, x0 - a, min(b, hi) - a)
                return x0 + (min(b, hi) - x0) * want / m
            want -= m
        return min(hi, self.bounds[-1])


@dataclass(frozen=True, slots=True)
class RequestClass:
    """The prompts in ``(lower_tokens, upper_tokens]`` and the GPU types that serve them in time."""

    lower_tokens: float
    upper_tokens: float
    """``inf`` for the last class (it also holds the prompts no type serves in time)."""
    request_share: float
    token_share: float
    """Share of the workload's tokens (prompt + generated): the share of its demand."""
    mean_input: float
    capacity: Mapping[str, float]
    """Tokens/s one replica of each GPU type sustains on this class alone; only types that serve it."""

    @property
    def name(self) -> str:
        if math.isinf(self.upper_tokens):
            return f"prompt > {self.lower_tokens:,.0f}" if self.lower_tokens else "all prompts"
        return f"prompt {self.lower_tokens:,.0f}-{self.upper_tokens:,.0f}"

    def scaled(self, factor: float) -> RequestClass:
        """The class with every capacity times ``factor`` (a learned correction, or headroom taken off)."""
        return RequestClass(self.lower_tokens, self.upper_tokens, self.request_share, self.token_share,
                            self.mean_input, {t: c * factor for t, c in self.capacity.items()})


CapacityFn = Callable[[str, float, float], float | None]
"""(GPU type, mean prompt, prompt at the target percentile) -> tokens/s one replica sustains."""


def request_classes(
    lengths: PromptLengths,
    mean_output: float,
    longest: Mapping[str, float],
    prices: Mapping[str, float],
    capacity: CapacityFn,
    *,
    percentile: float,
    demand: float | None = None,
    keep: tuple[float, ...] | None = None,
) -> tuple[RequestClass, ...]:
    """The cheapest split of the prompts into classes by GPU type (module docstring); () when none serves.

    ``longest`` is each GPU type's longest prompt in time; ``prices`` its USD per replica-hour (a
    type without a price is left out: it cannot be placed). With ``demand`` (tokens/s) a split is
    costed in whole replicas, as placement will buy them: at a few replicas' worth of load three L4s
    cost a fifth of the one H100 that is cheaper per token (the engine leaves it out: the fluid
    cost does not move with the load, so the split stays put). ``keep``, the bounds chosen last time,
    stays unless another split saves more than ``KEEP_SAVING``: a mix is not changed for a rounding."""
    types = sorted((t for t in longest if t in prices), key=lambda t: (longest[t], t))
    if not types:
        return ()
    # Types with the same longest prompt share a tier: a bound between them would separate nothing.
    tiers: list[list[str]] = []
    for t in types:
        if tiers and math.isclose(longest[tiers[-1][0]], longest[t]):
            tiers[-1].append(t)
        else:
            tiers.append([t])
    costed: list[tuple[float, tuple[float, ...], tuple[RequestClass, ...]]] = []
    for bounds in sorted(_candidate_bounds([longest[tier[0]] for tier in tiers[:-1]])):
        classes = _classes(lengths, mean_output, types, bounds, capacity, percentile)
        if classes:
            costed.append((_cost(classes, prices, demand), bounds, classes))
    if not costed:
        return ()
    best = min(cost for cost, _, _ in costed)
    near = [c for c in costed if c[0] <= best * (1.0 + KEEP_SAVING)]
    for _, bounds, classes in near:
        if bounds == keep:
            return classes
    # Among splits that cost about the same, the finest: it tells placement most about which GPU
    # types can take which prompts, and placement shares replicas between classes where that is cheaper.
    return min(near, key=lambda c: (-len(c[2]), c[0]))[2]


def effective_capacity(classes: Sequence[RequestClass], gpu_type: str) -> float:
    """Tokens/s one replica of ``gpu_type`` serves of the classes it can serve, in their proportions
    (the harmonic mean of its class capacities, weighted by token share); 0 if it serves none."""
    served = [(c.token_share, c.capacity[gpu_type]) for c in classes
              if c.capacity.get(gpu_type, 0.0) > 0 and c.token_share > 0]
    if not served:
        return 0.0
    return sum(w for w, _ in served) / sum(w / cap for w, cap in served)


def fleet_capacity(classes: Sequence[tuple[float, Mapping[str, float]]], fleet: Mapping[str, int]) -> float:
    """The largest demand (tokens/s), split in the classes' shares, that ``fleet`` (replicas per GPU
    type) serves; each class given as (share of the demand, tokens/s per replica by type that serves it).

    Each type's replicas are split between the classes they can serve, maximising the demand every
    class still gets its share of (a small LP, HiGHS, as placement's class rows are). Summing each
    type's capacity over the fleet over-states a mixed fleet: an L4's capacity counts short prompts
    only. 0 when some class with a share has no type in the fleet.

    The planner values a count with it (placing that value again asks for the same fleet), and the
    capacity learner reads a window's load against it (a miss at a fleet's real limit is not a
    miss at a third of its summed capacity)."""
    cols = [(t, j, thr) for j, (_, caps) in enumerate(classes) for t, n in sorted(fleet.items())
            if n > 0 and (thr := caps.get(t, 0.0)) > 0]
    if not cols or any(share > 0 and not any(jj == j for _, jj, _ in cols) for j, (share, _) in enumerate(classes)):
        return 0.0
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    n_x = len(cols)
    # Columns: x (replicas of a type on a class), then D (the demand served); maximise D.
    h.addVars(n_x + 1, np.zeros(n_x + 1), np.full(n_x + 1, inf))
    h.changeColsCost(n_x + 1, np.arange(n_x + 1, dtype=np.int32), np.array([0.0] * n_x + [-1.0]))
    for j, (share, _) in enumerate(classes):
        idx = [i for i, (_, jj, _) in enumerate(cols) if jj == j] + [n_x]
        val = [cols[i][2] for i in idx[:-1]] + [-share]
        h.addRow(0.0, inf, len(idx), np.array(idx, dtype=np.int32), np.array(val))
    for t in sorted({t for t, _, _ in cols}):
        idx = [i for i, (tt, _, _) in enumerate(cols) if tt == t]
        h.addRow(-inf, float(fleet[t]), len(idx), np.array(idx, dtype=np.int32), np.ones(len(idx)))
    h.run()
    return max(0.0, float(h.getSolution().col_value[n_x]))


def bounds_of(classes: Sequence[RequestClass]) -> tuple[float, ...]:
    """The bounds a split was made at (``keep`` for the next call)."""
    return tuple(c.upper_tokens for c in classes if not math.isinf(c.upper_tokens))


def _candidate_bounds(limits: Sequence[float]) -> set[tuple[float, ...]]:
    """Increasing class bounds: per slower tier none, or a fraction of its longest prompt. The empty
    tuple is the split-free choice (one class, which every type that can serves)."""
    options = [(0.0, *(f * x for f in BOUND_FRACTIONS)) for x in limits]
    out = set()
    for combo in itertools.product(*options):
        bounds = tuple(b for b in combo if b > 0)
        if all(x < y for x, y in itertools.pairwise(bounds)):
            out.add(bounds)
    return out


def _classes(lengths: PromptLengths, mean_output: float, types: Sequence[str], bounds: tuple[float, ...],
             capacity: CapacityFn, percentile: float) -> tuple[RequestClass, ...]:
    """Class k holds prompts in ``(bounds[k-1], bounds[k]]``, the last everything above.

    A type serves a class when the roofline gives it a capacity there at all: an idle replica
    prefills the class's target-percentile prompt within the target. The last class may hold
    prompts no type serves in time; the fastest type still serves them, late, and is sized for
    them at the class's shortest prompt (what they are certain to take)."""
    edges = (0.0, *bounds, math.inf)
    # The target's percentile is the workload's: the prompts above its overall quantile are the share
    # that may miss. A class is held to its own percentile prompt, but never to more than that: the
    # long class's own 95th percentile is far out in the tail, and holding it there would rate every
    # type lower on it than on the whole mix, so no split could ever pay.
    overall_q = lengths.quantile(percentile, 0.0, math.inf)
    total_tokens = sum(lengths.share(lo, hi) * (lengths.mean(lo, hi) + mean_output)
                       for lo, hi in itertools.pairwise(edges))
    out: list[RequestClass] = []
    carry_lo: float | None = None
    for lo, hi in itertools.pairwise(edges):
        lo = lo if carry_lo is None else carry_lo
        share = lengths.share(lo, hi)
        if share < MIN_SHARE and not math.isinf(hi):
            carry_lo = lo  # too few requests to place apart: they join the next class
            continue
        carry_lo = None
        if share <= 0:
            continue
        mean_in = lengths.mean(lo, hi)
        q_prompt = max(lo, min(lengths.quantile(percentile, lo, hi), overall_q))
        caps = {t: c for t in types if (c := capacity(t, mean_in, q_prompt))}
        if not caps and math.isinf(hi):
            fastest = types[-1:]
            caps = {t: c for t in fastest if (c := capacity(t, mean_in, lo or mean_in))}
        if math.isinf(hi) and share < MIN_SHARE and out:
            return ()  # a last class too small to place: the split without its bound covers it
        tokens = share * (mean_in + mean_output)
        out.append(RequestClass(lo, hi, share, tokens / total_tokens if total_tokens else 0.0, mean_in, caps))
    return tuple(out)


def _cost(classes: Sequence[RequestClass], prices: Mapping[str, float], demand: float | None) -> float:
    """USD per hour of the split: each class on its cheapest type, in whole replicas when the demand is
    known (placement may share replicas between classes, so this is a bound from above), else per
    token/s of demand (the fluid bound)."""
    cost = 0.0
    for c in classes:
        if demand is None:
            options = [c.token_share * prices[t] / cap for t, cap in c.capacity.items() if cap > 0]
        else:
            load = demand * c.token_share
            options = [prices[t] * math.ceil(load / cap - 1e-9) for t, cap in c.capacity.items() if cap > 0]
        if not options:
            return math.inf  # a class nothing serves: this split is no good
        cost += min(options)
    return cost
