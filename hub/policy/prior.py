"""The capacity prior: what one replica of a GPU type should sustain at a latency target, from datasheets.

Before the engine has seen a GPU type serve a workload it needs *some* capacity figure to size a
fleet with. It takes the one the simulator's physics is built on (``shared.gpus``):
each GPU's datasheet FLOP/s, memory bandwidth and memory, the reference model (Llama-3.1-8B in
BF16), and the roofline of a continuously batching engine. Nothing here is fitted to a trace.

The fluid steady state of one replica at ``lam`` requests/s of a mix with mean prompt ``I`` and
output ``O`` tokens, with engine steps of ``s`` seconds (the same model as ``docs/simulator.md``):

* per second the replica reads KV ``m = lam x (O-1) x (I + O/2) x kv_read_s`` and computes
  ``c = lam x (I + O - 1) x compute_s``, so a step cannot be shorter than
  ``s_min = max((overhead + weights_read) / (1 - m), overhead / (1 - c))``;
* a request waits for the step in progress and then for its own prefill, done with the compute
  the others leave: ``TTFT ~ s + I_q x compute_s / (1 - c)``; ``ITL ~ s``;
  ``e2e ~ TTFT + (O - 1) x s``; the target bounds ``s`` from above, as do the prefill chunk, the
  batch limit and the KV cache (Little's law over the time a request is held). ``I_q`` is the
  prompt at the target's percentile: telemetry gives only the mean, so prompt lengths are taken
  as exponential (the maximum-entropy law for a known mean; LLM prompt lengths are heavy-tailed),
  ``I_q = I x ln(1 / (1 - q))``: 0.69 I at p50, 3.0 I at p95, 4.6 I at p99. This is what rules a
  slow GPU out for long prompts: an L4 needs 1.6 s to prefill 6k tokens on its own;
* the sustainable rate ``lam*`` is the largest ``lam`` with ``s_min <= s_max`` (bisection).

The fluid model has no variance, so it over-states what a replica does under real, bursty
arrivals. The prior is therefore ``KNATIVE_TARGET_UTILIZATION`` (70 %, Knative's default
``container-concurrency-target-percentage``, anchors.md §2.3) of ``lam* x (I + O)`` tokens/s.
It is only a prior: the learned capacity (``capacity.py``) replaces it as soon as the workload's
own latency says otherwise, and a policy may give measured capacities instead
(``SignalSpec.capacity_per_replica``). A workload that is not the reference model gets a wrong
prior until then; that is the price of not knowing the model.
"""

from __future__ import annotations

import math
from functools import lru_cache

from hub.policy.model import Metric
from shared.gpus import DEFAULT_MODEL, GPU_PROFILES, ServingProfile, serving_profile

KNATIVE_TARGET_UTILIZATION = 0.7
"""Share of the fluid capacity the prior takes (Knative's default target utilisation)."""

_BISECTIONS = 40


def _step_bounds(
    p: ServingProfile, lam: float, metric: Metric, target_s: float, i: float, o: float, i_q: float
) -> tuple[float, float]:
    dec = max(o - 1.0, 0.0)
    memory = lam * dec * (i + o / 2.0) * p.kv_read_s_per_token
    compute = lam * (i + dec) * p.compute_s_per_token
    if memory >= 1.0 or compute >= 1.0:
        return math.inf, 0.0
    shortest = max((p.step_overhead_s + p.weights_read_s) / (1.0 - memory), p.step_overhead_s / (1.0 - compute))
    held_steps = 1.0 + i / p.chunk_tokens + dec
    prefill_s = i_q * p.compute_s_per_token / (1.0 - compute)
    if metric is Metric.ITL:
        longest = target_s
    elif metric is Metric.TTFT:
        longest = target_s - prefill_s
    else:
        longest = (target_s - prefill_s) / (1.0 + dec)
    if lam > 0:
        longest = min(
            longest,
            p.chunk_tokens / (lam * i),
            p.max_batch / (lam * held_steps),
            p.kv_capacity_tokens / (lam * (i + o) * held_steps),
        )
    return shortest, longest


