"""Telemetry of the simulated clusters: how each field of ``shared.messages.Samples`` is derived.

The window is ``(now - window_s, now]`` (shortened to the simulated time so far). Derivations,
chosen to mean what the real exporters mean:

* TTFT percentiles over requests whose first token came in the window; ITL (the request's mean
  time between tokens) and e2e over requests that finished in the window. None when there were
  none, with a reason.
* ``requests_waiting`` / ``requests_running``: instant totals over the cluster's ready replicas of
  the workload (draining ones included: their pods still run; starting ones are not scraped yet).
  The global gateway queue is added to the waiting count of the workload's gateway cluster only,
  so summing clusters never double counts.
* ``kv_cache_usage_ratio``: mean over ready replicas of KV tokens held / KV capacity.
* Rates: requests that entered the cluster (routed to its replicas, or queued at its gateway), and
  prompt / generated tokens processed by its replicas, per second of window.
* One ``GpuSample`` per GPU of each ready replica. ``utilization_ratio`` is the share of the window
  the replica had at least one running request: that is what ``DCGM_FI_DEV_GPU_UTIL`` measures
  ("a kernel was running") and why it sits near 1 under any batching load. Memory is weights plus
  KV in use, split over the replica's GPUs (a real vLLM pre-allocates its KV pool, so DCGM would
  show ~90 % used all the time). Power is linear from idle to TDP in utilisation.
* CPU and memory utilisation of the pods' requests are not simulated (None).
* ``containers`` (protocol 1.3): one ``engine`` container per ready replica (pod
  ``<workload>-<replica id>``), with the simulated pod template's requests (``POD_CPU_REQUEST_CORES``,
  ``POD_MEMORY_REQUEST_BYTES``, its memory limit equal to the request) and a usage model of a vLLM-like
  server, so the hub's vertical recommender has plausible input in the demo: CPU is the engine's
  busy loop plus a share that follows GPU busy time and the request rate (tokenising,
  detokenising, HTTP); memory is a fixed runtime plus pinned host buffers proportional to the
  weights and a little per running request; GPU memory is what the GPU samples say (weights plus
  KV in use). The constants are illustrations, not measurements.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from shared.messages import ContainerUsage, GpuSample, Percentiles, Samples
from shared.simulation.ledger import Ledger
from shared.simulation.replica import Replica

NOT_SIMULATED = "not simulated"
POD_CPU_REQUEST_CORES = 8.0
POD_MEMORY_REQUEST_BYTES = 64.0 * 2**30
"""The simulated pod template's requests (and memory limit): generous, as real templates often are."""
ENGINE_BUSY_CORES = 0.6
"""The engine's scheduling loop and API server, idle or not."""
CORES_PER_BUSY_GPU = 1.2
CORE_SECONDS_PER_REQUEST = 0.004
RUNTIME_BYTES = 3.5 * 2**30
"""Python, the CUDA runtime's host side, the tokenizer."""
PINNED_SHARE_OF_WEIGHTS = 0.03
BYTES_PER_RUNNING_REQUEST = 8.0 * 2**20
_RATES = ("request_rate_per_s", "prompt_tokens_per_s", "generation_tokens_per_s")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in [0, 100]."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _percentiles(values: list[float]) -> Percentiles:
    if not values:
        return Percentiles()
    values.sort()
    p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
    return Percentiles(p50_s=p50, p95_s=p95, p99_s=p99)


