"""How much SLO-capable load one replica of each GPU type serves, relative to the others.

The planner compares GPU types by the engine's own capacity per replica when the recommendation
carries one for every offered type (``hub.control.planner.engine_load``). Otherwise (no latency signal, or a
type without an estimate) it takes relative throughput from the simulator's roofline profiles
(``shared.gpus``): a replica's saturated decode throughput, in tokens per second, of
Llama-3.1-8B on one GPU of the type (``serving_profile(gpu).decode_tokens_per_s``). Decode is the
memory-bandwidth-bound phase that sets how many sequences a replica keeps within an
inter-token-latency SLO, so it is the fairer single number; prefill
(compute-bound) ranks the types the same way. The numbers are normalised to the L4 (= 1):

====== ================ ==========
type   decode tokens/s  relative
====== ================ ==========
L4     194              1
A100   2,176            11.2
H100   6,570            33.9
====== ================ ==========

These are ratios of a model, not measurements: they are only as good as the profiles' datasheet
numbers and efficiency assumptions (docs/simulator.md). A GPU type without a profile has no known
throughput; the planner then counts its replica as one replica of the workload's reference.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.gpus import GPU_PROFILES, serving_profile

_DECODE = {t: serving_profile(p).decode_tokens_per_s for t, p in GPU_PROFILES.items()}

PROFILE_THROUGHPUT: dict[str, float] = {t: v / _DECODE["L4"] for t, v in _DECODE.items()}
"""Relative throughput per replica by GPU type (L4 = 1), from the simulator's profiles."""


def mean_throughput(replicas: Mapping[str, int], throughput: Mapping[str, float]) -> float | None:
    """Replica-weighted mean throughput of a mix of GPU types; None when no type in it is known."""
    known = {t: n for t, n in replicas.items() if n > 0 and t in throughput}
    total = sum(known.values())
    if not total:
        return None
    return sum(n * throughput[t] for t, n in known.items()) / total
