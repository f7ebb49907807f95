"""Baselines as frontiers: each baseline's knob swept, and the cheapest setting per attainment level.

A single setting of a baseline says little (an HPA at 70 % GPU utilisation may never reach 99 %,
one at 10 % may overspend); what a policy has to beat is the cheapest setting of each baseline
that reaches the same attainment. So every baseline is run over a grid of its knob, on the GPU
type it does best with, and ``frontier`` picks, for an attainment level, the cheapest run of a
family that reaches it, or the family's best attainment when none does. Fleetscale's own curve
sweeps its one cost knob, the headroom of its latency signals.

Grids. ``COARSE`` (the default) keeps a comparison to a couple of dozen replays, affordable on a
shared 2-core machine; ``FINE`` is the issue's full range (HPA GPU utilisation 10-90 %, every GPU
type for every baseline). One-Deployment baselines (HPA, KEDA) run on one GPU type: in the coarse
grid the type the capacity model rates cheapest per request/s among those that can serve at
least 99 % of the attainable requests within the SLO when idle (else the one that serves most),
in the fine grid every type. Static fleets are the cheapest mix (``demand.cheapest_mix``) for the
trace's busiest window scaled by each factor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.backtest.demand import Supply, TypeSet, cheapest_mix, to_pools, windows
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import Controller
from hub.backtest.keda import KedaController
from hub.backtest.kubernetes_hpa import hpa_gpu_utilization, hpa_queue
from hub.backtest.policy import with_headroom, with_request_classes
from hub.backtest.results import PolicyResult
from hub.backtest.scenario import Pool, Scenario
from hub.backtest.schedule import ScheduleController
from hub.policy.model import Policy
from shared.simulation.capacity import TokenMix, sustainable_rate

STATIC = "static"
HPA_UTIL = "hpa-gpu-util"
HPA_QUEUE = "hpa-queue"
KEDA = "keda-queue"
FLEETSCALE = "fleetscale"
BASELINES = (STATIC, HPA_UTIL, HPA_QUEUE, KEDA)


@dataclass(frozen=True)
class Grid:
    name: str
    static_factors: tuple[float, ...]
    """Multiples of the busiest window's demand a static fleet is sized for."""
    gpu_utilization_percent: tuple[int, ...]
    queue_per_replica: tuple[float, ...]
    """HPA on queue per replica and KEDA's queue threshold."""
    headroom_percent: tuple[float, ...]
    """Fleetscale's latency-signal headroom, besides the policy's own."""
    every_gpu_type: bool


COARSE = Grid("coarse", (0.5, 0.75, 1.0, 1.5), (20, 50, 80), (2.0, 8.0), (50.0,), every_gpu_type=False)
FINE = Grid(
    "fine", (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0), (10, 20, 30, 40, 50, 60, 70, 80, 90), (1.0, 2.0, 4.0, 8.0, 16.0),
    (0.0, 10.0, 25.0, 50.0, 100.0), every_gpu_type=True,
)
GRIDS = {g.name: g for g in (COARSE, FINE)}


def best_gpu_type(supply: Supply, attainable: Sequence[bool], share: float = 0.99) -> str:
    """The GPU type a one-type baseline does best with, by the capacity model (see the module docstring)."""
    scenario, trace = supply.scenario, supply.scenario.trace
    wanted = [i for i, ok in enumerate(attainable) if ok] or list(range(len(trace)))
    served: dict[str, list[int]] = {t: [i for i in wanted if t in supply.capable[i]] for t in supply.types}
    able = [t for t in supply.types if len(served[t]) >= share * len(wanted)]
    if not able:
        return max(supply.types, key=lambda t: (len(served[t]), -supply.price[t], t))

    def price_per_rate(t: str) -> float:
        idx = served[t]
        if not idx:
            return float("inf")
        mix = TokenMix.of([trace.input_tokens[i] for i in idx], [trace.output_tokens[i] for i in idx])
        rate = sustainable_rate(scenario.profile(t), mix, slo_ttft_s=scenario.slo_ttft_s, replicas=4)
        return supply.price[t] / rate if rate > 0 else float("inf")

    return min(able, key=lambda t: (price_per_rate(t), t))


def static_fleets(
    supply: Supply, factors: Sequence[float], window_s: float = 60.0
) -> list[tuple[float, dict[Pool, int]]]:
    """(factor, fleet) for each factor, fleets that repeat dropped."""
    peak: dict[TypeSet, float] = {}
    for w in windows(supply, window_s):
        for u, need in w.needs.items():
            peak[u] = max(peak.get(u, 0.0), need)
    out: list[tuple[float, dict[Pool, int]]] = []
    for f in factors:
        mix = cheapest_mix({u: n * f for u, n in peak.items()}, supply)
        fleet = to_pools(mix.replicas, supply.scenario.pools()) or dict(supply.scenario.initial_fleet())
        if all(fleet != other for _, other in out):
            out.append((f, fleet))
    return out


