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

``--hubs N`` (N > 1) runs N sharded hub processes (``HUB_SHARDED``, ids ``bench-0``...): the latency
and the changes answered are the fleet's, the rest is reported per hub (``per_hub``), and the CPU per
workload sums every hub's. Each hub reads every report (telemetry is not partitioned on the bus).
``--kill-one`` kills ``bench-0`` with SIGKILL a third into the measured span and reports ``failover``:
how many workloads its partitions held, when every one of those partitions had a new owner
(``rehomed_s``, polled from the leases bucket) and when the first command for one of those workloads
with the new owner's epoch was seen (``first_command_s``), both from the kill.

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
from typing import Any

import aiohttp
import nats
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hub_process import start_hub, wait_ready  # noqa: E402
from hub.control.leases import LeaseValue, lease_key, partition_of  # noqa: E402
from shared.natsserver import NatsServer  # noqa: E402
from shared.subjects import LEASES_BUCKET  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


NODE_GPUS = 1024
"""The wire's bound on one node's GPUs (shared.messages.MAX_NODE_GPUS); capacity comes as many such nodes."""
NODES_PER_SPOKE = 100
"""About 100k free GPUs per spoke, so placement never runs out of room and the bench measures the pipeline."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def telemetry_report(spoke: int, idx: range, busy: list[bool], replicas: list[int], sequence: int) -> dict[str, Any]:
    """One spoke's report of workloads ``idx`` (every node an idle 8-GPU H100 node)."""
    return {
        "protocol_version": 1, "type": "telemetry", "cluster_id": f"spoke-{spoke}",
        "sequence": sequence, "sent_at": datetime.now(UTC).isoformat(), "interval_s": 1.0,
        "inventory": [{"node": f"n{spoke}-{k}", "gpu_product": "H100", "gpu_type": "H100",
                       "capacity_gpus": NODE_GPUS, "allocatable_gpus": NODE_GPUS,
                       "free_gpus": NODE_GPUS} for k in range(NODES_PER_SPOKE)],
        "workloads": [workload_json(i, busy[i], replicas[i]) for i in idx],
    }


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
PARTITIONS = 16
"""HUB_PARTITIONS's default: what sharded hubs split the workloads into."""


async def evaluated(http: aiohttp.ClientSession, apis: list[str]) -> bool:
    """Whether every hub has finished an evaluation (its first plans every workload it holds)."""
    for api in apis:
        async with http.get(f"{api}/metrics") as r:
            if metric_value(await r.text(), "fleetscale_hub_tick_seconds_count") < 1:
                return False
    return True


