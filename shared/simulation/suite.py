"""The synthetic benchmark suite: seeded request traces, one per load shape an autoscaler must handle.

Each case is a Poisson process (drawn by thinning, so any rate curve is exact) with a token mix,
generated from ``random.Random(seed)`` alone: the same name, seed and duration always give the same
trace, on any machine. The shapes are the ones issue 10 names (steady, diurnal, a step, a spike, a
slow ramp) and the prompt mixes that make GPU choice matter (short chat, long-prompt RAG, a bimodal
mix). Rates are modest on purpose: a case must replay in seconds on a laptop, and a shape, not a
size, is what it tests.

Token mixes. ``chat`` is log-normal around a median prompt of 1,000 and a median output of 150
tokens (the order of the Azure 2023 conversation trace's medians, 1,020 and 129; the shape is an
assumption, nothing is fitted). ``short`` draws prompts of 20-500 tokens, ``rag`` prompts of
10,000-100,000 tokens (many too long for any GPU to prefill within a 2 s SLO: the unattainable
requests the benchmark reports apart), ``bimodal`` 80 % short prompts (200-800) and 20 % long ones
(6,000-12,000).

A fleet case (``FLEET_CASES``, ``fleet_traces``) is several workloads sharing one fleet's GPUs, each
with its own trace drawn the same way from its own seeded generator: ``multi-model`` has a steady
chat workload, a diurnal one out of phase with it (its peak falls where the other's trough would),
and a bimodal-prompt one. All are of the one model profile the simulator has (Llama-3.1-8B): the
workloads differ in load, not in model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from shared.simulation.trace import Trace, TraceError

DEFAULT_DURATION_S = 1800.0
"""Ten minutes of warm-up and twenty scored, at the benchmark's default warm-up."""

RateCurve = Callable[[float], float]
TokenDraw = Callable[[random.Random], tuple[int, int]]


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return min(high, max(low, round(median * math.exp(sigma * rng.gauss(0.0, 1.0)))))


def chat_tokens(rng: random.Random) -> tuple[int, int]:
    return _lognormal(rng, 1000, 0.8, 16, 8000), _lognormal(rng, 150, 0.9, 1, 1000)


def short_tokens(rng: random.Random) -> tuple[int, int]:
    return rng.randint(20, 500), rng.randint(20, 400)


def rag_tokens(rng: random.Random) -> tuple[int, int]:
    return rng.randint(10_000, 100_000), rng.randint(50, 400)


def bimodal_tokens(rng: random.Random) -> tuple[int, int]:
    if rng.random() < 0.8:
        return rng.randint(200, 800), rng.randint(20, 300)
    return rng.randint(6_000, 12_000), rng.randint(20, 300)


@dataclass(frozen=True, slots=True)
class Case:
    """One synthetic load: a rate curve (requests/s at time t, for a trace of ``duration_s``) and a token mix."""

    name: str
    description: str
    rate: Callable[[float, float], float]
    """(t, duration_s) -> requests/s."""
    peak: Callable[[float], float]
    """duration_s -> the rate's maximum (the thinning envelope)."""
    tokens: TokenDraw


