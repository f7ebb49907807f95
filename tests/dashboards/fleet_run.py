"""A few seconds of a real fleet, scraped: the exposition the dashboards are checked against.

The real hub and two real spokes on simulated clusters run in this process over a real nats-server,
with one enforced and one dry-run policy, so decisions of both modes, commands, results, and the
SLO and cost gauges all happen. One spoke also runs the real telemetry sampler against a DCGM
endpoint that refuses connections, as a spoke with a broken exporter would. Then the hub's and the
spokes' ``/metrics`` are fetched over HTTP, exactly as Prometheus would scrape them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import aiohttp

from hub.service import Hub
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.agent import Spoke
from spoke.backends.simulated import SimulatedBackend
from spoke.settings import SpokeSettings
from spoke.telemetry import Sampler, build_sources
from tests.e2e.conftest import eventually, next_tick, running_hub, running_spoke, write_policies
from tests.e2e.world import driven

NS = "inference"
ENFORCED, DRY_RUN = "llama", "chat"


def world() -> SimWorld:
    def trace(seed: int):  # type: ignore[no-untyped-def]
        return synthetic("constant", duration_s=3600, rate_per_s=4.0, input_tokens=512, output_tokens=64, seed=seed)

    return SimWorld(
        (
            ClusterSpec("alpha", (NodeSpec("a-0", "H100", 8),)),
            ClusterSpec("beta", tuple(NodeSpec(f"b-{i}", "L4", 4) for i in range(2))),
        ),
        (
            WorkloadSpec(NS, ENFORCED, trace(1), cold_start_s=1.0,
                         initial_replicas={("alpha", "H100"): 1, ("beta", "L4"): 1}),
            WorkloadSpec(NS, DRY_RUN, trace(2), cold_start_s=1.0,
                         initial_replicas={("alpha", "H100"): 1, ("beta", "L4"): 1}),
        ),
    )


def policies(path: Path) -> Path:
    # Enforced: min_replicas above what runs, so the first tick scales up and commands flow.
    # Dry-run: a TTFT objective (the SLO panels) and a bound it would act on, but nothing is sent.
    return write_policies(
        path,
        {"id": ENFORCED, "targets": {"workloads": [{"namespace": NS, "name": ENFORCED}]},
         "bounds": {"min_replicas": 3, "max_replicas": 6}, "signals": [{"metric": "queue_per_replica", "target": 50}]},
        {"id": DRY_RUN, "targets": {"workloads": [{"namespace": NS, "name": DRY_RUN}]},
         "bounds": {"min_replicas": 4, "max_replicas": 6}, "signals": [{"metric": "ttft", "target": 0.5}],
         "mode": "dry-run"},
    )


def budgets(path: Path) -> Path:
    """One budget over both workloads, with caps they never reach: its gauges are exported, placement is as without."""
    path.write_text(json.dumps([{"id": "inference", "team": "ml-platform", "workloads": {"namespaces": [NS]},
                                 "caps": {"gpus": {"*": 64}, "cost_per_hour": 10_000}}]))
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def broken_exporter_read(spoke: Spoke) -> None:
    settings = SpokeSettings(cluster_id=spoke.settings.cluster_id, source_timeout_s=1.0,
                             dcgm_endpoints=[f"http://127.0.0.1:{closed_port()}/metrics"])
    sampler = Sampler(settings, spoke.metrics, build_sources(settings))
    try:
        await sampler([])
    finally:
        await sampler.aclose()


def settled(hub: Hub) -> bool:
    """Everything the dashboards show has happened at least once."""
    samples = [s for family in hub.metrics.registry.collect() for s in family.samples]
    return (
        {d.mode for d in hub.decisions.recent()} == {"enforce", "dry-run"}
        and any(s.name == "fleetscale_hub_command_latency_seconds_count" and s.value for s in samples)
        and any(s.name == "fleetscale_hub_slo_attainment_ratio" for s in samples)
    )


async def scrape(nats_url: str, tmp: Path) -> dict[str, str]:
    """``{"hub": text, "alpha": text, "beta": text}`` after the fleet has run until ``settled``."""
    sim = world()
    async with (
        running_hub(nats_url, policy_file=policies(tmp / "policies.yaml"), budget_file=budgets(tmp / "budgets.json"))
        as hub,
        driven(sim, time_scale=10.0),
        running_spoke(nats_url, "alpha", SimulatedBackend(sim, "alpha", window_s=5.0)) as alpha,
        running_spoke(nats_url, "beta", SimulatedBackend(sim, "beta", window_s=5.0)) as beta,
    ):
        await broken_exporter_read(alpha)
        await eventually(lambda: settled(hub), timeout_s=20)
        # One more report from each cluster, and a tick after them, so every series shows the results.
        reports = lambda: [hub.metrics.reports.labels(c)._value.get() for c in ("alpha", "beta")]  # noqa: E731
        before = reports()
        await eventually(lambda: all(now > then for now, then in zip(reports(), before, strict=True)))
        await next_tick(hub)
        async with aiohttp.ClientSession() as http:
            out = {}
            for name, port in (("hub", hub.api_port), ("alpha", alpha.health_port), ("beta", beta.health_port)):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    r.raise_for_status()
                    out[name] = await r.text()
    return out
