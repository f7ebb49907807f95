"""Memory and sampling cost of the page's in-memory history (hub/web/history.py).

Rings are preallocated, so a series holds its full 24 h of memory from its first point: filling
1,000 workloads with a first coarse point each (13 fine samples) measures the steady state. The
script checks that by appending more and seeing no growth. Then it times ``FleetHistory.sample``
on a synthetic 1,000-workload tick (three clusters, two GPU types per workload).

    PYTHONPATH=. .venv/bin/python bench/history_memory.py [--workloads 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from datetime import UTC, datetime

from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.history import FIELDS, FleetHistory
from shared.messages import GpuNode, Samples, TelemetryReport, VariantStatus, WorkloadRef, WorkloadReport

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def tick(n: int):  # type: ignore[no-untyped-def]
    state = FleetState()
    policies = {}
    for c, gpu in (("alpha", "H100"), ("beta", "L4"), ("gamma", "A100")):
        reports = []
        for i in range(n):
            reports.append(WorkloadReport(
                workload=WorkloadRef(namespace="bench", name=f"w{i}"), desired_replicas=2, ready_replicas=2,
                variants=(VariantStatus(gpu_type=gpu, desired_replicas=2, ready_replicas=2),),
                samples=Samples.model_validate({"requests_waiting": 3.0, "request_rate_per_s": 5.0,
                                                "prompt_tokens_per_s": 900.0, "ttft": {"p95_s": 0.4}}),
            ))
        state.ingest(TelemetryReport(cluster_id=c, sequence=1, interval_s=1.0, workloads=tuple(reports), sent_at=T0,
                                     inventory=(GpuNode(node="n", gpu_product=gpu, gpu_type=gpu, capacity_gpus=8,
                                                        allocatable_gpus=8, free_gpus=2),)), now=0.0)
    for i in range(n):
        key = f"bench/w{i}"
        policies[key] = (Policy.model_validate({"id": f"w{i}", "targets": {"workloads": [
            {"namespace": "bench", "name": f"w{i}"}]}, "signals": [{"metric": "ttft", "target": 2}]}),
            {("alpha", "H100"): 2, ("beta", "L4"): 2, ("gamma", "A100"): 2})
    return state.snapshot(now=0.5), policies, {"H100": 12.29, "L4": 0.805, "A100": 4.1}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workloads", type=int, default=1000)
    p.add_argument("--samples", type=int, default=5)
    args = p.parse_args()
    t = tick(args.workloads)
    history = FleetHistory()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(history.coarse_every + 1):
        history.sample(t, {})
    filled = tracemalloc.get_traced_memory()[0]
    for _ in range(history.coarse_every):
        history.sample(t, {})
    after_more = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    times = []
    for _ in range(args.samples):
        start = time.perf_counter()
        history.sample(t, {})
        times.append(time.perf_counter() - start)
    per_workload = (filled - before) / args.workloads
    print(f"workloads: {args.workloads}; fields per point: {len(FIELDS)} + 3 placement keys; "
          f"span {history.span_s / 3600:.0f} h ({history.fine_points} x {history.fine_s:g} s fine, "
          f"{history.coarse_points} x {history.fine_s * history.coarse_every:g} s coarse)")
    print(f"ring arrays (nbytes): {history.nbytes() / 2**20:.1f} MiB")
    print(f"traced Python memory for the history: {(filled - before) / 2**20:.1f} MiB "
          f"({per_workload / 1024:.1f} KiB per workload)")
    print(f"growth after 12 more samples: {(after_more - filled) / 2**10:.1f} KiB (preallocated rings: ~0)")
    print(f"sample() at {args.workloads} workloads: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (every {history.fine_s:g} s, off the control path)")


if __name__ == "__main__":
    main()
