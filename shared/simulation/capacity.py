"""How many requests per second replicas sustain at a TTFT SLO: the replica model in steady state.

The replica model (``replica.py``) is event-driven; this module is its steady-state counterpart,
derived from the same ``ServingProfile`` numbers plus textbook queueing, and fitted to nothing. It
answers "how many requests per second of this token mix can ``n`` replicas of one GPU type take
while at most ``miss_ratio`` of them wait past the TTFT SLO". The backtest's static baseline and
its hindsight plan size fleets with it; docs/simulator.md ("Capacity at the SLO") states the model.

Engine, at a per-replica rate ``x``. Steps run back to back at ``N`` steps/s; each advances every
decoding sequence by one token, so ``B = x E[O-1] / N`` sequences decode at once. A decode-only
step takes ``s_d = overhead + max(weights + B ctx kv_read, B compute)``. A prompt rides in the
steps of its prefill (``max(1, I / chunk)`` of them), which carry ``I`` more tokens of compute and
so take ``Delta`` longer when compute then dominates. The engine is busy all the time:
``N s_d + x Delta = 1`` fixes ``N``. A request's first token comes after the step in progress and
its prefill steps (``TTFT0``); ``slack = SLO - TTFT0`` is what it may wait.

Waits, pooled over the ``n`` replicas (the router sends each request to the replica with the least
outstanding work, which behaves like one queue in front of them all):

* prefill: prompts queue for the prefill slot of a step, M/G/n with the prefill times above:
  Erlang C for the chance of waiting, an exponential tail stretched by ``(1 + scv) / 2`` for
  non-exponential prefills (Allen-Cunneen);
* KV: a request reserves ``I + O`` tokens from admission to its last token; the KV held is a
  compound-Poisson sum, taken as normal with mean ``n x E[(I+O) H]`` and variance
  ``n x E[(I+O)^2 H]`` (``H`` the time a request holds it), and a request that finds the pool full
  is counted as missing the SLO (holding times are tens of seconds, slacks about one);
* the two chances add up to at most ``miss_ratio``.

The sustainable rate is the largest ``x`` meeting all of these. The approximations (token means in
the step model, one pool, normal KV) are stated in docs/simulator.md; the backtest reports what the
sized fleets achieve in the event-driven replay, which is the judge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.gpus import ServingProfile
from shared.simulation.trace import Trace

DEFAULT_MISS_RATIO = 0.01
"""Share of requests allowed to wait past the SLO: the 99 % attainment a TTFT SLO usually means."""

EXACT_ERLANG_SERVERS = 100
_BISECTIONS = 30


@dataclass(frozen=True, slots=True)
class TokenMix:
    """Per-request token expectations of a set of requests (means over the requests)."""

    requests: int
    input_tokens: float
    """E[I]: prompt tokens."""
    input_tokens_sq: float
    """E[I^2], for the spread of prefill times."""
    decode_tokens: float
    """E[D], D = O - 1: output tokens made by decode steps (prefill makes the first)."""
    context_read_tokens: float
    """E[D (I + O / 2)]: KV tokens read over a request's decode steps."""
    kv_tokens: float
    """E[K], K = I + O: KV a request reserves on admission."""
    kv_tokens_sq: float
    """E[K^2]."""
    kv_decode: float
    """E[K D]."""
    kv_sq_decode: float
    """E[K^2 D]."""

    @classmethod
    def of(cls, input_tokens: Sequence[int], output_tokens: Sequence[int]) -> TokenMix:
        n = len(input_tokens)
        if n == 0 or len(output_tokens) != n:
            raise ValueError("a token mix needs at least one request and as many outputs as inputs")
        sums = [0.0] * 8
        for i, o in zip(input_tokens, output_tokens, strict=True):
            d, k = o - 1, i + o
            sums[0] += i
            sums[1] += i * i
            sums[2] += d
            sums[3] += d * (i + o / 2)
            sums[4] += k
            sums[5] += k * k
            sums[6] += k * d
            sums[7] += k * k * d
        return cls(n, *(s / n for s in sums))

    @classmethod
    def of_trace(cls, trace: Trace) -> TokenMix:
        return cls.of(trace.input_tokens, trace.output_tokens)

    @property
    def context_per_sequence(self) -> float:
        """Mean KV context of a decoding sequence, weighted by the steps it decodes for."""
        return self.context_read_tokens / self.decode_tokens if self.decode_tokens > 0 else 0.0


def solo_ttft_s(profile: ServingProfile, input_tokens: int) -> float:
    """First-token time of one prompt on an idle replica: its prefill, ``chunk`` tokens a step."""
    p = profile
    full, rest = divmod(input_tokens, p.chunk_tokens)

    def step(tokens: int) -> float:
        return p.step_overhead_s + max(p.weights_read_s, tokens * p.compute_s_per_token)

    return full * step(p.chunk_tokens) + (step(rest) if rest else 0.0)


@dataclass(frozen=True, slots=True)
class Operating:
    """One replica's steady state at one arrival rate (see the module docstring)."""

    steps_per_s: float
    batch: float
    ttft0_s: float
    slack_s: float
    prefill_utilization: float
    prefill_mean_s: float
    prefill_scv: float
    """Squared coefficient of variation of a prompt's prefill time."""


