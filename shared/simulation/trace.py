"""Request traces: the load a simulated workload receives, real or synthetic.

A ``Trace`` is an immutable list of arrivals (seconds from the trace start, sorted) with each
request's prompt and output length. Real traces are read from ``timestamp_s,input_tokens,
output_tokens`` CSV files (two Azure 2023 production traces ship with the package, see
``traces/README.md`` for licence and citation); synthetic ones are Poisson processes whose rate is
constant, steps, or follows a sine, drawn from ``random.Random(seed)`` so a seed always gives the
same trace.
"""

from __future__ import annotations

import csv
import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TRACES_DIR = Path(__file__).parent / "traces"
HEADER = ("timestamp_s", "input_tokens", "output_tokens")


class TraceError(ValueError):
    """A trace file or trace definition is malformed; the message names file:line when it can."""


@dataclass(frozen=True, slots=True)
class Trace:
    """Arrivals sorted by time, with prompt and output tokens per request."""

    name: str
    arrival_s: tuple[float, ...]
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    duration_s: float
    """Span the trace covers; at least the last arrival (a synthetic trace may end quiet)."""

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if len(self.input_tokens) != n or len(self.output_tokens) != n:
            raise TraceError(f"trace {self.name!r}: columns have different lengths")
        if any(b < a for a, b in zip(self.arrival_s, self.arrival_s[1:], strict=False)):
            raise TraceError(f"trace {self.name!r}: arrivals are not sorted")
        if n and self.arrival_s[0] < 0:
            raise TraceError(f"trace {self.name!r}: negative arrival time")
        if any(t < 1 for t in self.input_tokens) or any(t < 1 for t in self.output_tokens):
            raise TraceError(f"trace {self.name!r}: every request needs at least 1 input and 1 output token")
        if n and self.duration_s < self.arrival_s[-1]:
            raise TraceError(f"trace {self.name!r}: duration_s is before the last arrival")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def mean_rate_per_s(self) -> float | None:
        return len(self) / self.duration_s if self.duration_s > 0 else None

    def scaled(self, rate_factor: float) -> Trace:
        """The same requests arriving ``rate_factor`` times as fast (time axis divided)."""
        if not rate_factor > 0:
            raise ValueError(f"rate_factor must be positive, got {rate_factor}")
        return Trace(
            name=f"{self.name}x{rate_factor:g}",
            arrival_s=tuple(t / rate_factor for t in self.arrival_s),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            duration_s=self.duration_s / rate_factor,
        )

    def window(self, start_s: float, end_s: float) -> Trace:
        """The requests arriving in [start_s, end_s), re-based to start at 0."""
        keep = [i for i, t in enumerate(self.arrival_s) if start_s <= t < end_s]
        return Trace(
            name=f"{self.name}[{start_s:g}:{end_s:g}]",
            arrival_s=tuple(self.arrival_s[i] - start_s for i in keep),
            input_tokens=tuple(self.input_tokens[i] for i in keep),
            output_tokens=tuple(self.output_tokens[i] for i in keep),
            duration_s=max(0.0, end_s - start_s),
        )


def load_trace(path: str | Path) -> Trace:
    """Read a ``timestamp_s,input_tokens,output_tokens`` CSV (header row required)."""
    path = Path(path)
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    with path.open(newline="", encoding="ascii") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise TraceError(f"{path}:1: expected header {','.join(HEADER)}, got {header!r}")
        for row in rows:
            line = rows.line_num
            if not row:
                continue
            if len(row) != 3:
                raise TraceError(f"{path}:{line}: expected 3 fields, got {len(row)}: {row!r}")
            try:
                t, i, o = float(row[0]), int(row[1]), int(row[2])
            except ValueError as e:
                raise TraceError(f"{path}:{line}: {e}") from e
            if not math.isfinite(t) or t < 0:
                raise TraceError(f"{path}:{line}: timestamp_s must be finite and >= 0, got {row[0]}")
            if arrivals and t < arrivals[-1]:
                raise TraceError(f"{path}:{line}: timestamp_s {t} is before the previous row's")
            if i < 1 or o < 1:
                raise TraceError(f"{path}:{line}: input_tokens and output_tokens must be >= 1")
            arrivals.append(t)
            inputs.append(i)
            outputs.append(o)
    return Trace(
        name=path.stem,
        arrival_s=tuple(arrivals),
        input_tokens=tuple(inputs),
        output_tokens=tuple(outputs),
        duration_s=arrivals[-1] if arrivals else 0.0,
    )


