"""How many requests per second one replica sustains at a TTFT SLO: the fluid steady state.

The replica model (``replica.py``) is event-driven; this module is its steady-state, fluid
counterpart, derived from the same ``ServingProfile`` numbers and nothing else (no fit to any
trace). It answers "at most how many requests per second of this token mix can one replica take
and still give a first token within the SLO", which the backtest's static-peak baseline and its
cost oracle use to size fleets.

At an arrival rate ``lam`` with engine steps of ``s`` seconds, in steady state:

* every step decodes ``B = lam x E[O-1] x s`` sequences and prefills ``lam x E[I] x s`` prompt
  tokens (what arrived during one step), so per second of wall time the replica spends
  ``overhead/s + max(weights/s + lam x E[context read] x kv_read, lam x E[I + O - 1] x compute)``
  seconds, which must not exceed 1 (the step's roofline, summed over the steps of one second);
* the prompt's prefill fits in the step's chunk: ``lam x E[I] x s <= chunk_tokens``;
* a request waits for the step in progress and then its own prefill:
  ``TTFT ~ s x (1 + E[I] / chunk_tokens) <= SLO``;
* by Little's law the running requests, ``lam x (TTFT + E[O-1] x s)``, stay within ``max_batch``,
  and the KV they reserve (``input + output`` tokens each, for as long as they run) stays within
  the KV capacity.

The first condition bounds ``s`` from below (batching amortises the weight read), the others from
above; the sustainable rate is the largest ``lam`` for which some ``s`` satisfies all of them.

It is an *upper* bound on what the event-driven replica achieves: the fluid model has no
variance (bursts, long prompts behind each other, head-of-line blocking at the KV limit), so a
replica loaded at this rate will queue. That makes fleets sized with it a lower bound on cost,
which is what the oracle wants, and optimistic for anything that must actually meet the SLO.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.simulation.profiles import ServingProfile
from shared.simulation.trace import Trace

_BISECTIONS = 60


@dataclass(frozen=True, slots=True)
class TokenMix:
    """Per-request token expectations of a set of requests (means over the requests)."""

    requests: int
    input_tokens: float
    """E[I]: prompt tokens."""
    decode_tokens: float
    """E[O - 1]: output tokens made by decode steps (prefill makes the first)."""
    kv_tokens: float
    """E[I + O]: KV a request reserves on admission."""
    context_read_tokens: float
    """E[(O - 1) x (I + O / 2)]: KV tokens read over a request's decode steps."""
    kv_token_steps: float
    """E[(I + O) x (O - 1)]: KV reserved times the decode steps it is held for."""

    @classmethod
    def of(cls, input_tokens: Sequence[int], output_tokens: Sequence[int]) -> TokenMix:
        n = len(input_tokens)
        if n == 0 or len(output_tokens) != n:
            raise ValueError("a token mix needs at least one request and as many outputs as inputs")
        s_in = s_dec = s_kv = s_ctx = s_kvs = 0.0
        for i, o in zip(input_tokens, output_tokens, strict=True):
            dec = o - 1
            s_in += i
            s_dec += dec
            s_kv += i + o
            s_ctx += dec * (i + o / 2)
            s_kvs += (i + o) * dec
        return cls(n, s_in / n, s_dec / n, s_kv / n, s_ctx / n, s_kvs / n)

    @classmethod
    def of_trace(cls, trace: Trace) -> TokenMix:
        return cls.of(trace.input_tokens, trace.output_tokens)


def step_bounds(profile: ServingProfile, mix: TokenMix, rate_per_s: float, slo_ttft_s: float) -> tuple[float, float]:
    """(shortest step the roofline allows, longest step the SLO, chunk, batch and KV allow) at a rate."""
    p, lam = profile, rate_per_s
    if lam <= 0:
        return p.step_overhead_s + p.weights_read_s, slo_ttft_s / (1 + mix.input_tokens / p.chunk_tokens)
    memory = lam * mix.context_read_tokens * p.kv_read_s_per_token
    compute = lam * (mix.decode_tokens + mix.input_tokens) * p.compute_s_per_token
    if memory >= 1 or compute >= 1:
        return math.inf, 0.0
    shortest = max((p.step_overhead_s + p.weights_read_s) / (1 - memory), p.step_overhead_s / (1 - compute))
    ttft_steps = 1 + mix.input_tokens / p.chunk_tokens
    longest = min(
        slo_ttft_s / ttft_steps,
        p.chunk_tokens / (lam * mix.input_tokens),
        p.max_batch / (lam * (ttft_steps + mix.decode_tokens)),
        p.kv_capacity_tokens / (lam * (mix.kv_tokens * ttft_steps + mix.kv_token_steps)),
    )
    return shortest, longest


def sustainable_rate(profile: ServingProfile, mix: TokenMix, *, slo_ttft_s: float) -> float:
    """Requests per second one replica sustains with TTFT within ``slo_ttft_s`` (0 if none)."""
    if slo_ttft_s <= 0:
        raise ValueError(f"slo_ttft_s must be positive, got {slo_ttft_s}")
    if mix.kv_tokens > profile.kv_capacity_tokens:
        return 0.0
    lo_s, hi_s = step_bounds(profile, mix, 0.0, slo_ttft_s)
    if lo_s > hi_s:
        return 0.0  # even one request alone misses the SLO on this GPU type
    # Saturation: either roofline term reaches a whole second per second.
    p = profile
    ceiling = min(
        1.0 / (mix.context_read_tokens * p.kv_read_s_per_token) if mix.context_read_tokens else math.inf,
        1.0 / ((mix.decode_tokens + mix.input_tokens) * p.compute_s_per_token),
    )
    lo, hi = 0.0, ceiling
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        shortest, longest = step_bounds(profile, mix, mid, slo_ttft_s)
        if shortest <= longest:
            lo = mid
        else:
            hi = mid
    return lo
