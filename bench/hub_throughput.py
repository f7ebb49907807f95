"""Hub throughput: N synthetic spokes × M workloads at 1 Hz over a real NATS server.

    .venv/bin/python bench/hub_throughput.py --workloads 1000 10000 --seconds 30

For each size it starts a real nats-server and the real hub as its own process (so its CPU can be
read from /proc), loads one queue-tracking policy per workload, and runs synthetic spokes in this
process that publish pre-serialised reports once a second. Every round, a tenth of the workloads flip
between "idle" and "busy", which makes the hub decide and send a command for each of them.

Reported:
* telemetry samples per second accepted by the hub (workload reports, from the hub's own counter);
* hub CPU, as a share of one core (user + system time from /proc/PID/stat);
* latency from the report that carried a change being published to the resulting command arriving
  on the bus (observed from outside with a core-NATS subscription on the commands subjects), p50
  and p99; it includes NATS in both directions, the hub's intake and its evaluation (event-driven:
  a changed report is evaluated as it lands, not on the next ``--tick``);
* evaluations per second, workloads re-planned per second, and an evaluation's duration (mean, and
  p99 from its histogram's buckets);
* the hub's CPU per workload (µs of CPU per second per workload), to show how cost scales.

The measured span starts once the hub has finished its first evaluation (``warmup_rounds``: at
10,000 workloads the first plans every workload and takes seconds). ``--profile PATH`` records the
hub with py-spy (every thread; ``pip install py-spy``) as collapsed stacks, one file per size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import nats
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hub_process import start_hub, wait_ready  # noqa: E402
from shared.natsserver import NatsServer  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


NODE_GPUS = 1024
"""The wire's bound on one node's GPUs (shared.messages.MAX_NODE_GPUS); capacity comes as many such nodes."""
NODES_PER_SPOKE = 100
"""About 100k free GPUs per spoke, so placement never runs out of room and the bench measures the pipeline."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def workload_json(i: int, busy: bool, replicas: int) -> dict:
    waiting = 40 if busy else 0
    return {
        "workload": {"namespace": "bench", "name": f"w{i}"},
        "desired_replicas": replicas,
        "ready_replicas": replicas,
        "gpus_per_replica": 1,
        "variants": [{"gpu_type": "H100", "desired_replicas": replicas, "ready_replicas": replicas}],
        "samples": {
            "requests_waiting": waiting,
            "requests_running": 8 * replicas,
            "kv_cache_usage_ratio": 0.5,
            "ttft": {"p50_s": 0.2, "p95_s": 0.4, "p99_s": 0.6},
            "gpus": [{"gpu_id": f"w{i}-g{r}", "utilization_ratio": 0.9} for r in range(replicas)],
        },
    }


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def hist_quantile(metrics_text: str, name: str, q: float) -> float:
    buckets = []
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le
    return float("inf")


def metric_value(metrics_text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines() if line.startswith(prefix))


def start_profiler(pid: int, out: Path | None) -> subprocess.Popen | None:
    """py-spy sampling the hub's every thread (the planner runs in a worker thread, which cProfile
    would miss), as collapsed stacks for ``flamegraph.pl`` or a quick sort; None without ``--profile``."""
    if out is None:
        return None
    py_spy = str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


MAX_WARMUP_ROUNDS = 120


async def evaluated(http: aiohttp.ClientSession, api: str) -> bool:
    """Whether the hub has finished an evaluation (its first plans every workload)."""
    async with http.get(f"{api}/metrics") as r:
        return metric_value(await r.text(), "fleetscale_hub_tick_seconds_count") >= 1