def _const(r: float) -> tuple[Callable[[float, float], float], Callable[[float], float]]:
    return (lambda t, d: r), (lambda d: r)


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("steady", "steady Poisson, 4 req/s, chat tokens", *_const(4.0), chat_tokens),
        Case(
            "diurnal", "sine around 4 req/s, +-75 %, one period per trace, chat tokens",
            lambda t, d: 4.0 * (1 + 0.75 * math.sin(2 * math.pi * t / d)), lambda d: 7.0, chat_tokens,
        ),
        Case(
            "step", "2 req/s, doubling to 4 req/s at half time, chat tokens",
            lambda t, d: 4.0 if t >= d / 2 else 2.0, lambda d: 4.0, chat_tokens,
        ),
        Case(
            "spike", "3 req/s with a x4 spike (12 req/s) for 60 s at two thirds of the trace, chat tokens",
            lambda t, d: 12.0 if 2 * d / 3 <= t < 2 * d / 3 + 60 else 3.0, lambda d: 12.0, chat_tokens,
        ),
        Case(
            "ramp", "slow linear ramp from 1 to 6 req/s over the trace, chat tokens",
            lambda t, d: 1.0 + 5.0 * t / d, lambda d: 6.0, chat_tokens,
        ),
        Case("short-chat", "steady 8 req/s of short prompts (20-500 in, 20-400 out)", *_const(8.0), short_tokens),
        Case("long-rag", "steady 0.4 req/s of long prompts (10k-100k in, 50-400 out)", *_const(0.4), rag_tokens),
        Case(
            "bimodal", "steady 3 req/s, 80 % short prompts (200-800), 20 % long (6k-12k)",
            *_const(3.0), bimodal_tokens,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class FleetCase:
    """Several workloads on one fleet: (workload name, its load) each."""

    name: str
    description: str
    workloads: tuple[tuple[str, Case], ...]


FLEET_CASES: dict[str, FleetCase] = {
    c.name: c
    for c in (
        FleetCase(
            "multi-model",
            "three workloads sharing the GPUs: steady chat 2 req/s; diurnal chat around 2 req/s, +-75 %, "
            "out of phase (falling first); bimodal prompts 1.5 req/s",
            (
                ("chat", Case("chat", "steady Poisson, 2 req/s, chat tokens", *_const(2.0), chat_tokens)),
                ("diurnal", Case(
                    "diurnal", "sine around 2 req/s, +-75 %, half a period after the diurnal case, chat tokens",
                    lambda t, d: 2.0 * (1 - 0.75 * math.sin(2 * math.pi * t / d)), lambda d: 3.5, chat_tokens,
                )),
                ("bimodal", Case(
                    "bimodal", "steady 1.5 req/s, 80 % short prompts (200-800), 20 % long (6k-12k)",
                    *_const(1.5), bimodal_tokens,
                )),
            ),
        ),
    )
}


def names() -> list[str]:
    """The one-workload cases."""
    return list(CASES)


def fleet_names() -> list[str]:
    """The cases of several workloads sharing one fleet."""
    return list(FLEET_CASES)


def suite_trace(name: str, *, seed: int = 0, duration_s: float = DEFAULT_DURATION_S) -> Trace:
    """The case ``name`` as a trace named ``synthetic-<name>``; deterministic in (name, seed, duration_s)."""
    try:
        case = CASES[name]
    except KeyError:
        raise TraceError(f"no synthetic case {name!r}; cases: {', '.join(CASES)}") from None
    # A string seed is hashed deterministically (not by hash()).
    return _draw(case, random.Random(f"{name}/{seed}"), f"synthetic-{name}", duration_s)


def fleet_traces(name: str, *, seed: int = 0, duration_s: float = DEFAULT_DURATION_S) -> tuple[tuple[str, Trace], ...]:
    """The fleet case ``name``: (workload name, its trace named ``synthetic-<name>-<workload>``) per workload.

    Each workload's trace comes from its own generator, seeded by (case, workload, seed), so adding a
    workload to a case leaves the others' traces as they were.
    """
    try:
        case = FLEET_CASES[name]
    except KeyError:
        raise TraceError(f"no synthetic fleet case {name!r}; fleet cases: {', '.join(FLEET_CASES)}") from None
    return tuple(
        (workload, _draw(load, random.Random(f"{name}/{workload}/{seed}"), f"synthetic-{name}-{workload}", duration_s))
        for workload, load in case.workloads
    )


def _draw(case: Case, rng: random.Random, trace_name: str, duration_s: float) -> Trace:
    """A Poisson process of the case's rate curve (by thinning under its peak) and its token mix."""
    if not duration_s > 0:
        raise TraceError(f"duration_s must be positive, got {duration_s}")
    peak = case.peak(duration_s)
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            break
        if rng.random() * peak < case.rate(t, duration_s):
            i, o = case.tokens(rng)
            arrivals.append(t)
            inputs.append(i)
            outputs.append(o)
    return Trace(trace_name, tuple(arrivals), tuple(inputs), tuple(outputs), duration_s)
