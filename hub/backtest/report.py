"""The comparison as people and programs read it: a terminal table, a Markdown table, results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.table import Table

from hub.backtest.comparison import Comparison
from hub.backtest.results import PolicyResult

COLUMNS = ("policy", "SLO attainment", "TTFT p50", "TTFT p95", "TTFT p99", "GPU-hours", "cost", "scale events")


def seconds(value: float | None) -> str:
    if value is None:
        return "unfinished"
    if value >= 100:
        return f"{value:,.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s"


def row(r: PolicyResult) -> tuple[str, ...]:
    return (
        r.name,
        f"{100 * r.attainment:.2f} %",
        seconds(r.ttft_p50_s),
        seconds(r.ttft_p95_s),
        seconds(r.ttft_p99_s),
        f"{r.gpu_hours:.1f}",
        f"${r.cost_usd:,.2f}",
        str(r.scale_events),
    )


def title(c: Comparison) -> str:
    trace = c.scenario.trace
    return (
        f"{trace.name}: {len(trace):,} requests over {trace.duration_s / 60:.1f} min, "
        f"TTFT SLO {c.scenario.slo_ttft_s:g} s, cold start {c.scenario.cold_start_s:g} s"
    )


def print_table(c: Comparison, file: IO[str] | None = None) -> None:
    console = Console(file=file, width=140)
    table = Table(title=title(c), title_justify="left")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i == 0 else "right")
    for r in c.results:
        table.add_row(*row(r))
    console.print(table)
    for r in c.results:
        console.print(f"  [bold]{r.name}[/]: {r.description}", highlight=False)
        for note in r.notes:
            console.print(f"      {note}", highlight=False)
    for note in c.notes:
        console.print(f"  note: {note}", highlight=False)
    console.print(f"  simulated {len(c.results)} policies in {c.wall_s:.1f} s wall", highlight=False)


def markdown_table(c: Comparison) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in c.results]
    return "\n".join(lines)


def _finite(value: object) -> object:
    """JSON has no infinity or NaN; a non-finite number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(c: Comparison, path: Path) -> None:
    path.write_text(json.dumps(_finite(c.to_json()), indent=2) + "\n")
