"""``fleetscale simulate``: replay a trace against Fleetscale, swept baselines and a hindsight plan.

Prints the headline table, each baseline's cheapest setting per attainment level, and the checks of
issue 10 as PASS/FAIL lines. A synthetic fleet case (``synthetic-multi-model``: several workloads
sharing the GPUs) prints them for the fleet in total, then for each workload. Exit status: 0 when
the comparison ran and its outputs were written (whatever the checks say); 2 for bad input (a trace
or policy file that is missing or malformed, a bad option), with a message naming the problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from hub.backtest.comparison import compare
from hub.backtest.fleet_comparison import compare_fleet
from hub.backtest.hindsight import DEFAULT_TARGET, DEFAULT_WINDOW_S
from hub.backtest.plot import write_html
from hub.backtest.policy import default_policy, load_policies, workload_of
from hub.backtest.report import print_fleet, print_table, write_fleet_json, write_json
from hub.backtest.scenario import DEFAULT_WARMUP_S, FleetScenario, Scenario
from hub.backtest.sweep import COARSE, FINE
from shared.errors import ConfigurationError
from shared.simulation import Trace, TraceError, bundled_trace, load_trace
from shared.simulation.suite import DEFAULT_DURATION_S, fleet_names, fleet_traces, suite_trace
from shared.simulation.suite import names as suite_names
from shared.simulation.trace import bundled_names

PROG = "fleetscale simulate"


class InputError(Exception):
    """Bad input the user must fix; the message says what and where."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    bundled = ", ".join(bundled_names())
    synthetic = ", ".join(f"synthetic-{n}" for n in suite_names())
    fleets = ", ".join(f"synthetic-{n}" for n in fleet_names())
    p.add_argument("--trace", required=True,
                   help=f"CSV file (timestamp_s,input_tokens,output_tokens), a bundled trace ({bundled}), a "
                        f"synthetic case ({synthetic}) or a synthetic fleet of several workloads ({fleets})")
    p.add_argument("--seed", type=int, default=0, help="seed of a synthetic case (default 0)")
    p.add_argument("--duration-s", type=float, default=DEFAULT_DURATION_S,
                   help=f"length of a synthetic case, seconds (default {DEFAULT_DURATION_S:g})")
    p.add_argument("--policy", type=Path, default=None,
                   help="YAML policy file (HUB_POLICY_FILE format); default: the embedded Fleetscale default")
    p.add_argument("--slo-ttft-s", type=float, default=2.0, help="TTFT SLO in seconds (default 2.0)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for results.json and plot.html (default: simulate-<trace name>)")
    p.add_argument("--cold-start-s", type=float, default=90.0, help="replica cold start, seconds (default 90)")
    p.add_argument("--warmup-s", type=float, default=DEFAULT_WARMUP_S,
                   help=f"start of the scored window, seconds (default {DEFAULT_WARMUP_S:g})")
    p.add_argument("--target", type=float, default=DEFAULT_TARGET,
                   help=f"attainment the hindsight plan must reach in its own replay (default {DEFAULT_TARGET:g})")
    p.add_argument("--window-s", type=float, default=DEFAULT_WINDOW_S,
                   help=f"the hindsight plan's provisioning window, seconds (default {DEFAULT_WINDOW_S:g})")
    p.add_argument("--fine", action="store_true",
                   help="sweep the baselines' full grids on every GPU type (slow); default: a coarse grid")
    p.add_argument("--prediction-variant", action="store_true",
                   help="also run Fleetscale with the policy's prediction switched the other way")
    args = p.parse_args(argv)
    if not args.slo_ttft_s > 0:
        p.error("--slo-ttft-s must be > 0")
    if args.cold_start_s < 0:
        p.error("--cold-start-s must be >= 0")
    if not args.window_s > 0:
        p.error("--window-s must be > 0")
    if args.warmup_s < 0:
        p.error("--warmup-s must be >= 0")
    if not 0 < args.target < 1:
        p.error("--target must be between 0 and 1")
    if not args.duration_s > 0:
        p.error("--duration-s must be > 0")
    return args


def fleet_case(spec: str) -> str | None:
    """The synthetic fleet case ``spec`` names (``synthetic-<case>``, no such file here), else None."""
    name = spec.removeprefix("synthetic-")
    return name if spec.startswith("synthetic-") and name in fleet_names() and not Path(spec).exists() else None


