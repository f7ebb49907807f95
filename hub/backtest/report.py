"""The comparison as people and programs read it: terminal tables, Markdown tables, results.json.

Headline rows are the hindsight plan, Fleetscale's runs, and for each baseline the setting the
frontier picks at Fleetscale's attainment; the frontier table gives each baseline's cheapest setting
per attainment level; every run of every sweep is in results.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.table import Table

from hub.backtest.checks import checks
from hub.backtest.comparison import HINDSIGHT, Comparison
from hub.backtest.fleet_comparison import FleetComparison
from hub.backtest.results import PolicyResult
from hub.backtest.sweep import BASELINES, FLEETSCALE, frontier

COLUMNS = ("policy", "attainment (scored)", "attainment (whole)", "TTFT p95 (scored)", "cost (scored)",
           "cost (whole)", "GPU-hours (whole)", "scale events (whole)")
LEVELS = (0.90, 0.95, 0.99)


def seconds(value: float | None) -> str:
    if value is None:
        return "unfinished"
    if value >= 100:
        return f"{value:,.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s"


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def row(r: PolicyResult) -> tuple[str, ...]:
    return (
        r.name,
        pct(r.scored.attainment),
        pct(r.whole.attainment),
        seconds(r.scored.ttft_p95_s),
        f"${r.scored.cost_usd:,.2f}",
        f"${r.whole.cost_usd:,.2f}",
        f"{r.whole.gpu_hours:.1f}",
        str(r.whole.scale_events),
    )


def headline(c: Comparison) -> list[PolicyResult]:
    out = [r for r in c.results if r.name.startswith(HINDSIGHT)]
    out += [r for r in c.results if r.name.startswith(FLEETSCALE)]
    for family in BASELINES:
        pick, _ = frontier(c.family(family), c.fleetscale.scored.attainment)
        if pick is not None:
            out.append(pick)
    return out


def title(c: Comparison) -> str:
    s, trace = c.scenario, c.scenario.trace
    first = c.results[0]
    initial = ", ".join(f"{n}x {t} in {cl}" for (cl, t), n in sorted(s.initial_fleet().items()))
    return (
        f"{trace.name}: {len(trace):,} requests over {trace.duration_s / 60:.1f} min, TTFT SLO {s.slo_ttft_s:g} s, "
        f"cold start {s.cold_start_s:g} s; scored from {s.scored_from_s:g} s ({first.scored.requests:,} requests, "
        f"{first.scored.unattainable:,} unattainable; whole run {first.whole.unattainable:,} unattainable); "
        f"{c.clipped:,} prompts clipped to the {s.context_tokens:,}-token context; every policy starts from "
        f"{initial or 'nothing'}"
    )


def frontier_rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    levels = [*LEVELS, c.fleetscale.scored.attainment]
    header = ["baseline", *[f">= {pct(a)}" + (" (Fleetscale)" if i == len(LEVELS) else "")
                            for i, a in enumerate(levels)]]
    rows = []
    for family in (*BASELINES, FLEETSCALE):
        cells = [family]
        for level in levels:
            pick, reached = frontier(c.family(family), level)
            if pick is None:
                cells.append("-")
            elif reached:
                cells.append(f"{pick.knob or pick.name}: ${pick.scored.cost_usd:,.2f}")
            else:
                cells.append(f"none; best {pct(pick.scored.attainment)} ({pick.knob or pick.name}, "
                             f"${pick.scored.cost_usd:,.2f})")
        rows.append(cells)
    return header, rows


def print_table(c: Comparison, file: IO[str] | None = None, *, replays: int | None = None) -> None:
    """The comparison's tables, checks and notes; ``replays`` overrides the count of runs (a fleet's views
    share the fleet's replays)."""
    console = Console(file=file, width=160)
    table = Table(title=title(c), title_justify="left")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i == 0 else "right")
    for r in headline(c):
        table.add_row(*row(r))
    console.print(table)
    for r in headline(c):
        console.print(f"  [bold]{r.name}[/]: {r.description}", highlight=False)
    h = c.hindsight.model
    console.print(f"  capacity-model plan (analytic, before replay raises): {pct(h.scored.attainment)} in its replay, "
                  f"${h.scored.cost_usd:,.2f} scored", highlight=False)
    header, rows = frontier_rows(c)
    ft = Table(title=f"Cheapest setting per attainment (scored window, {c.grid.name} grid)", title_justify="left")
    for name in header:
        ft.add_column(name)
    for cells in rows:
        ft.add_row(*cells)
    console.print(ft)
    for check in checks(c):
        console.print(check.line(), highlight=False, markup=False)
    for note in c.notes:
        console.print(f"  note: {note}", highlight=False)
    console.print(f"  simulated {runs(c) if replays is None else replays} runs in {c.wall_s:.1f} s wall",
                  highlight=False)


def print_fleet(fc: FleetComparison, file: IO[str] | None = None) -> None:
    """The fleet in total, then each workload (its requests, its share of the bill)."""
    console = Console(file=file, width=160)
    keys = ", ".join(s.key for s in fc.fleet.workloads)
    console.print(f"[bold]{fc.fleet.name}: the fleet in total[/] ({keys} sharing the GPUs)", highlight=False)
    print_table(fc.total, file, replays=fc.replays)
    for s, c in zip(fc.fleet.workloads, fc.workloads, strict=True):
        console.print(f"\n[bold]{fc.fleet.name}: workload {s.key}[/]", highlight=False)
        print_table(c, file, replays=fc.replays)


def runs(c: Comparison) -> int:
    """Replays done: every result, the window plan's raises, less the reference when it repeats a run."""
    repeated = 1 if c.hindsight.windows is not None else 0
    return len(c.results) + c.hindsight.rounds - repeated


def markdown_table(c: Comparison) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in headline(c)]
    return "\n".join(lines)


def markdown_frontier(c: Comparison) -> str:
    header, rows = frontier_rows(c)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
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


def _with_checks(c: Comparison) -> dict[str, object]:
    data = c.to_json()
    data["checks"] = [{"name": k.name, "pass": k.ok, "figures": k.figures} for k in checks(c)]
    return data


def write_json(c: Comparison, path: Path) -> None:
    path.write_text(json.dumps(_finite(_with_checks(c)), indent=2) + "\n")


def write_fleet_json(fc: FleetComparison, path: Path) -> None:
    """The fleet in total and each workload, each with its runs and checks."""
    data = fc.to_json()
    data["total"] = _with_checks(fc.total)
    data["per_workload"] = {s.key: _with_checks(c) for s, c in zip(fc.fleet.workloads, fc.workloads, strict=True)}
    path.write_text(json.dumps(_finite(data), indent=2) + "\n")
