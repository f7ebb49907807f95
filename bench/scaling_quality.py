"""Scaling quality: Fleetscale against swept baselines and the hindsight plan, on every trace.

Usage, from the repository root::

    PYTHONPATH=. python bench/scaling_quality.py [--traces DIR] [--synthetic NAME ...] [--fine] [--jobs N]
        [--out docs/scaling-quality.md]

Default traces: the bundled ones (``shared/simulation/traces``) and every case of the synthetic
suite (``shared.simulation.suite``, seed 0), the fleet case ``multi-model`` (several workloads sharing
the GPUs; ``hub.backtest.fleet_comparison``) included: its section has the fleet in total, then
each workload. ``--no-bundled --synthetic multi-model --out FILE`` runs that case alone. For each
it runs ``fleetscale simulate``'s comparison with the embedded default policy and writes the
headline table, each baseline's cheapest setting per attainment level and issue 10's checks
(PASS/FAIL with the figures, in the scored window; ``hub.backtest.checks``) to a Markdown file.
``--jobs`` runs traces in parallel processes (worth it only with idle cores).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from hub.backtest.checks import checks
from hub.backtest.comparison import Comparison, compare
from hub.backtest.fleet_comparison import FleetComparison, compare_fleet
from hub.backtest.policy import default_policy
from hub.backtest.report import headline, markdown_frontier, markdown_table, pct, title
from hub.backtest.report import runs as replays
from hub.backtest.scenario import FleetScenario, Scenario
from hub.backtest.sweep import COARSE, FINE, Grid
from shared.simulation import Trace, load_trace
from shared.simulation.suite import DEFAULT_DURATION_S, fleet_names, fleet_traces, suite_trace
from shared.simulation.suite import names as suite_names
from shared.simulation.trace import TRACES_DIR

FLEET_CHECKS = (
    "Several workloads share the fleet's GPUs (a replica of one holds GPUs the others cannot take). Every check is "
    "evaluated for the fleet in total (every workload's requests, the whole bill) and for each workload (its "
    "requests, the GPU-seconds its own replicas held). What changes with several workloads: the hindsight plan is "
    "perfect foresight per workload with the pools shared, replayed together and raised until *each* workload "
    "reaches 99 % in its own replay; each baseline runs one controller per workload (a fixed fleet, or an HPA or "
    "KEDA on one Deployment each), every workload at the same setting in one replay, and the `-per-workload` run "
    "replays each workload at its own best setting (the cheapest reaching that workload's Fleetscale attainment), "
    "so in the fleet's table a baseline's frontier includes that combination; Fleetscale plans every workload in "
    "one solve. In the fleet's runaway check the floor is one replica of the cheapest type for the whole fleet."
)


def section(c: Comparison, cpu_s: float | None, heading: str | None = None, level: str = "##") -> str:
    """One comparison's Markdown; ``cpu_s`` None leaves out the runs line (a fleet's views share it)."""
    lines = [f"{level} {heading or c.scenario.trace.name}", "", title(c) + ".", "", markdown_table(c), ""]
    lines += [f"* **{r.name}**: {r.description}" for r in headline(c)]
    m = c.hindsight.model
    lines += ["", f"Capacity-model plan (the analytic first plan, before replay raises; not the reference): "
              f"{pct(m.scored.attainment)} in its own replay, ${m.scored.cost_usd:,.2f} scored.", ""]
    lines += [f"Cheapest setting per attainment level (scored window, {c.grid.name} grid):", "", markdown_frontier(c)]
    lines += ["", "| check | result | figures |", "|---|---|---|"]
    lines += [f"| {k.name} | **{'PASS' if k.ok else 'FAIL'}** | {k.figures} |" for k in checks(c)]
    lines += [""] + [f"Note: {n}." for n in c.notes]
    if cpu_s is not None:
        lines += ["", f"Simulated {replays(c)} runs in {c.wall_s:.1f} s wall, {cpu_s:.1f} s CPU.", ""]
    return "\n".join(lines)


def fleet_section(fc: FleetComparison, cpu_s: float) -> str:
    """The fleet in total, then each workload, each with the same tables and checks as a single trace."""
    keys = ", ".join(f"`{s.key}` ({s.trace.name}, {len(s.trace):,} requests)" for s in fc.fleet.workloads)
    lines = [f"## {fc.fleet.name}", "", f"Workloads: {keys}. {FLEET_CHECKS}", ""]
    lines += [section(fc.total, None, "The fleet in total", "###")]
    lines += [section(c, None, f"Workload {s.key}", "###") for s, c in zip(fc.fleet.workloads, fc.workloads,
                                                                            strict=True)]
    lines += [f"Simulated {fc.replays} runs (each replaying every workload) in {fc.wall_s:.1f} s wall, "
              f"{cpu_s:.1f} s CPU.", ""]
    return "\n".join(lines)


def summary_row(c: Comparison, name: str | None = None) -> str:
    f, h = c.fleetscale.scored, c.hindsight.result.scored
    ks = checks(c)
    return (f"| {name or c.scenario.trace.name} | {pct(f.attainment)} | ${f.cost_usd:,.2f} | ${h.cost_usd:,.2f} "
            f"({pct(h.attainment)}) | {f.unattainable:,} | {sum(k.ok for k in ks)}/{len(ks)} |")


def one(trace: Trace, grid: Grid) -> tuple[str, str, str]:
    scenario = Scenario(trace)
    cpu = time.process_time()
    c = compare(scenario, [default_policy(scenario)], grid=grid)
    cpu_s = time.process_time() - cpu
    log = [f"{trace.name}: {c.wall_s:.1f} s wall, {cpu_s:.1f} s CPU"] + [f"  {k.line()}" for k in checks(c)]
    return section(c, cpu_s), summary_row(c), "\n".join(log)


def one_fleet(case: str, seed: int, duration_s: float, grid: Grid) -> tuple[str, str, str]:
    fleet = FleetScenario.of(f"synthetic-{case}", fleet_traces(case, seed=seed, duration_s=duration_s))
    cpu = time.process_time()
    fc = compare_fleet(fleet, grid=grid)
    cpu_s = time.process_time() - cpu
    log = [f"{fleet.name}: {fc.wall_s:.1f} s wall, {cpu_s:.1f} s CPU"]
    log += [f"  {k.line()}" for k in checks(fc.total)]
    rows = [summary_row(fc.total, f"{fleet.name} (fleet in total)")]
    rows += [summary_row(c, f"{fleet.name}: {s.name}") for s, c in zip(fleet.workloads, fc.workloads, strict=True)]
    return fleet_section(fc, cpu_s), "\n".join(rows), "\n".join(log)


Job = tuple[str, Trace | None]
"""(name, trace); a fleet case has no one trace (None) and is named by its case."""


def traces(args: argparse.Namespace) -> list[Job]:
    bundled = [] if args.no_bundled else [load_trace(p) for p in sorted(args.traces.glob("*.csv"))]
    out: list[Job] = [(t.name, t) for t in bundled]
    for n in args.synthetic:
        if n in fleet_names():
            out.append((n, None))
        else:
            t = suite_trace(n, seed=args.seed, duration_s=args.duration_s)
            out.append((t.name, t))
    return out


def run_job(job: Job, args: argparse.Namespace, grid: Grid) -> tuple[str, str, str]:
    name, trace = job
    return one(trace, grid) if trace is not None else one_fleet(name, args.seed, args.duration_s, grid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=TRACES_DIR, help="folder of trace CSV files")
    parser.add_argument("--no-bundled", action="store_true", help="skip the CSV traces")
    cases = suite_names() + fleet_names()
    parser.add_argument("--synthetic", nargs="*", default=cases, choices=cases,
                        help="synthetic cases to run (default all; none: --synthetic with no name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration-s", type=float, default=DEFAULT_DURATION_S, help="length of a synthetic case")
    parser.add_argument("--fine", action="store_true", help="the baselines' full grids, every GPU type (slow)")
    parser.add_argument("--jobs", type=int, default=1, help="traces run in parallel processes")
    parser.add_argument("--out", type=Path, default=Path("docs/scaling-quality.md"))
    args = parser.parse_args(argv)
    todo = traces(args)
    if not todo:
        print("no trace to run", file=sys.stderr)
        return 2
    grid = FINE if args.fine else COARSE
    started = time.perf_counter()
    done: dict[str, tuple[str, str, str]] = {}
    order = [name for name, _ in todo]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_job, job, args, grid): job[0] for job in todo}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                report(args, grid, order, done, started)
    else:
        for job in todo:
            done[job[0]] = run_job(job, args, grid)
            report(args, grid, order, done, started)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def report(args: argparse.Namespace, grid: Grid, order: list[str], done: dict[str, tuple[str, str, str]],
           started: float) -> None:
    """Write the document with the traces done so far (rewritten as each one finishes)."""
    ready = [done[n] for n in order if n in done]
    print(ready[-1][2] if ready else "", file=sys.stderr)
    missing = [n for n in order if n not in done]
    wall = time.perf_counter() - started
    header = [
        "# Scaling quality",
        "",
        "Generated by `PYTHONPATH=. python bench/scaling_quality.py` "
        f"({grid.name} grid) on {platform.python_implementation()} {platform.python_version()}, "
        f"{wall / 60:.0f} min wall; do not edit by hand.",
        "",
        "Every policy replays the same trace on its own fresh simulated fleet (docs/simulator.md): us-east 16x H100, "
        "eu-west 16x A100, ap-south 32x L4, Llama-3.1-8B, 90 s cold start, gateway flow control (GIE saturation "
        "defaults), and every policy starts from the same initial fleet (one ready L4). Figures are given for the "
        "scored window (after a 10 min warm-up; the whole run for traces shorter than 20 min) and the whole run. "
        "Attainment is over the attainable requests (TTFT within the SLO on an idle replica of the fastest GPU type "
        "that holds them); the unattainable ones are counted apart. Costs are at the simulator's list prices. "
        "Fleetscale runs the embedded default policy (`hub/backtest/policy.py`) through the hub's planner. The "
        "hindsight plan is the reference cost: perfect foresight, sized by the capacity model and raised until it "
        "reaches 99 % in its own replay (docs/simulator.md, \"The backtest\"). The fleet case `synthetic-multi-model` "
        "replays three workloads sharing the GPUs; its section gives the fleet in total and each workload, every check "
        "applied to each (its section says what changes).",
        "",
        "| trace | Fleetscale attainment (scored) | Fleetscale cost (scored) | hindsight cost (attainment) | "
        "unattainable (scored) | checks passed |",
        "|---|---|---|---|---|---|",
        *[row for _, row, _ in ready],
        "",
    ]
    if missing:
        header += [f"Not run (yet): {', '.join(missing)}.", ""]
    args.out.write_text("\n".join(header) + "\n" + "\n".join(s for s, _, _ in ready))


if __name__ == "__main__":
    sys.exit(main())
