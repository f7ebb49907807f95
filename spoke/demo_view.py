"""The demo's live terminal view and closing summary, read from the hub's API like any client would.

It polls ``/api/v1/clusters``, ``/api/v1/workloads`` and ``/api/v1/decisions`` once a second and
renders them with rich; it keeps the decisions it has seen, so the summary can count scale-ups and
scale-downs that spokes actually applied. Request-level figures (TTFT, SLO attainment, cost) come
from the simulated world, which is the only place that knows every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import aiohttp
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from shared.simulation import SimWorld
from shared.simulation.sampling import percentile
from spoke.agent import Spoke

logger = logging.getLogger(__name__)
SLO_TTFT_S = 2.0


class DemoView:
    def __init__(
        self, api: str, world: SimWorld, spokes: Mapping[str, Spoke], *, time_scale: float, live: bool = True
    ) -> None:
        self.api = api
        self.world = world
        self.spokes = spokes
        self.time_scale = time_scale
        self.live = live
        self.decisions: dict[str, dict[str, Any]] = {}
        self.clusters: list[dict[str, Any]] = []
        self.workloads: list[dict[str, Any]] = []
        self.peak_by_type: Counter[str] = Counter()
        self.polls = 0
        self.poll_errors = 0
        self.healthy = True

    async def poll(self, session: aiohttp.ClientSession) -> None:
        async def get(path: str) -> Any:
            async with session.get(f"{self.api}{path}", timeout=aiohttp.ClientTimeout(total=2)) as r:
                r.raise_for_status()
                return await r.json()

        self.clusters = (await get("/api/v1/clusters"))["clusters"]
        self.workloads = (await get("/api/v1/workloads"))["workloads"]
        for d in (await get("/api/v1/decisions?limit=500"))["decisions"]:
            self.decisions[d["id"]] = d
        by_type: Counter[str] = Counter()
        for w in self.workloads:
            for key, n in w["placement"].items():
                by_type[key.split("/", 1)[1]] += n
        for t, n in by_type.items():
            self.peak_by_type[t] = max(self.peak_by_type[t], n)
        self.polls += 1

    def render(self) -> Group:
        header = Table.grid()
        header.add_row(
            f"[b]Fleetscale demo[/b]  sim t={self.world.now_s:7.0f}s  ×{self.time_scale:g}  hub {self.api}"
        )
        clusters = Table(title="clusters", expand=True)
        for col in ("cluster", "state", "free GPUs", "age s"):
            clusters.add_column(col)
        for c in self.clusters:
            state = "[red]stale[/red]" if c["stale"] else "[green]fresh[/green]"
            free = ", ".join(f"{t}:{n}" for t, n in sorted(c["free_gpus"].items()))
            clusters.add_row(c["cluster_id"], state, free, f"{c['age_s']:.1f}")
        work = Table(title="workloads", expand=True)
        for col in ("workload", "cluster", "replicas by GPU (ready/desired)", "GPU util", "TTFT p95", "queue",
                    "last decision"):
            work.add_column(col)
        for w in self.workloads:
            last = w.get("last_decision") or {}
            last_txt = f"{last.get('action', '')} → {last.get('desired_replicas', '')}: {last.get('reason', '')}"
            for cid, c in w["clusters"].items():
                variants = " ".join(f"{v['gpu_type']} {v['ready_replicas']}/{v['desired_replicas']}"
                                    for v in c["variants"])
                s = c["samples"]
                util = s.get("gpu_utilization_ratio")
                ttft = (s.get("ttft") or {}).get("p95_s")
                waiting = s.get("requests_waiting")
                work.add_row(
                    w["workload"], cid, variants or "-",
                    "missing" if util is None else f"{util:.0%}",
                    "missing" if ttft is None else f"{ttft:.2f}s",
                    "missing" if waiting is None else f"{waiting:.0f}",
                    last_txt[:60],
                )
                last_txt = ""
        return Group(header, clusters, work)

    async def run(self) -> None:
        console = Console()
        async with aiohttp.ClientSession() as session:
            live_ctx = Live(self.render(), console=console, refresh_per_second=2) if self.live else None
            with live_ctx if live_ctx is not None else contextlib.nullcontext():
                while True:
                    try:
                        await self.poll(session)
                    except (aiohttp.ClientError, TimeoutError) as e:
                        self.poll_errors += 1
                        if self.poll_errors > 10 and self.polls == 0:
                            self.healthy = False
                        logger.warning("hub API poll failed: %r", e)
                    if live_ctx is not None:
                        live_ctx.update(self.render())
                    elif self.polls % 10 == 1:
                        placement = {w["workload"]: w["placement"] for w in self.workloads}
                        print(f"t={self.world.now_s:.0f}s placement={placement}", flush=True)
                    await asyncio.sleep(1.0)

    def applied(self, action: str) -> int:
        return sum(
            1
            for d in self.decisions.values()
            if d["action"] == action and any(r.get("status") == "applied" for r in d["results"].values())
        )

    def summary(self) -> str:
        done = self.world.completed_requests()
        ttfts = sorted(r.ttft_s for r in done if r.ttft_s is not None)
        within = sum(1 for t in ttfts if t <= SLO_TTFT_S)
        gpu_h = sum(self.world.gpu_seconds().values()) / 3600.0
        actions = Counter(d["action"] for d in self.decisions.values())
        applied_cmds = sum(s.executor.applied for s in self.spokes.values())
        lines = [
            "",
            "Fleetscale demo summary",
            f"  simulated time        {self.world.now_s:.0f} s (time scale ×{self.time_scale:g})",
            f"  decisions             {dict(actions)}",
            f"  scale-ups applied     {self.applied('scale_up')}",
            f"  scale-downs applied   {self.applied('scale_down')}",
            f"  commands applied      {applied_cmds} (by spokes, over JetStream)",
            f"  peak replicas by GPU  {dict(self.peak_by_type)}",
            f"  GPU types used        {len([t for t, n in self.peak_by_type.items() if n > 0])}",
            f"  requests completed    {len(done)}",
        ]
        if ttfts:
            lines += [
                f"  TTFT p50/p95/p99      {percentile(ttfts, 50):.2f} / {percentile(ttfts, 95):.2f} / "
                f"{percentile(ttfts, 99):.2f} s",
                f"  TTFT <= {SLO_TTFT_S:g} s          {within / len(ttfts):.1%} of requests",
            ]
        lines += [
            f"  GPU-hours             {gpu_h:.2f}",
            f"  cost                  ${self.world.cost():.2f} (on-demand list prices)",
        ]
        return "\n".join(lines)