class Hubs:
    """The hub processes of one run: one plain hub, or N sharded ones (``--hubs N``)."""

    def __init__(self, server_url: str, policy_file: Path, tick: float, count: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.apis: list[str] = []
        for n in range(count):
            extra = {} if count == 1 else {"HUB_SHARDED": "true", "HUB_ID": f"bench-{n}"}
            proc, api = start_hub(server_url, policy_file, tick, **extra)
            self.procs.append(proc)
            self.apis.append(api)
        self.killed: int | None = None
        self.cpu_at_kill: tuple[float, float] | None = None

    def alive(self) -> list[int]:
        return [i for i in range(len(self.procs)) if i != self.killed]

    async def scrape(self, http: aiohttp.ClientSession) -> list[str]:
        """Each live hub's /metrics ("" for the killed one)."""
        out = []
        for i, api in enumerate(self.apis):
            if i == self.killed:
                out.append("")
                continue
            async with http.get(f"{api}/metrics") as r:
                out.append(await r.text())
        return out

    def cpu(self) -> list[float]:
        return [self.cpu_at_kill[0] if i == self.killed and self.cpu_at_kill else cpu_seconds(p.pid)
                for i, p in enumerate(self.procs)]

    def kill(self, index: int) -> None:
        self.cpu_at_kill = (cpu_seconds(self.procs[index].pid), time.monotonic())
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait()
        self.killed = index

    def stop(self) -> None:
        for hub in self.procs:
            hub.terminate()
        for hub in self.procs:
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:  # a loaded machine: the figures are taken, do not lose them
                hub.kill()
                hub.wait()


async def lease_owners(nc: nats.NATS, partitions: int) -> dict[int, LeaseValue]:
    """Who holds each partition now, and its epoch (the leases bucket, as the hubs read it)."""
    kv = await nc.jetstream().key_value(LEASES_BUCKET)
    out: dict[int, LeaseValue] = {}
    for p in range(partitions):
        try:
            value = LeaseValue.from_bytes((await kv.get(lease_key(p, partitions))).value)
        except nats.js.errors.KeyNotFoundError:
            value = None
        out[p] = value or LeaseValue(None, 0)
    return out


async def run_size(total: int, spokes: int, seconds: float, tick: float, profile: Path | None = None,
                   hubs_count: int = 1, kill_one: bool = False) -> dict:
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
        hubs = Hubs(server.url, policy_file, tick, hubs_count)
        try:
            async with aiohttp.ClientSession() as http:
                for proc, api in zip(hubs.procs, hubs.apis, strict=True):
                    await wait_ready(http, api, proc, timeout_s=300)  # 10k+ policies load slowly on a busy machine
                nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
                busy = [False] * total
                replicas = [1] * total
                changed_at: dict[str, float] = {}
                latencies: list[float] = []
                failover: dict[str, float] = {}
                moved: dict[str, int] = {}
                """Workloads of the killed hub's partitions, and their epoch when it died (``--kill-one``)."""
                killed_at: float | None = None

                async def on_command(msg: nats.aio.msg.Msg) -> None:
                    cmd = json.loads(msg.data)
                    name = cmd["workload"]["name"]
                    i = int(name[1:])
                    replicas[i] = sum(cmd["replicas_by_gpu_type"].values())
                    t0 = changed_at.pop(name, None)
                    if t0 is not None:
                        latencies.append(time.perf_counter() - t0)
                    # The new owner's: a command the killed hub published just before it died has the old epoch.
                    if killed_at is not None and name in moved and "first_command_s" not in failover \
                            and (cmd.get("fence") or {}).get("epoch", 0) > moved[name]:
                        failover["first_command_s"] = time.perf_counter() - killed_at
                    # Answer as a spoke does: the hub holds a workload "unsettled" (and shrinks
                    # nothing) while a command of it has no result.
                    result = {"protocol_version": 1, "type": "result", "command_id": cmd["command_id"],
                              "cluster_id": cmd["cluster_id"], "workload": cmd["workload"], "status": "applied",
                              "reason": "applied", "observed_replicas_by_gpu_type": cmd["replicas_by_gpu_type"],
                              "completed_at": datetime.now(UTC).isoformat()}
                    await nc.publish(f"fleetscale.v1.results.{cmd['cluster_id']}", json.dumps(result).encode())

                async def watch_rehoming(victim: str, parts: set[int]) -> None:
                    while True:
                        owners = await lease_owners(nc, PARTITIONS)
                        if all(owners[p].owner not in (None, victim) for p in parts):
                            failover["rehomed_s"] = time.perf_counter() - (killed_at or 0.0)
                            return
                        await asyncio.sleep(0.1)

                await nc.subscribe("fleetscale.v1.commands.*", cb=on_command, pending_msgs_limit=10_000_000)
                rng = random.Random(7)
                round_no = 0
                warmup = 3
                cpu0: list[float] | None = None
                wall0 = reports0 = ticks0 = planned0 = None
                profiler = None
                rehoming: asyncio.Task[None] | None = None
                kill_due: float | None = None
                deadline = time.monotonic() + seconds + MAX_WARMUP_ROUNDS
                while time.monotonic() < deadline:
                    start = time.monotonic()
                    # (every 5th round: a scrape of 10,000 workloads' gauges is not free)
                    if round_no == warmup and warmup < MAX_WARMUP_ROUNDS and (
                            round_no % 5 or not await evaluated(http, hubs.apis)):
                        # Steady state is measured, not start-up: at 10,000 workloads the first
                        # evaluation (every workload, every first report) takes seconds.
                        warmup += 1
                    if kill_due is not None and start >= kill_due and hubs.killed is None:
                        owners = await lease_owners(nc, PARTITIONS)
                        parts = {p for p, o in owners.items() if o.owner == "bench-0"}
                        of = {f"w{i}": partition_of(f"bench/w{i}", PARTITIONS) for i in range(total)}
                        moved = {w: owners[p].epoch for w, p in of.items() if p in parts}
                        killed_at = time.perf_counter()
                        hubs.kill(0)
                        rehoming = asyncio.create_task(watch_rehoming("bench-0", parts))
                    flip = set(rng.sample(range(total), max(1, total // 10))) if round_no >= warmup else set()
                    for i in flip:
                        busy[i] = not busy[i]
                    for s in range(spokes):
                        # Spokes are spread over the second, as jittered real spokes are; otherwise
                        # every report would land at the same phase of the hub's tick.
                        await asyncio.sleep(max(0.0, start + s / spokes - time.monotonic()))
                        idx = range(s * per_spoke, (s + 1) * per_spoke)
                        report = telemetry_report(s, idx, busy, replicas, round_no)
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
                        if kill_one:
                            kill_due = time.monotonic() + seconds / 3
                        profiler = start_profiler(hubs.procs[0].pid, profile)
                        texts0 = await hubs.scrape(http)
                        # After the scrape: at 10,000 workloads its per-workload gauges cost the hub
                        # about a second of CPU, which is Prometheus's cost, not the pipeline's.
                        cpu0, wall0 = hubs.cpu(), time.monotonic()
                        reports0 = [metric_value(t, "fleetscale_hub_reports_total") for t in texts0]
                        ticks0 = [metric_value(t, "fleetscale_hub_tick_seconds_count") for t in texts0]
                        planned0 = [metric_value(t, "fleetscale_hub_workloads_planned_total") for t in texts0]
                    round_no += 1
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
                await asyncio.sleep(tick + 0.5)
                cpu1, wall1 = hubs.cpu(), time.monotonic()
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    profiler.wait(30)
                texts = await hubs.scrape(http)
                if rehoming is not None and not rehoming.done():
                    rehoming.cancel()
                await nc.close()
            if wall0 is None or cpu0 is None:
                raise RuntimeError("the warm-up rounds never finished: there is no measured span to report")
            elapsed = wall1 - wall0
            lat = sorted(latencies)
            per_hub = []
            for i, text in enumerate(texts):
                until = hubs.cpu_at_kill[1] if i == hubs.killed and hubs.cpu_at_kill else wall1
                span = max(until - wall0, 1e-9)
                cpu = (cpu1[i] - cpu0[i]) / span
                hub: dict[str, float] = {"cpu_core_share": round(cpu, 3)}
                if i == hubs.killed:
                    hub["killed_after_s"] = round(span, 1)
                else:
                    reports = metric_value(text, "fleetscale_hub_reports_total") - reports0[i]
                    ticks = metric_value(text, "fleetscale_hub_tick_seconds_count")
                    hub |= {
                        "samples_per_s": round(reports * per_spoke / elapsed, 1),
                        "partitions_held": metric_value(text, "fleetscale_hub_partitions_held"),
                        "evaluations_per_s": round((ticks - ticks0[i]) / elapsed, 1),
                        "workloads_planned_per_s": round((metric_value(text, "fleetscale_hub_workloads_planned_total")
                                                          - planned0[i]) / elapsed, 1),
                        "evaluation_mean_ms": round(metric_value(text, "fleetscale_hub_tick_seconds_sum")
                                                    / max(ticks, 1) * 1000, 1),
                        "evaluation_p99_le_ms": hist_quantile(text, "fleetscale_hub_tick_seconds", 0.99) * 1000,
                    }
                per_hub.append(hub)
            first = per_hub[0]
            out: dict[str, object] = {
                "workloads": total,
                "spokes": spokes,
                "hubs": hubs_count,
                "warmup_rounds": warmup,
                "seconds": round(elapsed, 1),
                "changes": len(lat),
                "unanswered_changes": len(changed_at),
                "latency_p50_ms": round(quantile(lat, 0.5) * 1000, 1),
                "latency_p99_ms": round(quantile(lat, 0.99) * 1000, 1),
            }
            if hubs_count == 1:  # the single hub's figures at the top level, as before --hubs
                out |= {k: v for k, v in first.items() if k != "partitions_held"}
                out["hub_cpu_core_share"] = out.pop("cpu_core_share")
            else:
                out["per_hub"] = per_hub
            # Over the whole span: a killed hub's share is over its shorter life, so the shares do not add.
            total_cpu = sum(c1 - c0 for c1, c0 in zip(cpu1, cpu0, strict=True)) / elapsed
            out["hub_cpu_us_per_workload_s"] = round(total_cpu / total * 1e6, 1)
            if kill_one:
                out["failover"] = {"moved_workloads": len(moved), **{k: round(v, 2) for k, v in failover.items()}}
            return out
        finally:
            hubs.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--spokes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--tick", type=float, default=1.0, help="hub evaluation tick (HUB_TICK_S)")
    p.add_argument("--hubs", type=int, default=1, help="hub processes; above 1 they run sharded (HUB_SHARDED), "
                   f"{PARTITIONS} partitions")
    p.add_argument("--kill-one", action="store_true",
                   help="SIGKILL one hub a third into the measured span and report the failover: its partitions "
                   "re-homed, and the first command for one of its workloads (needs --hubs 2 or more)")
    p.add_argument("--profile", type=Path, help="record the hub with py-spy (collapsed stacks) into "
                   "PATH.<workloads>.txt; needs py-spy, and samples cost the hub a little CPU")
    args = p.parse_args()
    if args.kill_one and args.hubs < 2:
        p.error("--kill-one needs --hubs 2 or more")
    print(f"# cores: {os.cpu_count()}, python {sys.version.split()[0]}, tick {args.tick}s, hubs {args.hubs}")
    for n in args.workloads:
        result = asyncio.run(run_size(n, args.spokes, args.seconds, args.tick,
                                      args.profile and args.profile.with_suffix(f".{n}.txt"),
                                      hubs_count=args.hubs, kill_one=args.kill_one))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