@dataclass(frozen=True)
class Entry:
    family: str
    knob: str
    controller: Controller


def _where(fleet: dict[Pool, int]) -> str:
    return ", ".join(f"{n}x {t} in {c}" for (c, t), n in sorted(fleet.items()))


def baseline_entries(scenario: Scenario, supply: Supply, attainable: Sequence[bool], grid: Grid) -> list[Entry]:
    out = []
    for f, fleet in static_fleets(supply, grid.static_factors):
        name = f"static-x{f:g}"
        out.append(Entry(STATIC, f"busiest window x{f:g}: {_where(fleet)}",
                         ScheduleController(name, f"fixed from time 0 (cold-starting): {_where(fleet)}",
                                            [(0.0, fleet)])))
    types = supply.types if grid.every_gpu_type else (best_gpu_type(supply, attainable),)
    for t in types:
        for family, knob, _, build in deployment_settings(grid, t):
            out.append(Entry(family, knob, build(scenario, t)))
    return out


DeploymentBuild = Callable[[Scenario, str], Controller]
"""(scenario, GPU type) -> the baseline's controller for one Deployment on that type."""


def deployment_settings(grid: Grid, label: str) -> list[tuple[str, str, str, DeploymentBuild]]:
    """The swept HPA (GPU utilisation, queue per replica) and KEDA settings of one Deployment, as
    (family, knob, name, build); ``label`` names the GPU type (or "best type each") in knob and name."""
    out: list[tuple[str, str, str, DeploymentBuild]] = []
    for pct in grid.gpu_utilization_percent:
        name = f"{HPA_UTIL}-{label}-{pct}"
        out.append((HPA_UTIL, f"{label}, target {pct} %", name,
                    _hpa_util(name, pct)))
    for q in grid.queue_per_replica:
        name = f"{HPA_QUEUE}-{label}-{q:g}"
        out.append((HPA_QUEUE, f"{label}, {q:g} waiting per replica", name,
                    _hpa_queue(name, q)))
    for q in grid.queue_per_replica:
        name = f"{KEDA}-{label}-{q:g}"
        out.append((KEDA, f"{label}, threshold {q:g}", name,
                    _keda(name, q)))
    return out


def _hpa_util(name: str, pct: int) -> DeploymentBuild:
    return lambda s, t: hpa_gpu_utilization(s, gpu_type=t, target_percent=pct, name=name)


def _hpa_queue(name: str, q: float) -> DeploymentBuild:
    return lambda s, t: hpa_queue(s, gpu_type=t, per_replica=q, name=name)


def _keda(name: str, q: float) -> DeploymentBuild:
    return lambda s, t: KedaController(s, gpu_type=t, threshold=q, name=name)


def fleetscale_entries(scenario: Scenario, policies: Sequence[Policy], grid: Grid) -> list[Entry]:
    """The policy as given (named ``fleetscale``), then its headroom variants."""
    main = policies[0]
    out = [Entry(FLEETSCALE, "policy as given", FleetscaleController(scenario, policies, name=FLEETSCALE))]
    # Request classes the other way, shown beside it (not on its frontier: a feature, not its knob).
    flipped = not main.placement.request_classes
    classes = with_request_classes(main, flipped)
    out.append(Entry("", f"request classes {'on' if flipped else 'off'}", FleetscaleController(
        scenario, [classes, *policies[1:]], name=f"{FLEETSCALE}-classes-{'on' if flipped else 'off'}",
        description=f"Fleetscale, policy {main.id!r} with request classes and routing rules "
                    f"{'on' if flipped else 'off'}")))
    own = {s.headroom_percent for s in main.signals if s.metric.is_latency}
    if not own:
        return out  # no latency signal: nothing to sweep
    for h in grid.headroom_percent:
        if own == {h}:
            continue
        variant = [with_headroom(main, h), *policies[1:]]
        desc = f"Fleetscale, policy {main.id!r} with {h:g} % headroom on its latency signals"
        controller = FleetscaleController(scenario, variant, name=f"{FLEETSCALE}-headroom-{h:g}", description=desc)
        out.append(Entry(FLEETSCALE, f"headroom {h:g} %", controller))
    return out


def frontier(results: Sequence[PolicyResult], level: float) -> tuple[PolicyResult | None, bool]:
    """The cheapest run reaching ``level`` (scored attainment), True; else the best-attaining run, False."""
    if not results:
        return None, False
    reaching = [r for r in results if r.scored.attainment >= level]
    if reaching:
        return min(reaching, key=lambda r: (r.scored.cost_usd, r.name)), True
    return max(results, key=lambda r: (r.scored.attainment, -r.scored.cost_usd, r.name)), False