def _sustainable_rate(p: ServingProfile, metric: Metric, target_s: float, i: float, o: float, i_q: float) -> float:
    """The largest request rate at which the target holds for a prompt of ``i_q`` tokens."""
    if i + o > p.kv_capacity_tokens:
        return 0.0
    lo_s, hi_s = _step_bounds(p, 0.0, metric, target_s, i, o, i_q)
    if lo_s > hi_s:
        return 0.0  # even one request alone misses the target on this GPU type
    dec = max(o - 1.0, 0.0)
    ceiling = 1.0 / ((i + dec) * p.compute_s_per_token)
    if dec:
        ceiling = min(ceiling, 1.0 / (dec * (i + o / 2.0) * p.kv_read_s_per_token))
    lo, hi = 0.0, ceiling
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2.0
        shortest, longest = _step_bounds(p, mid, metric, target_s, i, o, i_q)
        if shortest <= longest:
            lo = mid
        else:
            hi = mid
    return lo


def _round(x: float) -> float:
    """Two significant digits: the prior is a rough figure, and this keeps its cache small."""
    return float(f"{x:.2g}")


PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def prior_capacity(
    gpu_type: str, *, gpus_per_replica: int, metric: Metric, percentile: str, target_s: float, mean_input: float,
    mean_output: float,
) -> float | None:
    """Tokens/s (prompt + generated) one replica sustains at the target; None for an unknown GPU type."""
    if gpu_type not in GPU_PROFILES or mean_input <= 0 or mean_output <= 0 or target_s <= 0:
        return None
    q = PERCENTILES[percentile]
    return _prior(gpu_type, gpus_per_replica, metric, q, _round(target_s), _round(mean_input), _round(mean_output))


@lru_cache(maxsize=4096)
def _prior(gpu_type: str, gpr: int, metric: Metric, q: float, target_s: float, i: float, o: float) -> float | None:
    try:
        profile = serving_profile(GPU_PROFILES[gpu_type], DEFAULT_MODEL, gpus_per_replica=gpr)
    except ValueError:
        return None  # the reference model does not fit this GPU: no prior
    i_q = i * math.log(1.0 / (1.0 - q))
    return KNATIVE_TARGET_UTILIZATION * _sustainable_rate(profile, metric, target_s, i, o, i_q) * (i + o)


def class_capacity(
    gpu_type: str, *, gpus_per_replica: int, metric: Metric, target_s: float, mean_input: float, mean_output: float,
    prompt_at_percentile: float,
) -> float | None:
    """``prior_capacity`` for a request class whose target-percentile prompt is known (``classes.py``),
    instead of taken from the exponential law over the whole mix."""
    if gpu_type not in GPU_PROFILES or mean_input <= 0 or mean_output <= 0 or target_s <= 0:
        return None
    return _class_prior(gpu_type, gpus_per_replica, metric, _round(target_s), _round(mean_input), _round(mean_output),
                        _round(max(prompt_at_percentile, 1.0)))


@lru_cache(maxsize=16384)
def _class_prior(gpu_type: str, gpr: int, metric: Metric, target_s: float, i: float, o: float, i_q: float
                 ) -> float | None:
    try:
        profile = serving_profile(GPU_PROFILES[gpu_type], DEFAULT_MODEL, gpus_per_replica=gpr)
    except ValueError:
        return None
    return KNATIVE_TARGET_UTILIZATION * _sustainable_rate(profile, metric, target_s, i, o, i_q) * (i + o)


def longest_prompt(gpu_type: str, *, gpus_per_replica: int, metric: Metric, target_s: float) -> float | None:
    """The longest prompt an idle replica prefills within ``target_s`` (tokens); None: unknown type or no bound.

    Only TTFT and e2e targets bound the prompt; an ITL target does not."""
    if gpu_type not in GPU_PROFILES or metric is Metric.ITL or target_s <= 0:
        return None
    try:
        p = serving_profile(GPU_PROFILES[gpu_type], DEFAULT_MODEL, gpus_per_replica=gpus_per_replica)
    except ValueError:
        return None
    return max(0.0, (target_s - p.step_overhead_s - p.weights_read_s) / p.compute_s_per_token)


def infeasible_share(longest: float | None, mean_input: float) -> float:
    """Share of requests whose prompt an idle replica cannot prefill in time, with exponential prompt lengths.

    Telemetry gives the mean prompt only; the exponential law is the maximum-entropy one for a known
    mean, as for the prior (the Azure traces' p95 prompt is 3.5x their mean, the law's 3.0x)."""
    if longest is None or mean_input <= 0:
        return 0.0
    return math.exp(-longest / mean_input)