def operating_point(profile: ServingProfile, mix: TokenMix, rate_per_s: float, slo_ttft_s: float) -> Operating | None:
    """The steady state of one replica at ``rate_per_s``; None if the engine cannot keep up."""
    p, x = profile, rate_per_s
    q, ctx = p.compute_s_per_token, mix.context_per_sequence * p.kv_read_s_per_token
    chunks = max(1.0, mix.input_tokens / p.chunk_tokens)
    per_chunk = mix.input_tokens / chunks

    def memory(b: float) -> float:
        return p.weights_read_s + b * ctx

    def decode_step(b: float) -> float:
        return p.step_overhead_s + max(memory(b), b * q)

    def prefill_extra(b: float, tokens: float) -> float:
        """How much longer a step gets when it also carries ``tokens`` of prompt."""
        return max(0.0, (b + tokens) * q - max(memory(b), b * q))

    def budget(n: float) -> float:
        b = x * mix.decode_tokens / n
        return n * decode_step(b) + x * chunks * prefill_extra(b, per_chunk)

    top = 1.0 / decode_step(0.0)
    if x <= 0:
        n = top
    elif budget(top) <= 1.0:
        n = top  # the engine idles between requests: steps are as short as they get
    else:
        lo, hi = 0.0, top
        for _ in range(50):
            mid = (lo + hi) / 2
            if budget(mid) <= 1.0:
                lo = mid
            else:
                hi = mid
        n = lo
        if n <= 0 or budget(n) > 1.0 + 1e-9:
            return None
    b = x * mix.decode_tokens / n if n > 0 else 0.0
    if b > p.max_batch:
        return None
    prefill_step = decode_step(b) + prefill_extra(b, per_chunk)
    prefill_s = chunks * prefill_step
    ttft0 = decode_step(b) + prefill_s
    # Prefill time of one prompt is about a + c I (per-chunk fixed part, then compute per token).
    c = q if (b + per_chunk) * q > memory(b) else 0.0
    a = prefill_s - c * mix.input_tokens
    mean_s = a + c * mix.input_tokens
    second = a * a + 2 * a * c * mix.input_tokens + c * c * mix.input_tokens_sq
    scv = max(0.0, second / (mean_s * mean_s) - 1) if mean_s > 0 else 0.0
    rho = x * mean_s
    if rho >= 1:
        return None
    return Operating(n, b, ttft0, slo_ttft_s - ttft0, rho, mean_s, scv)


def erlang_c(servers: int, offered: float) -> float:
    """Chance an arrival waits in an M/M/``servers`` queue offered ``offered`` Erlangs.

    Exact (Erlang B recursion) up to ``EXACT_ERLANG_SERVERS`` servers; above, the Halfin-Whitt limit
    (accurate there, and constant-time).
    """
    if offered <= 0:
        return 0.0
    if servers <= 0 or offered >= servers:
        return 1.0
    if servers <= EXACT_ERLANG_SERVERS:
        b = 1.0
        for k in range(1, servers + 1):
            b = offered * b / (k + offered * b)
        rho = offered / servers
        return b / (1 - rho + rho * b)
    beta = (servers - offered) / math.sqrt(offered)
    if beta > 30:
        return 0.0  # phi(beta) underflows long before the chance of waiting matters
    cdf = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    pdf = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    return 1.0 / (1.0 + beta * cdf / pdf)


def prefill_miss(replicas: int, op: Operating) -> float:
    """Chance a prompt waits longer than the slack to start its prefill, over pooled replicas."""
    if op.slack_s <= 0:
        return 1.0
    waits = erlang_c(replicas, replicas * op.prefill_utilization)
    if waits == 0.0:
        return 0.0
    drain = replicas * (1 - op.prefill_utilization) / (op.prefill_mean_s * (1 + op.prefill_scv) / 2)
    return waits * math.exp(-drain * op.slack_s)


def kv_miss(profile: ServingProfile, mix: TokenMix, replicas: int, rate_per_s: float, op: Operating) -> float:
    """Chance a request finds the pooled KV full: normal tail of the compound-Poisson KV held."""
    if op.slack_s <= 0:
        return 1.0
    lam = replicas * rate_per_s
    if lam <= 0:
        return 0.0
    per_step = 1.0 / op.steps_per_s
    mean = lam * (op.ttft0_s * mix.kv_tokens + per_step * mix.kv_decode)
    var = lam * (op.ttft0_s * mix.kv_tokens_sq + per_step * mix.kv_sq_decode)
    room = replicas * profile.kv_capacity_tokens
    if var <= 0:
        return 0.0 if mean <= room else 1.0
    z = (room - mean) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2))


def sustainable_rate(
    profile: ServingProfile,
    mix: TokenMix,
    *,
    slo_ttft_s: float,
    replicas: int = 1,
    miss_ratio: float = DEFAULT_MISS_RATIO,
) -> float:
    """Requests/s *per replica* that ``replicas`` pooled replicas sustain, at most ``miss_ratio`` late.

    0 when even an idle replica misses the SLO for this mix.
    """
    if slo_ttft_s <= 0:
        raise ValueError(f"slo_ttft_s must be positive, got {slo_ttft_s}")
    if replicas < 1 or not 0 < miss_ratio < 1:
        raise ValueError("need replicas >= 1 and 0 < miss_ratio < 1")

    def ok(x: float) -> bool:
        op = operating_point(profile, mix, x, slo_ttft_s)
        if op is None or op.slack_s <= 0:
            return False
        return prefill_miss(replicas, op) + kv_miss(profile, mix, replicas, x, op) <= miss_ratio

    if mix.kv_tokens > profile.kv_capacity_tokens or not ok(1e-9):
        return 0.0
    lo, hi = 0.0, 1.0
    while ok(hi):
        lo, hi = hi, hi * 2
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
