"""Vertical recommendations on a simulated day, and what the recommender costs the hub.

    PYTHONPATH=$PWD .venv/bin/python bench/vertical_recommendations.py [--trace azure2023_conv_1h] [--hours 6]

1. **On the simulator.** One workload on H100s replays a bundled trace (looped over ``--hours``);
   every simulated minute the world's samples (one ``engine`` container per ready replica: the
   simulator's usage model, docs/simulator.md, and its pod template of 8 cores / 64 GiB) are fed to
   the hub's ``ResourceHistory`` exactly as the intake feeds reports. Printed: the recommendation per
   GPU type and container at the end (target, bounds, peak, confidence) against the template's
   requests, and whether ``changes_due`` would resize it. The usage model is an illustration, so
   the figures say what the recommender does with such input, not what a real vLLM needs.
2. **Cost.** ``observe`` of one report with ``--containers`` containers, and ``recommend`` of one
   workload, timed over ``--repeat`` calls (median and p99 of per-call times), on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from hub.policy.vertical import ResourceHistory, changes_due
from shared.messages import ContainerUsage, Samples, VariantStatus, WorkloadRef, WorkloadReport
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, bundled_trace

GI = 2.0**30


def simulated_day(trace_name: str, hours: float) -> None:
    trace = bundled_trace(trace_name)
    world = SimWorld((ClusterSpec("eu", (NodeSpec("n0", "H100", 8), NodeSpec("n1", "H100", 8))),),
                     (WorkloadSpec("llm", "chat", trace, cold_start_s=60.0, initial_replicas={("eu", "H100"): 2}),))
    history = ResourceHistory()
    end = min(hours * 3600.0, trace.duration_s)
    t = 60.0
    last = None
    while t <= end:
        world.advance(t)
        samples = world.samples("eu", "llm", "chat", 60.0)
        ready = sum(1 for c in samples.containers)
        report = WorkloadReport(workload=WorkloadRef(namespace="llm", name="chat"), desired_replicas=2,
                                ready_replicas=ready,
                                variants=(VariantStatus(gpu_type="H100", desired_replicas=2, ready_replicas=ready),),
                                samples=samples)
        history.observe("eu", report, t)
        last = report
        t += 60.0
    print(f"simulated {end / 3600:.2f} h of {trace_name} on 2 H100 replicas, one sample a minute")
    for rec in history.recommend("llm/chat"):
        cpu, mem, gpu = rec.cpu_cores, rec.memory_bytes, rec.gpu_memory_bytes
        print(f"  {rec.container} on {rec.gpu_type}: {rec.samples} samples, confidence {rec.confidence_days:.3f} days")
        print(f"    CPU cores    target {cpu.target:.3f}  bounds [{cpu.lower:.3f}, {_s(cpu.upper)}]  "
              f"peak {cpu.peak:.3f}  request {rec.current['cpu_request_cores']}")
        print(f"    memory GiB   target {mem.target / GI:.2f}  bounds [{mem.lower / GI:.2f}, "
              f"{_s(mem.upper, GI)}]  peak {mem.peak / GI:.2f}  request {rec.current['memory_request_bytes'] / GI:.0f}")
        print(f"    GPU mem GiB  target {gpu.target / GI:.2f}  peak {gpu.peak / GI:.2f}")
        p = rec.proposal
        print(f"    proposal     cpu request {p.cpu_request_cores:.3f}, memory request "
              f"{p.memory_request_bytes / GI:.2f} GiB, memory limit {p.memory_limit_bytes / GI:.2f} GiB")
    assert last is not None
    due = changes_due(history.recommend("llm/chat"), last.samples.containers, "H100")
    print(f"  resize due now (request outside the bounds): {bool(due)}")


def _s(value: float | None, unit: float = 1.0) -> str:
    return "unbounded" if value is None else f"{value / unit:.3f}"


def cost(containers: int, repeat: int) -> None:
    history = ResourceHistory()
    ref = WorkloadRef(namespace="llm", name="chat")

    def report(i: int) -> WorkloadReport:
        usage = tuple(ContainerUsage(pod=f"chat-{k}", container="engine", gpu_type="H100",
                                     cpu_cores=1.0 + (i + k) % 7 / 7, memory_bytes=(4 + (i + k) % 5) * GI,
                                     gpu_memory_bytes=70 * GI, cpu_request_cores=8.0, memory_request_bytes=64 * GI)
                      for k in range(containers))
        return WorkloadReport(workload=ref, desired_replicas=containers, ready_replicas=containers,
                              samples=Samples(containers=usage))

    reports = [report(i) for i in range(repeat)]
    observe, recommend = [], []
    for i, r in enumerate(reports):
        started = time.perf_counter()
        history.observe("eu", r, i * 60.0)
        observe.append(time.perf_counter() - started)
        started = time.perf_counter()
        history.recommend("llm/chat")
        recommend.append(time.perf_counter() - started)
    for name, times in (("observe (one report)", observe), ("recommend (one workload)", recommend)):
        times.sort()
        print(f"  {name}: median {statistics.median(times) * 1e6:.0f} µs, "
              f"p99 {times[int(0.99 * (len(times) - 1))] * 1e6:.0f} µs over {len(times)} calls, "
              f"{containers} containers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", default="azure2023_conv_1h")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--containers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    simulated_day(args.trace, args.hours)
    print("cost:")
    cost(args.containers, args.repeat)


if __name__ == "__main__":
    main()