def bundled_names() -> list[str]:
    return sorted(p.stem for p in TRACES_DIR.glob("*.csv"))


@functools.lru_cache(maxsize=8)
def bundled_trace(name: str) -> Trace:
    """A trace shipped with the package, e.g. ``"azure2023_conv_1h"`` (cached: traces are immutable)."""
    stem = name.removesuffix(".csv")
    path = TRACES_DIR / f"{stem}.csv"
    if not path.is_file():
        raise TraceError(f"no bundled trace {name!r}; bundled: {', '.join(bundled_names())}")
    return load_trace(path)


TokenSpec = int | tuple[int, int]
"""A fixed token count, or an inclusive (low, high) range drawn uniformly."""


def synthetic(
    pattern: Literal["constant", "step", "sine"],
    *,
    duration_s: float,
    rate_per_s: float,
    seed: int = 0,
    input_tokens: TokenSpec = 1024,
    output_tokens: TokenSpec = 128,
    step_at_s: float | None = None,
    step_rate_per_s: float | None = None,
    step_back_at_s: float | None = None,
    period_s: float = 600.0,
    amplitude_ratio: float = 0.5,
) -> Trace:
    """A Poisson trace whose rate follows ``pattern``.

    * ``constant``: ``rate_per_s`` throughout.
    * ``step``: ``rate_per_s`` until ``step_at_s``, then ``step_rate_per_s``, then back to
      ``rate_per_s`` from ``step_back_at_s`` if given.
    * ``sine``: ``rate_per_s x (1 + amplitude_ratio x sin(2 pi t / period_s))``.

    Non-constant rates are drawn by thinning (Lewis-Shedler), so the trace is exact for any rate
    curve and depends only on the arguments and ``seed``.
    """
    if duration_s < 0 or rate_per_s < 0:
        raise TraceError("duration_s and rate_per_s must not be negative")
    rate: Callable[[float], float]
    if pattern == "constant":
        peak = rate_per_s

        def rate(t: float) -> float:
            return rate_per_s
    elif pattern == "step":
        if step_at_s is None or step_rate_per_s is None or step_rate_per_s < 0:
            raise TraceError("a step trace needs step_at_s and a non-negative step_rate_per_s")
        at, high, back = step_at_s, step_rate_per_s, step_back_at_s
        peak = max(rate_per_s, high)

        def rate(t: float) -> float:
            return high if t >= at and (back is None or t < back) else rate_per_s
    elif pattern == "sine":
        if not 0 <= amplitude_ratio <= 1 or period_s <= 0:
            raise TraceError("a sine trace needs 0 <= amplitude_ratio <= 1 and period_s > 0")
        peak = rate_per_s * (1 + amplitude_ratio)

        def rate(t: float) -> float:
            return rate_per_s * (1 + amplitude_ratio * math.sin(2 * math.pi * t / period_s))
    else:
        raise TraceError(f"unknown pattern {pattern!r}; use constant, step or sine")

    rng = random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    while peak > 0:
        t += rng.expovariate(peak)
        if t >= duration_s:
            break
        if pattern == "constant" or rng.random() * peak < rate(t):
            arrivals.append(t)
    return Trace(
        name=f"synthetic-{pattern}-{seed}",
        arrival_s=tuple(arrivals),
        input_tokens=_draw(rng, input_tokens, len(arrivals)),
        output_tokens=_draw(rng, output_tokens, len(arrivals)),
        duration_s=duration_s,
    )


def _draw(rng: random.Random, spec: TokenSpec, n: int) -> tuple[int, ...]:
    if isinstance(spec, int):
        return (spec,) * n
    low, high = spec
    return tuple(rng.randint(low, high) for _ in range(n))


def from_requests(
    name: str, requests: Sequence[tuple[float, int, int]], duration_s: float | None = None
) -> Trace:
    """A trace from explicit ``(arrival_s, input_tokens, output_tokens)`` rows (sorted here)."""
    rows = sorted(requests, key=lambda r: r[0])
    return Trace(
        name=name,
        arrival_s=tuple(float(r[0]) for r in rows),
        input_tokens=tuple(int(r[1]) for r in rows),
        output_tokens=tuple(int(r[2]) for r in rows),
        duration_s=duration_s if duration_s is not None else (rows[-1][0] if rows else 0.0),
    )