def build_samples(
    *,
    now_s: float,
    window_s: float,
    ledger: Ledger,
    replicas: Sequence[Replica],
    gateway_waiting: int | None,
    workload_name: str = "replica",
) -> Samples:
    """Samples of one workload in one cluster.

    ``replicas`` are every replica of the workload in the cluster that may have run in the window
    (starting, ready, draining, and retired recently); ``gateway_waiting`` is the global queue
    length if this cluster hosts the workload's gateway, else None.
    """
    missing = {"cpu_utilization_ratio": NOT_SIMULATED, "memory_utilization_ratio": NOT_SIMULATED}
    window = min(window_s, now_s)
    start = now_s - window
    live = [r for r in replicas if r.end_s is None]
    ready = [r for r in live if r.ready]
    present = [r for r in replicas if r.created_s <= now_s and (r.end_s is None or r.end_s > start)]

    # Only ready pods export engine metrics; a starting pod is not scraped yet.
    waiting: float | None = None
    running: float | None = None
    if ready or gateway_waiting is not None:
        waiting = float(sum(r.waiting for r in ready) + (gateway_waiting or 0))
    if ready:
        running = float(sum(r.running for r in ready))
    else:
        missing["requests_running"] = "no ready replicas in this cluster"
        if waiting is None:
            missing["requests_waiting"] = "no ready replicas in this cluster"

    serving = [r for r in ready if not r.draining]
    kv: float | None = None
    if serving:
        kv = sum(min(1.0, r.kv_used_tokens() / r.profile.kv_capacity_tokens) for r in serving) / len(serving)
    else:
        missing["kv_cache_usage_ratio"] = "no ready replica"

    ttft: list[float] = []
    itl: list[float] = []
    e2e: list[float] = []
    rate = prompt_rate = gen_rate = None
    gpus: list[GpuSample] = []
    containers: list[ContainerUsage] = []
    if window <= 0.0:
        for name in ("ttft", "itl", "e2e", "gpus", "containers", *_RATES):
            missing[name] = "window is empty (simulation time is 0)"
    else:
        ft = ledger.first_tokens
        ttft = [v for _, v in ft[bisect_right(ft, start, key=lambda e: e[0]):] if _ <= now_s]
        done = ledger.completions[bisect_right(ledger.completions, start, key=lambda e: e[0]):]
        e2e = [d[1] for d in done if d[0] <= now_s]
        itl = [d[2] for d in done if d[0] <= now_s and d[2] is not None]
        if not ttft:
            missing["ttft"] = "no first tokens in window"
        if not e2e:
            missing["e2e"] = "no requests completed in window"
        if not itl:
            missing["itl"] = "no multi-token requests completed in window"
        if present or gateway_waiting is not None:
            arrived = len(ledger.dispatched) - bisect_right(ledger.dispatched, start)
            rate = arrived / window
            gen = prompt = 0.0
            for r in present:
                _, g0, p0 = r.counters_at(start)
                _, g1, p1 = r.counters_at(now_s)
                gen += g1 - g0
                prompt += p1 - p0
            prompt_rate, gen_rate = prompt / window, gen / window
        else:
            for name in _RATES:
                missing[name] = "no replicas in this cluster during the window"
        gpus = [g for r in ready for g in _gpu_samples(r, start, now_s, window)]
        if not gpus:
            missing["gpus"] = "no ready replica"
        per_replica_rate = (rate or 0.0) / len(ready) if ready else 0.0
        containers = [_container_usage(r, start, now_s, window, per_replica_rate, workload_name) for r in ready]
        if not containers:
            missing["containers"] = "no ready replica"

    return Samples(
        window_s=window,
        gpus=tuple(gpus),
        ttft=_percentiles(ttft),
        itl=_percentiles(itl),
        e2e=_percentiles(e2e),
        requests_waiting=waiting,
        requests_running=running,
        kv_cache_usage_ratio=kv,
        request_rate_per_s=rate,
        prompt_tokens_per_s=prompt_rate,
        generation_tokens_per_s=gen_rate,
        containers=tuple(containers),
        missing_reasons=missing,
    )


def _gpu_samples(r: Replica, start: float, now_s: float, window: float) -> list[GpuSample]:
    busy = r.counters_at(now_s)[0] - r.counters_at(start)[0]
    util = max(0.0, min(1.0, busy / window))
    gpu = r.profile.gpu
    g = r.profile.gpus_per_replica
    model = r.profile.model
    used = (model.weights_bytes + r.kv_used_tokens() * model.kv_bytes_per_token) / g
    power = gpu.idle_power_w + (gpu.tdp_w - gpu.idle_power_w) * util
    return [
        GpuSample(
            gpu_id=gpu_id,
            node=r.node,
            utilization_ratio=util,
            memory_used_bytes=min(used, gpu.memory_bytes),
            memory_total_bytes=gpu.memory_bytes,
            power_w=power,
        )
        for gpu_id in r.gpu_ids
    ]


def _container_usage(
    r: Replica, start: float, now_s: float, window: float, rate_per_s: float, workload_name: str
) -> ContainerUsage:
    """The replica's one ``engine`` container: usage over the window by the model above, and its spec.
    ``rate_per_s`` is the cluster's arrival rate shared evenly over its ready replicas."""
    busy_s = r.counters_at(now_s)[0] - r.counters_at(start)[0]
    util = max(0.0, min(1.0, busy_s / window))
    cpu = ENGINE_BUSY_CORES + CORES_PER_BUSY_GPU * util * r.profile.gpus_per_replica
    cpu += CORE_SECONDS_PER_REQUEST * rate_per_s
    model = r.profile.model
    memory = RUNTIME_BYTES + PINNED_SHARE_OF_WEIGHTS * model.weights_bytes + BYTES_PER_RUNNING_REQUEST * r.running
    gpu_memory = min(model.weights_bytes + r.kv_used_tokens() * model.kv_bytes_per_token,
                     r.profile.gpu.memory_bytes * r.profile.gpus_per_replica)
    return ContainerUsage(
        pod=f"{workload_name}-{r.replica_id}"[:253], container="engine", gpu_type=r.gpu_type,
        cpu_cores=min(cpu, POD_CPU_REQUEST_CORES * 4), memory_bytes=memory, gpu_memory_bytes=gpu_memory,
        cpu_request_cores=POD_CPU_REQUEST_CORES, memory_request_bytes=POD_MEMORY_REQUEST_BYTES,
        memory_limit_bytes=POD_MEMORY_REQUEST_BYTES,
    )
