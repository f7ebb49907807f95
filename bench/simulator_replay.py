"""Replay a bundled 1-hour trace through the simulator with a fixed fleet and report the wall time.

Usage, from the repository root::

    PYTHONPATH=. python bench/simulator_replay.py [trace] [--l4 N] [--a100 N] [--h100 N]

The fleet is split over two clusters and is static (no autoscaler), so this measures the physics'
replay speed; the latency/cost outcome is printed as a sanity check.
"""

from __future__ import annotations

import argparse
import time

from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, bundled_trace
from shared.simulation.sampling import percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", default="azure2023_conv_1h")
    parser.add_argument("--l4", type=int, default=16, help="L4 replicas (half per cluster)")
    parser.add_argument("--a100", type=int, default=8, help="A100 replicas (half per cluster)")
    parser.add_argument("--h100", type=int, default=0, help="H100 replicas (half per cluster)")
    args = parser.parse_args()

    trace = bundled_trace(args.trace)
    clusters = [
        ClusterSpec(cid, (NodeSpec(f"{cid}-l4", "L4", 64), NodeSpec(f"{cid}-a100", "A100", 64),
                          NodeSpec(f"{cid}-h100", "H100", 64)))
        for cid in ("east", "west")
    ]
    initial: dict[tuple[str, str], int] = {}
    for gpu_type, n in (("L4", args.l4), ("A100", args.a100), ("H100", args.h100)):
        if n:
            initial[("east", gpu_type)] = n - n // 2
            initial[("west", gpu_type)] = n // 2
    world = SimWorld(clusters, [WorkloadSpec("llm", "chat", trace, initial_replicas=initial)])
    started = time.perf_counter()
    world.advance(trace.duration_s)
    while world.unfinished_requests() and world.now_s < trace.duration_s + 3600:
        world.advance(world.now_s + 10.0)
    elapsed = time.perf_counter() - started

    done = world.completed_requests()
    ttft = sorted(r.ttft_s for r in done)
    e2e = sorted(r.e2e_s for r in done)
    itl = sorted(r.itl_s for r in done if r.itl_s is not None)
    print(f"trace {trace.name}: {len(trace)} requests over {trace.duration_s:.0f} s; "
          f"fleet L4={args.l4} A100={args.a100} H100={args.h100}")
    print(f"replayed in {elapsed:.2f} s wall ({len(trace) / elapsed:,.0f} requests/s); "
          f"completed {len(done)}, unfinished {world.unfinished_requests()}")
    for label, values in (("ttft", ttft), ("itl", itl), ("e2e", e2e)):
        print(f"{label}: p50 {percentile(values, 50):.3f} s  p95 {percentile(values, 95):.3f} s  "
              f"p99 {percentile(values, 99):.3f} s")
    print(f"cost ${world.cost():.2f} for {sum(world.gpu_seconds().values()) / 3600:.1f} GPU-hours")


if __name__ == "__main__":
    main()