def read_trace(spec: str, seed: int = 0, duration_s: float = DEFAULT_DURATION_S) -> Trace:
    path = Path(spec)
    if not path.exists() and spec.startswith("synthetic-"):
        try:
            return suite_trace(spec.removeprefix("synthetic-"), seed=seed, duration_s=duration_s)
        except TraceError as e:
            raise InputError(str(e)) from e
    # A bare name is a bundled trace (with or without .csv) unless such a file exists here.
    bundled = not path.exists() and path.name == spec and (path.suffix != ".csv" or path.stem in bundled_names())
    if not bundled:
        if not path.is_file():
            raise InputError(f"trace file {spec} does not exist")
        try:
            trace = load_trace(path)
        except (TraceError, UnicodeDecodeError) as e:
            raise InputError(f"trace file {spec} is malformed: {e}") from e
        except OSError as e:
            raise InputError(f"cannot read trace file {spec}: {e}") from e
    else:
        try:
            trace = bundled_trace(spec)
        except TraceError as e:
            raise InputError(f"{e} (or give a path to a CSV file)") from e
    if len(trace) == 0:
        raise InputError(f"trace {spec} has no requests")
    return trace


@contextmanager
def run_progress() -> Iterator[Callable[[str, str], None]]:
    """One progress line per policy run on stderr (rich): spinning while it replays, done with its time."""
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def tell(event: str, name: str) -> None:
            if event == "start":
                tasks[name] = bars.add_task(name, total=1)
            elif name in tasks:
                bars.update(tasks[name], completed=1)

        yield tell


def simulate_fleet(args: argparse.Namespace, case: str) -> int:
    """A synthetic fleet case: every workload with the embedded default policy, planned together."""
    refused = [flag for flag, given in (("--policy", args.policy is not None),
                                        ("--prediction-variant", args.prediction_variant)) if given]
    if refused:
        print(f"{PROG}: {', '.join(refused)} cannot be used with the fleet case synthetic-{case} (each workload "
              "runs the embedded default policy)", file=sys.stderr)
        return 2
    fleet = FleetScenario.of(
        f"synthetic-{case}", fleet_traces(case, seed=args.seed, duration_s=args.duration_s),
        slo_ttft_s=args.slo_ttft_s, cold_start_s=args.cold_start_s, warmup_s=args.warmup_s,
    )
    with run_progress() as progress:
        comparison = compare_fleet(fleet, grid=FINE if args.fine else COARSE, target=args.target,
                                   window_s=args.window_s, progress=progress)
    out = args.out or Path(f"simulate-{fleet.name}")
    out.mkdir(parents=True, exist_ok=True)
    write_fleet_json(comparison, out / "results.json")
    write_html(comparison.total, out / "plot.html")
    print_fleet(comparison)
    print(f"wrote {out / 'results.json'} and {out / 'plot.html'} (the fleet in total)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    case = fleet_case(args.trace)
    if case is not None:
        return simulate_fleet(args, case)
    try:
        trace = read_trace(args.trace, args.seed, args.duration_s)
        scenario = Scenario(trace, slo_ttft_s=args.slo_ttft_s, cold_start_s=args.cold_start_s, warmup_s=args.warmup_s)
        if args.policy is None:
            policies = [default_policy(scenario)]
        else:
            if not args.policy.is_file():
                raise InputError(f"policy file {args.policy} does not exist")
            try:
                policies = load_policies(args.policy)
            except ConfigurationError as e:
                raise InputError(str(e)) from e
            namespace, name, labels = workload_of(policies[0])
            scenario = replace(scenario, namespace=namespace, name=name, labels=labels)
    except InputError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    with run_progress() as progress:
        comparison = compare(scenario, policies, grid=FINE if args.fine else COARSE, target=args.target,
                             window_s=args.window_s, prediction_variant=args.prediction_variant, progress=progress)
    out = args.out or Path(f"simulate-{trace.name}")
    out.mkdir(parents=True, exist_ok=True)
    write_json(comparison, out / "results.json")
    write_html(comparison, out / "plot.html")
    print_table(comparison)
    print(f"wrote {out / 'results.json'} and {out / 'plot.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
