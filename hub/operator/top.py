"""``fleetscale top``: a live terminal view of the fleet, refreshed from the API.

It shows what ``status`` shows, plus the newest decisions, redrawn every ``--interval`` seconds
with rich's ``Live`` (already the demo's terminal view). ``--iterations N`` stops after N frames,
for scripts and tests; Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from hub.operator.client import HubClient
from hub.operator.output import Column, cell
from hub.operator.verbs import CLUSTER_COLUMNS, DECISION_COLUMNS, WORKLOAD_COLUMNS


def _table(title: str, rows: list[dict[str, Any]], columns: list[Column]) -> Table:
    t = Table(title=title, title_justify="left", expand=False)
    for name, _ in columns:
        t.add_column(name.upper())
    for row in rows:
        t.add_row(*(cell(get(row)) for _, get in columns))
    return t


async def frame(hub: HubClient, decisions: int) -> Group:
    clusters = (await hub.get("/api/v1/clusters"))["clusters"]
    workloads = (await hub.get("/api/v1/workloads"))["workloads"]
    recent = (await hub.get("/api/v1/decisions", limit=str(decisions)))["decisions"]
    fresh = sum(not c.get("stale") for c in clusters)
    return Group(
        f"hub {hub.connection.url} — {fresh}/{len(clusters)} clusters fresh, {len(workloads)} workloads",
        _table("Clusters", clusters, CLUSTER_COLUMNS),
        _table("Workloads", workloads, WORKLOAD_COLUMNS),
        _table("Newest decisions", recent, DECISION_COLUMNS),
    )


async def top(args: argparse.Namespace, hub: HubClient) -> str:
    console = Console()
    shown = 0
    with Live(await frame(hub, args.decisions), console=console, auto_refresh=False,
              screen=console.is_terminal) as live:
        shown += 1
        while args.iterations is None or shown < args.iterations:
            await asyncio.sleep(args.interval)
            live.update(await frame(hub, args.decisions), refresh=True)
            shown += 1
    return ""