async def run_size(total: int, spokes: int, seconds: float, tick: float, profile: Path | None = None) -> dict:
    per_spoke = total // spokes
    with NatsServer() as server, tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / "policies.yaml"
        policy_file.write_text(yaml.safe_dump([
            {"id": f"w{i}", "targets": {"workloads": [{"namespace": "bench", "name": f"w{i}"}]},
             "bounds": {"min_replicas": 1, "max_replicas": 8},
             "signals": [{"metric": "queue_per_replica", "target": 10}],
             # This measures the pipeline, not the policy: panic and the HPA's rate limits would
             # (rightly) hold some flips, which would then need no command.
             "behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 100, "period_seconds": 1}]},
                          "scale_down": {"stabilization_window_seconds": 0,
                                         "policies": [{"type": "Pods", "value": 100, "period_seconds": 1}]}},
             "panic": {"enabled": False}}
            for i in range(total)
        ]))
        hub, api = start_hub(server.url, policy_file, tick)
        try:
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, api, hub, timeout_s=300)  # 10k+ policies load slowly on a busy machine
                nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
                busy = [False] * total
                replicas = [1] * total
                changed_at: dict[str, float] = {}
                latencies: list[float] = []

                async def on_command(msg: nats.aio.msg.Msg) -> None:
                    cmd = json.loads(msg.data)
                    name = cmd["workload"]["name"]
                    i = int(name[1:])
                    replicas[i] = sum(cmd["replicas_by_gpu_type"].values())
                    t0 = changed_at.pop(name, None)
                    if t0 is not None:
                        latencies.append(time.perf_counter() - t0)
                    # Answer as a spoke does: the hub holds a workload "unsettled" (and shrinks
                    # nothing) while a command of it has no result.
                    result = {"protocol_version": 1, "type": "result", "command_id": cmd["command_id"],
                              "cluster_id": cmd["cluster_id"], "workload": cmd["workload"], "status": "applied",
                              "reason": "applied", "observed_replicas_by_gpu_type": cmd["replicas_by_gpu_type"],
                              "completed_at": datetime.now(UTC).isoformat()}
                    await nc.publish(f"fleetscale.v1.results.{cmd['cluster_id']}", json.dumps(result).encode())

                await nc.subscribe("fleetscale.v1.commands.*", cb=on_command, pending_msgs_limit=10_000_000)
                rng = random.Random(7)
                round_no = 0
                warmup = 3
                cpu0 = wall0 = reports0 = ticks0 = planned0 = None
                profiler = None
                deadline = time.monotonic() + seconds + MAX_WARMUP_ROUNDS
                while time.monotonic() < deadline:
                    start = time.monotonic()
                    # (every 5th round: a scrape of 10,000 workloads' gauges is not free)
                    if round_no == warmup and warmup < MAX_WARMUP_ROUNDS and (
                            round_no % 5 or not await evaluated(http, api)):
                        # Steady state is measured, not start-up: at 10,000 workloads the first
                        # evaluation (every workload, every first report) takes seconds.
                        warmup += 1
                    flip = set(rng.sample(range(total), max(1, total // 10))) if round_no >= warmup else set()
                    for i in flip:
                        busy[i] = not busy[i]
                    for s in range(spokes):
                        # Spokes are spread over the second, as jittered real spokes are; otherwise
                        # every report would land at the same phase of the hub's tick.
                        await asyncio.sleep(max(0.0, start + s / spokes - time.monotonic()))
                        idx = range(s * per_spoke, (s + 1) * per_spoke)
                        report = {
                            "protocol_version": 1, "type": "telemetry", "cluster_id": f"spoke-{s}",
                            "sequence": round_no, "sent_at": datetime.now(UTC).isoformat(), "interval_s": 1.0,
                            "inventory": [{"node": f"n{s}-{k}", "gpu_product": "H100", "gpu_type": "H100",
                                           "capacity_gpus": NODE_GPUS, "allocatable_gpus": NODE_GPUS,
                                           "free_gpus": NODE_GPUS} for k in range(NODES_PER_SPOKE)],
                            "workloads": [workload_json(i, busy[i], replicas[i]) for i in idx],
                        }
                        now = time.perf_counter()
                        for i in idx:
                            # Only a flip that must change the replica count produces a command.
                            must = (busy[i] and replicas[i] == 1) or (not busy[i] and replicas[i] > 1)
                            if i in flip and must:
                                changed_at[f"w{i}"] = now
                            elif i in flip:
                                changed_at.pop(f"w{i}", None)
                        await nc.publish(f"fleetscale.v1.telemetry.spoke-{s}", json.dumps(report).encode())
                    await nc.flush()
                    if round_no == warmup:
                        deadline = time.monotonic() + seconds  # the measured span starts now
                        profiler = start_profiler(hub.pid, profile)
                        async with http.get(f"{api}/metrics") as r:
                            text0 = await r.text()
                        # After the scrape: at 10,000 workloads its per-workload gauges cost the hub
                        # about a second of CPU, which is Prometheus's cost, not the pipeline's.
                        cpu0, wall0 = cpu_seconds(hub.pid), time.monotonic()
                        reports0 = metric_value(text0, "fleetscale_hub_reports_total")
                        ticks0 = metric_value(text0, "fleetscale_hub_tick_seconds_count")
                        planned0 = metric_value(text0, "fleetscale_hub_workloads_planned_total")
                    round_no += 1
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
                await asyncio.sleep(tick + 0.5)
                cpu1, wall1 = cpu_seconds(hub.pid), time.monotonic()
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    profiler.wait(30)
                async with http.get(f"{api}/metrics") as r:
                    text = await r.text()
                await nc.close()
            reports = metric_value(text, "fleetscale_hub_reports_total") - (reports0 or 0)
            elapsed = wall1 - (wall0 or wall1)
            lat = sorted(latencies)
            ticks = metric_value(text, "fleetscale_hub_tick_seconds_count")
            return {
                "workloads": total,
                "spokes": spokes,
                "warmup_rounds": warmup,
                "seconds": round(elapsed, 1),
                "samples_per_s": round(reports * per_spoke / elapsed, 1),
                "hub_cpu_core_share": round((cpu1 - (cpu0 or cpu1)) / elapsed, 3),
                "changes": len(lat),
                "unanswered_changes": len(changed_at),
                "latency_p50_ms": round(quantile(lat, 0.5) * 1000, 1),
                "latency_p99_ms": round(quantile(lat, 0.99) * 1000, 1),
                "evaluations_per_s": round((ticks - (ticks0 or 0)) / elapsed, 1),
                "workloads_planned_per_s": round(
                    (metric_value(text, "fleetscale_hub_workloads_planned_total") - (planned0 or 0)) / elapsed, 1),
                "evaluation_mean_ms": round(metric_value(text, "fleetscale_hub_tick_seconds_sum")
                                            / max(ticks, 1) * 1000, 1),
                "evaluation_p99_le_ms": hist_quantile(text, "fleetscale_hub_tick_seconds", 0.99) * 1000,
                "hub_cpu_us_per_workload_s": round((cpu1 - (cpu0 or cpu1)) / elapsed / total * 1e6, 1),
            }
        finally:
            hub.terminate()
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:  # a loaded machine: the figures are taken, do not lose them
                hub.kill()
                hub.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--spokes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--tick", type=float, default=1.0, help="hub evaluation tick (HUB_TICK_S)")
    p.add_argument("--profile", type=Path, help="record the hub with py-spy (collapsed stacks) into "
                   "PATH.<workloads>.txt; needs py-spy, and samples cost the hub a little CPU")
    args = p.parse_args()
    print(f"# cores: {os.cpu_count()}, python {sys.version.split()[0]}, tick {args.tick}s")
    for n in args.workloads:
        result = asyncio.run(run_size(n, args.spokes, args.seconds, args.tick,
                                         args.profile and args.profile.with_suffix(f".{n}.txt")))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
