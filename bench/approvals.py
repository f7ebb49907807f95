"""Approvals at scale: N workloads of ``mode: approval`` policies, each waiting, then approved over the API.

    PYTHONPATH=. .venv/bin/python bench/approvals.py --workloads 1000 --concurrency 16

A real nats-server and the real hub as its own process (its CPU read from /proc); synthetic spokes in
this process report once a second, every workload busy (40 requests waiting on 1 replica, so each
wants to grow), and answer each command as a spoke does. Reported:

* how long until every workload's decision waits (``GET /api/v1/approvals`` lists all N), and that no
  command went out meanwhile;
* the hub's evaluation time (mean, and p99 from its histogram's buckets over the window) and CPU share
  over a window while N decisions wait and are re-planned, beside the same fleet in ``dry-run`` (the
  same planning with nothing waiting: the difference is the approval bookkeeping's cost);
* approving all N over HTTP, ``--concurrency`` at a time: approvals per second, and per approval the
  latency from sending the POST to its answer and to its command arriving on the bus (a core-NATS
  subscription from outside), p50 and p99;
* commands seen: exactly one per approval is expected, and none after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from bench.hub_throughput import (  # noqa: E402
    NODE_GPUS,
    NODES_PER_SPOKE,
    cpu_seconds,
    metric_value,
    quantile,
    workload_json,
)
from shared.natsserver import NatsServer  # noqa: E402


def policies(total: int, mode: str) -> list[dict]:
    return [{"id": f"w{i}", "targets": {"workloads": [{"namespace": "bench", "name": f"w{i}"}]},
             "bounds": {"min_replicas": 1, "max_replicas": 8},
             "signals": [{"metric": "queue_per_replica", "target": 10}],
             "behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 100, "period_seconds": 1}]}},
             "panic": {"enabled": False}, "mode": mode, "approval": {"ttl_s": 3600}}
            for i in range(total)]


class Spokes:
    """Synthetic spokes: report every workload once a second; answer commands as applied."""

    def __init__(self, nc: nats.NATS, total: int, spokes: int) -> None:
        self.nc, self.total, self.spokes = nc, total, spokes
        self.replicas = [1] * total
        self.commands: dict[str, int] = {}
        self.seen_at: dict[str, float] = {}
        self.round = 0

    async def on_command(self, msg: nats.aio.msg.Msg) -> None:
        cmd = json.loads(msg.data)
        name = cmd["workload"]["name"]
        self.seen_at.setdefault(name, time.perf_counter())
        self.commands[name] = self.commands.get(name, 0) + 1
        self.replicas[int(name[1:])] = sum(cmd["replicas_by_gpu_type"].values())
        result = {"protocol_version": 1, "type": "result", "command_id": cmd["command_id"],
                  "cluster_id": cmd["cluster_id"], "workload": cmd["workload"], "status": "applied",
                  "reason": "applied", "observed_replicas_by_gpu_type": cmd["replicas_by_gpu_type"],
                  "completed_at": datetime.now(UTC).isoformat()}
        await self.nc.publish(f"fleetscale.v1.results.{cmd['cluster_id']}", json.dumps(result).encode())

    async def run(self) -> None:
        per_spoke = self.total // self.spokes
        while True:
            start = time.monotonic()
            for s in range(self.spokes):
                idx = range(s * per_spoke, (s + 1) * per_spoke)
                report = {
                    "protocol_version": 1, "type": "telemetry", "cluster_id": f"spoke-{s}",
                    "sequence": self.round, "sent_at": datetime.now(UTC).isoformat(), "interval_s": 1.0,
                    "inventory": [{"node": f"n{s}-{k}", "gpu_product": "H100", "gpu_type": "H100",
                                   "capacity_gpus": NODE_GPUS, "allocatable_gpus": NODE_GPUS,
                                   "free_gpus": NODE_GPUS} for k in range(NODES_PER_SPOKE)],
                    "workloads": [workload_json(i, True, self.replicas[i]) for i in idx],
                }
                await self.nc.publish(f"fleetscale.v1.telemetry.spoke-{s}", json.dumps(report).encode())
            await self.nc.flush()
            self.round += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))


def buckets(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            out[line.split('le="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def window_quantile(before: str, after: str, name: str, q: float) -> float:
    """The bucket bound under which a share ``q`` of the observations made between two scrapes fall."""
    b0, b1 = buckets(before, name), buckets(after, name)
    delta = sorted(((float("inf") if le == "+Inf" else float(le)), n - b0.get(le, 0.0)) for le, n in b1.items())
    total = delta[-1][1] if delta else 0.0
    return next((le for le, n in delta if total and n >= q * total), float("nan"))


async def pending(http: aiohttp.ClientSession, api: str) -> list[dict]:
    async with http.get(f"{api}/api/v1/approvals") as r:
        r.raise_for_status()
        return list((await r.json())["approvals"])


async def metrics(http: aiohttp.ClientSession, api: str) -> str:
    async with http.get(f"{api}/metrics") as r:
        return await r.text()


async def approve_all(http: aiohttp.ClientSession, api: str, waiting: list[dict], spokes: Spokes,
                      concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    posted: dict[str, float] = {}
    answered: dict[str, float] = {}
    refused: list[int] = []

    async def approve(d: dict) -> None:
        async with gate:
            name = d["workload"].split("/", 1)[1]
            posted[name] = time.perf_counter()
            async with http.post(f"{api}/api/v1/approvals/{d['id']}/approve", json={"comment": "bench"}) as r:
                await r.read()
                answered[name] = time.perf_counter()
                if r.status != 200:
                    refused.append(r.status)

    started = time.perf_counter()
    await asyncio.gather(*(approve(d) for d in waiting))
    elapsed = time.perf_counter() - started
    async with asyncio.timeout(30):
        while len(spokes.seen_at) < len(waiting) - len(refused):
            await asyncio.sleep(0.05)
    answer = sorted(answered[n] - posted[n] for n in posted)
    on_bus = sorted(spokes.seen_at[n] - posted[n] for n in posted if n in spokes.seen_at)
    return {
        "approved": len(waiting) - len(refused), "refused": refused,
        "approvals_per_s": round(len(waiting) / elapsed, 1),
        "answer_p50_ms": round(quantile(answer, 0.5) * 1000, 1),
        "answer_p99_ms": round(quantile(answer, 0.99) * 1000, 1),
        "command_on_bus_p50_ms": round(quantile(on_bus, 0.5) * 1000, 1),
        "command_on_bus_p99_ms": round(quantile(on_bus, 0.99) * 1000, 1),
    }


async def run(total: int, spokes_n: int, concurrency: int, window_s: float, tick: float, mode: str) -> dict:
    """``mode`` dry-run: the same fleet and planning with nothing waiting, for the evaluation's cost alone."""
    with NatsServer() as server, tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / "policies.yaml"
        policy_file.write_text(yaml.safe_dump(policies(total, mode)))
        hub, api = start_hub(server.url, policy_file, tick)
        try:
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, api, hub)
                nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
                spokes = Spokes(nc, total, spokes_n)
                await nc.subscribe("fleetscale.v1.commands.*", cb=spokes.on_command, pending_msgs_limit=10_000_000)
                reporting = asyncio.create_task(spokes.run())
                t0 = time.perf_counter()
                async with asyncio.timeout(120):
                    while mode == "approval" and len(await pending(http, api)) < total:
                        await asyncio.sleep(0.2)
                if mode != "approval":
                    await asyncio.sleep(8.0)  # as long as the approval run takes to have all waiting
                sent_while_waiting = sum(spokes.commands.values())
                # Settle: listing N records (audits and all) kept this process from reporting on time,
                # and a late report makes a cluster stale and the hub re-plan the whole fleet.
                await asyncio.sleep(5.0)
                all_waiting_s = time.perf_counter() - t0

                text0, cpu0, wall0 = await metrics(http, api), cpu_seconds(hub.pid), time.monotonic()
                await asyncio.sleep(window_s)
                text1, cpu1, wall1 = await metrics(http, api), cpu_seconds(hub.pid), time.monotonic()
                ticks = metric_value(text1, "fleetscale_hub_tick_seconds_count") - metric_value(
                    text0, "fleetscale_hub_tick_seconds_count")
                tick_sum = metric_value(text1, "fleetscale_hub_tick_seconds_sum") - metric_value(
                    text0, "fleetscale_hub_tick_seconds_sum")
                waiting = await pending(http, api)  # the same ones: nothing superseded them
                approvals = await approve_all(http, api, waiting, spokes, concurrency) if waiting else {}
                await asyncio.sleep(3.0)
                after = await metrics(http, api)
                reporting.cancel()
                await nc.close()
            counts = list(spokes.commands.values())
            return {
                "mode": mode, "workloads": total, "spokes": spokes_n, "concurrency": concurrency,
                "all_waiting_s": round(all_waiting_s, 1) if mode == "approval" else None,
                "commands_while_waiting": sent_while_waiting,
                "waiting_window_s": round(wall1 - wall0, 1),
                "evaluations_per_s": round(ticks / (wall1 - wall0), 1),
                "evaluation_mean_ms": round(tick_sum / max(ticks, 1) * 1000, 1),
                "evaluation_p99_le_ms": window_quantile(text0, text1, "fleetscale_hub_tick_seconds", 0.99) * 1000,
                "cluster_losses_in_window": metric_value(text1, "fleetscale_hub_cluster_losses_total")
                - metric_value(text0, "fleetscale_hub_cluster_losses_total"),
                "hub_cpu_core_share_waiting": round((cpu1 - cpu0) / (wall1 - wall0), 3),
                **approvals,
                "workloads_with_one_command": sum(1 for c in counts if c == 1),
                "workloads_with_more": sum(1 for c in counts if c > 1),
                "approvals_total_approved": metric_value(after, 'fleetscale_hub_approvals_total{outcome="approved"}'),
                "approvals_total_superseded": metric_value(
                    after, 'fleetscale_hub_approvals_total{outcome="superseded"}'),
                "approvals_pending_after": metric_value(after, "fleetscale_hub_approvals_pending "),
            }
        finally:
            hub.terminate()
            hub.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", type=int, nargs="+", default=[1000])
    p.add_argument("--spokes", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=16, help="approvals in flight at once")
    p.add_argument("--window", type=float, default=10.0, help="seconds measured while every decision waits")
    p.add_argument("--tick", type=float, default=1.0, help="hub evaluation tick (HUB_TICK_S)")
    p.add_argument("--modes", nargs="+", default=["approval", "dry-run"], choices=["approval", "dry-run"],
                   help="dry-run: the same fleet with nothing waiting, to compare the evaluation's cost")
    args = p.parse_args()
    print(f"# cores: {os.cpu_count()}, python {sys.version.split()[0]}, tick {args.tick}s")
    for n in args.workloads:
        for mode in args.modes:
            print(json.dumps(asyncio.run(run(n, args.spokes, args.concurrency, args.window, args.tick, mode))))


if __name__ == "__main__":
    main()
