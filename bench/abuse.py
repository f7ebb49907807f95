"""Abuse: hostile telemetry, results and API bodies against a real hub and nats-server on loopback.

    PYTHONPATH=$PWD .venv/bin/python bench/abuse.py --telemetry 100000 --results 2000 --api 20000

It starts a real nats-server and the real hub as its own process (so its memory can be read from
/proc), with a dry-run queue policy for two good clusters whose load flips every second, so that the
hub has a new decision to make every second for as long as it keeps working. Then, in turn:

1. ``--telemetry`` hostile telemetry messages, as fast as this process can publish them: every
   poison message of issue 13 (naive and future ``sent_at``, integers above 2^64, ``Infinity``,
   ``interval_s`` 1e300, ``ready_replicas`` 3e7, numeric strings, a report on another cluster's
   subject) plus not-JSON, over-long strings and a flood of forged cluster ids;
2. ``--results`` hostile command results over JetStream (unknown command ids, another cluster's
   subject, dated in the future);
3. ``--api`` hostile API bodies on the policy and seed endpoints (NaN and infinity as numbers and
   strings, integers above 2^64, wrong Content-Type, not JSON, arrays, deep nesting, long strings).

Reported (one JSON object, plus a readable summary): the hub alive at the end and its exit code if
not; decisions for the good clusters before, during and after; the hub's RSS before, at its peak and
after; every message the hub counted as dropped, by reason; the API's answers by status (a 5xx or a
2xx to a hostile body is a failure). Bounded in count (the arguments) and time (``--max-seconds``
per phase).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import nats
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hub_process import wait_ready  # noqa: E402
from shared.natsserver import NatsServer, free_port  # noqa: E402


class MonitoredNatsServer(NatsServer):
    """The test server plus its monitoring port, to read the server's own slow-consumer count."""

    def __init__(self) -> None:
        super().__init__()
        self.monitor_port = free_port()

    def start(self, timeout_s: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-a", self.host, "-p", str(self.port), "-m", str(self.monitor_port), "-js",
             "-sd", self.store_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

GOOD = ("good-a", "good-b")
BIG = 2**64 + 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(cluster: str, *, waiting: float = 0.0, seq: int = 0, **kw: Any) -> dict[str, Any]:
    r = {
        "protocol_version": 1, "type": "telemetry", "cluster_id": cluster, "sequence": seq,
        "sent_at": datetime.now(UTC).isoformat(), "interval_s": 0.5, "spoke_version": "bench",
        "inventory": [{"node": f"{cluster}-n1", "gpu_product": "NVIDIA-H100-80GB-HBM3", "gpu_type": "H100",
                       "capacity_gpus": 8, "allocatable_gpus": 8, "free_gpus": 6}],
        "workloads": [{"workload": {"namespace": "bench", "name": cluster}, "desired_replicas": 2,
                       "ready_replicas": 2, "gpus_per_replica": 1,
                       "variants": [{"gpu_type": "H100", "desired_replicas": 2, "ready_replicas": 2}],
                       "samples": {"requests_waiting": waiting, "requests_running": 2.0}}],
    }
    r.update(kw)
    return r


def _workload(**fields: Any) -> dict[str, Any]:
    """A report from a forged cluster about a good workload, with a poisoned field."""
    r = report("evil")
    r["workloads"][0]["workload"]["name"] = "good-a"
    r["workloads"][0].update(fields)
    return r


def hostile_telemetry(n: int, rng: random.Random) -> tuple[str, bytes]:
    """The n-th hostile message: (subject, payload)."""
    kind = n % 16
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    if kind == 0:
        return "fleetscale.v1.telemetry.evil", json.dumps(report("evil", sent_at=naive)).encode()
    if kind == 1:
        return "fleetscale.v1.telemetry.evil", json.dumps(_workload(desired_replicas=BIG)).encode()
    if kind == 2:
        return "fleetscale.v1.telemetry.evil", json.dumps(_workload(ready_replicas=3e7)).encode()
    if kind == 3:
        raw = json.dumps(_workload(samples={"requests_waiting": 7.25})).encode()
        return "fleetscale.v1.telemetry.evil", raw.replace(b"7.25", b"Infinity")
    if kind == 4:
        return "fleetscale.v1.telemetry.evil", json.dumps(report("evil", interval_s=1e300)).encode()
    if kind == 5:  # the good cluster's own subject and id, dated 2099
        return "fleetscale.v1.telemetry.good-a", json.dumps(
            report("good-a", waiting=400.0, sent_at="2099-01-01T00:00:00Z", seq=10**9)).encode()
    if kind == 6:  # a report for good-b, on good-a's subject
        return "fleetscale.v1.telemetry.good-a", json.dumps(report("good-b", waiting=400.0)).encode()
    if kind == 7:
        return "fleetscale.v1.telemetry.evil", b"{not json" + bytes(rng.randrange(256) for _ in range(32))
    if kind == 8:
        return "fleetscale.v1.telemetry.evil", json.dumps(report("evil", sent_at=1_795_000_000)).encode()
    if kind == 9:
        return "fleetscale.v1.telemetry.evil", json.dumps(_workload(gpus_per_replica="3")).encode()
    if kind == 10:
        return "fleetscale.v1.telemetry.evil", json.dumps(report("evil", spoke_version="x" * 100_000)).encode()
    if kind == 11:
        return "fleetscale.v1.telemetry.evil", json.dumps(report("evil", inventory=[
            {"node": "x", "gpu_product": "p", "gpu_type": "H100", "capacity_gpus": BIG, "allocatable_gpus": 1,
             "free_gpus": 1}])).encode()
    # 12-15: a valid report from a new, forged cluster id: the cluster flood
    cluster = f"forged-{n}"
    return f"fleetscale.v1.telemetry.{cluster}", json.dumps(report(cluster)).encode()


def hostile_body(n: int) -> tuple[str, str, bytes, str]:
    """The n-th hostile API request: (method, path, body, content type)."""
    base = {"id": f"x{n}", "targets": {"workloads": [{"namespace": "bench", "name": f"w{n}"}]},
            "bounds": {"min_replicas": 1, "max_replicas": 4}, "signals": [{"metric": "queue_per_replica", "target": 2}]}
    seed = {"workload_name": f"w{n}", "workload_namespace": "bench", "workload_type": "Deployment",
            "min_replicas": 1, "max_replicas": 4, "target_cpu_percent": 70}
    nan = ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e999"][n % 7]
    kind = n % 14
    js = "application/json"
    if kind == 0:
        body = base | {"signals": [{"metric": "ttft", "target": nan}]}
        return "POST", "/api/v1/policies", json.dumps(body).encode(), js
    if kind == 1:
        body = base | {"placement": {"prices": {"*": {"H100": nan}}}}
        return "POST", "/api/v1/policies", json.dumps(body).encode(), js
    if kind == 2:
        body = base | {"signals": [{"metric": "ttft", "target": 1, "capacity_per_replica": {"H100": nan}}]}
        return "POST", "/api/v1/policies", json.dumps(body).encode(), js
    if kind == 3:
        return "POST", "/api/v1/policies", json.dumps(base | {"panic": {"panic_threshold_percent": nan}}).encode(), js
    if kind == 4:  # a bare number literal Python writes and strict JSON does not have
        raw = json.dumps(base | {"signals": [{"metric": "ttft", "target": 7.25}]}).encode()
        return "POST", "/api/v1/policies", raw.replace(b"7.25", b"NaN"), js
    if kind == 5:
        return "POST", "/api/v1/policies", json.dumps(base | {"bounds": {"min_replicas": 1,
                                                                          "max_replicas": BIG}}).encode(), js
    if kind == 6:
        return "POST", "/api/v1/policies", json.dumps(base).encode(), "text/plain"
    if kind == 7:
        return "POST", "/api/v1/policies", b"{not json", js
    if kind == 8:
        return "POST", "/api/v1/policies", json.dumps([base]).encode(), js
    if kind == 9:
        return "POST", "/api/v1/policies", (b"[" * 5000) + (b"]" * 5000), js
    if kind == 10:
        return "POST", "/api/v1/policies", json.dumps(base | {"id": "x" * 10_000}).encode(), js
    if kind == 11:
        return "POST", "/api/v1/autoscaling", json.dumps(seed | {"max_replicas": BIG}).encode(), js
    if kind == 12:
        return "POST", "/api/v1/autoscaling", json.dumps(seed | {"target_cpu_percent": nan}).encode(), js
    form = "application/x-www-form-urlencoded"
    return "PUT", f"/api/v1/policies/x{n}", json.dumps(base | {"revision": 1}).encode(), form


class GoodClusters:
    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.seq = 0

    async def run(self) -> None:
        """Report every 0.25 s; flip the queue every second so each second asks for a new decision."""
        while True:
            self.seq += 1
            waiting = 40.0 if (self.seq // 4) % 2 else 0.0
            for cluster in GOOD:
                payload = json.dumps(report(cluster, waiting=waiting, seq=self.seq)).encode()
                await self.nc.publish(f"fleetscale.v1.telemetry.{cluster}", payload)
            await asyncio.sleep(0.25)


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("fleetscale_hub_") and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            if any(name.startswith(p) for p in ("fleetscale_hub_refused_messages_total",
                                                 "fleetscale_hub_malformed_messages_total",
                                                 "fleetscale_hub_nats_slow_consumer_drops",
                                                 "fleetscale_hub_clusters ", "fleetscale_hub_clusters{",
                                                 "fleetscale_hub_tick_failures_total")):
                out[name] = float(value)
            elif name.startswith("fleetscale_hub_reports_total"):
                key = "reports_accepted_good" if any(f'"{c}"' in name for c in GOOD) else "reports_accepted_other"
                out[key] = out.get(key, 0.0) + float(value)
    return out


async def decisions(http: aiohttp.ClientSession, api: str) -> int:
    total = 0
    for cluster in GOOD:
        async with http.get(f"{api}/api/v1/decisions", params={"workload": f"bench/{cluster}", "limit": "10000"}) as r:
            total += len((await r.json())["decisions"])
    return total


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_mb(pid))
        except OSError:
            return
        await asyncio.sleep(0.2)


async def phase_telemetry(nc: nats.NATS, n: int, max_s: float) -> tuple[int, float]:
    rng = random.Random(13)
    started = time.perf_counter()
    sent = 0
    for i in range(n):
        subject, payload = hostile_telemetry(i, rng)
        await nc.publish(subject, payload)
        sent += 1
        if i % 1000 == 999:
            await nc.flush()
            if time.perf_counter() - started > max_s:
                break
    await nc.flush()
    return sent, time.perf_counter() - started


async def phase_results(nc: nats.NATS, n: int) -> int:
    js = nc.jetstream()
    sent = 0
    for i in range(n):
        kind = i % 3
        cluster, subject_cluster = "good-a", "good-a"
        completed = datetime.now(UTC)
        if kind == 1:
            subject_cluster = "good-b"  # another cluster's subject
        if kind == 2:
            completed += timedelta(days=365)
        body = {"protocol_version": 1, "type": "result", "command_id": str(uuid.uuid4()), "cluster_id": cluster,
                "workload": {"namespace": "bench", "name": "good-a"}, "status": "applied", "reason": "applied",
                "observed_replicas_by_gpu_type": {"H100": 24}, "completed_at": completed.isoformat()}
        await js.publish(f"fleetscale.v1.results.{subject_cluster}", json.dumps(body).encode(),
                         headers={"Nats-Msg-Id": f"result:{body['command_id']}"})
        sent += 1
    return sent


async def phase_api(http: aiohttp.ClientSession, api: str, n: int, max_s: float) -> tuple[Counter[int], float]:
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            if time.perf_counter() - started > max_s:
                return
            method, path, body, content_type = hostile_body(i)
            try:
                async with http.request(method, f"{api}{path}", data=body,
                                        headers={"Content-Type": content_type}) as r:
                    await r.read()
                    statuses[r.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1  # no answer at all

    await asyncio.gather(*(worker() for _ in range(16)))
    return statuses, time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with MonitoredNatsServer() as server, tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / "policies.yaml"
        policy_file.write_text(yaml.safe_dump([
            {"id": cluster, "mode": "dry-run", "targets": {"workloads": [{"namespace": "bench", "name": cluster}]},
             "bounds": {"min_replicas": 1, "max_replicas": 8},
             "signals": [{"metric": "queue_per_replica", "target": 2}],
             "behavior": {"scale_down": {"stabilization_window_seconds": 0}}, "panic": {"enabled": False}}
            for cluster in GOOD]))
        port = free_port()
        env = os.environ | {"HUB_NATS_URL": server.url, "HUB_API_PORT": str(port), "HUB_TICK_S": "0.5",
                            "HUB_POLICY_FILE": str(policy_file), "HUB_LOG_LEVEL": "ERROR",
                            "HUB_CLUSTER_RETENTION_S": str(args.retention), "PYTHONPATH": str(ROOT)}
        hub = subprocess.Popen([sys.executable, "-m", "hub"], cwd=ROOT, env=env)
        api = f"http://127.0.0.1:{port}"
        out: dict[str, Any] = {"cores": os.cpu_count()}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                await wait_ready(http, api, hub)
                nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
                good = GoodClusters(nc)
                reporter = asyncio.create_task(good.run())
                await asyncio.sleep(args.settle)
                out["rss_before_mb"] = round(rss_mb(hub.pid), 1)
                d0 = await decisions(http, api)
                peak = [out["rss_before_mb"]]
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_rss(hub.pid, peak, stop))

                sent, took = await phase_telemetry(nc, args.telemetry, args.max_seconds)
                out["telemetry"] = {"sent": sent, "seconds": round(took, 1), "per_second": round(sent / took)}
                d1 = await decisions(http, api)
                results = await phase_results(nc, args.results)
                out["results"] = {"sent": results}
                statuses, took = await phase_api(http, api, args.api, args.max_seconds)
                out["api"] = {"sent": sum(statuses.values()), "seconds": round(took, 1),
                              "by_status": dict(sorted(statuses.items())),
                              "server_errors": sum(v for k, v in statuses.items() if k >= 500 or k == 0),
                              "accepted": sum(v for k, v in statuses.items() if 200 <= k < 300)}
                d2 = await decisions(http, api)
                await asyncio.sleep(args.settle)  # the tail of the flood drains; forged clusters age out
                d3 = await decisions(http, api)
                stop.set()
                await sampler
                out["rss_peak_mb"] = round(peak[0], 1)
                out["rss_after_mb"] = round(rss_mb(hub.pid), 1)
                out["decisions_good"] = {"before_flood": d0, "after_telemetry": d1, "after_api": d2,
                                         "after_settle": d3}
                async with http.get(f"http://127.0.0.1:{server.monitor_port}/varz") as r:
                    varz = await r.json()
                # What nats-server itself dropped: it cuts off a client whose unread backlog passes
                # max_pending (64 MiB), and the messages queued for it are lost before the hub sees them.
                out["nats_server"] = {"slow_consumers": varz.get("slow_consumers"),
                                      "max_pending_bytes": varz.get("max_pending")}
                async with http.get(f"{api}/metrics") as r:
                    text = await r.text()
                    out["metrics_bytes"] = len(text)
                    out["hub_counters"] = parse_metrics(text)
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
                await nc.close()
        finally:
            out["hub_alive"] = hub.poll() is None
            out["hub_exit_code"] = hub.returncode
            hub.terminate()
            hub.wait(15)
        return out


def summary(out: dict[str, Any]) -> str:
    c = out.get("hub_counters", {})
    dropped = sum(v for k, v in c.items() if k.startswith(("fleetscale_hub_refused", "fleetscale_hub_malformed",
                                                           "fleetscale_hub_nats_slow")))
    d = out.get("decisions_good", {})
    return "\n".join([
        f"hub alive: {out['hub_alive']} (exit code {out['hub_exit_code']}), tick failures: "
        f"{c.get('fleetscale_hub_tick_failures_total', 'n/a')}",
        f"telemetry: {out['telemetry']['sent']} hostile messages in {out['telemetry']['seconds']} s; "
        f"results: {out['results']['sent']}; api: {out['api']['sent']} bodies in {out['api']['seconds']} s "
        f"-> {out['api']['by_status']} (5xx or no answer: {out['api']['server_errors']}, "
        f"2xx: {out['api']['accepted']})",
        f"decisions for the good clusters: {d.get('before_flood')} before, {d.get('after_telemetry')} after the "
        f"telemetry flood, {d.get('after_api')} after the API flood, {d.get('after_settle')} after settling",
        f"hub RSS: {out['rss_before_mb']} MB before, {out['rss_peak_mb']} MB peak, {out['rss_after_mb']} MB after; "
        f"/metrics {out['metrics_bytes']} bytes",
        f"dropped and counted by the hub: {int(dropped)}; nats-server slow-consumer cut-offs: "
        f"{out.get('nats_server', {}).get('slow_consumers')}",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--telemetry", type=int, default=100_000, help="hostile telemetry messages")
    p.add_argument("--results", type=int, default=2_000, help="hostile command results (JetStream)")
    p.add_argument("--api", type=int, default=20_000, help="hostile API bodies")
    p.add_argument("--max-seconds", type=float, default=120.0, help="bound on each flood phase")
    p.add_argument("--settle", type=float, default=5.0, help="seconds before measuring, and after the floods")
    p.add_argument("--retention", type=float, default=10.0, help="HUB_CLUSTER_RETENTION_S for the run")
    args = p.parse_args()
    out = asyncio.run(run(args))
    print(json.dumps(out, indent=1))
    print(summary(out))
    ok = out["hub_alive"] and out["api"]["server_errors"] == 0 and out["api"]["accepted"] == 0 \
        and out["decisions_good"]["after_settle"] > out["decisions_good"]["after_telemetry"] \
        > out["decisions_good"]["before_flood"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
