"""Time the joint placement solver on a fleet of 100 clusters with 3 GPU types each.

Usage, from the repository root::

    PYTHONPATH=. python bench/placement_solve.py [--clusters 100] [--workloads 1 10 50] [--runs 20]
                                                 [--hub-shape 1000 10000] [--teams 4 --cap-share 0.5]
                                                 [--levels 3]

Each run draws a new random fleet and workload set (seeded, so runs repeat) and times one ``solve``:
formulation, model build, HiGHS and reading the answer.

* Pools: per cluster an L4, an A100 and an H100 pool with 0-16 free GPUs; prices are the hub's
  default list prices times a per-cluster factor 0.85-1.15 (regions differ).
* Throughput per replica: relative decode throughput of ``shared.gpus`` (L4 1,
  A100 ~11, H100 ~34), times a per-workload factor 0.8-1.2 per type (models differ).
* Workloads: 1 or 2 GPUs per replica; allowed on 20-100 random clusters and 2-3 GPU types; a current
  placement on 1-5 clusters; demand 2-40 reference replicas, or 0.5-2x what the current placement
  serves if more; 20 % with spread 1 over 4 clusters, 30 % with a per-cluster maximum of 8 on 10.
* Budgets (``--teams N``): workload i is team i mod N's; each team's budget caps its GPUs of all types
  at ``--cap-share`` of the GPUs its demand needs on each workload's first type (0.5: binding).
* Priorities (``--levels K``): each workload draws a priority from K levels (the solver's stages).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
from collections import Counter

from hub.placement import ALL_TYPES, BudgetCap, Offer, PlacementProblem, WorkloadDemand, solve
from hub.placement.formulation import formulate
from hub.placement.milp import build
from hub.placement.solver import join_background
from shared.gpus import GPU_PROFILES, serving_profile

TYPES = ("L4", "A100", "H100")
RELATIVE = {t: serving_profile(GPU_PROFILES[t]).decode_tokens_per_s for t in TYPES}
RELATIVE = {t: v / RELATIVE["L4"] for t, v in RELATIVE.items()}


def instance(rng: random.Random, clusters: int, workloads: int) -> PlacementProblem:
    ids = [f"c{i:03d}" for i in range(clusters)]
    factor = {c: rng.uniform(0.85, 1.15) for c in ids}
    free = {(c, t): rng.randint(0, 16) for c in ids for t in TYPES}
    out = []
    for w in range(workloads):
        gpr = rng.choice((1, 1, 2))
        allowed = rng.sample(ids, rng.randint(min(20, clusters), clusters))
        types = rng.sample(TYPES, rng.randint(2, 3))
        speed = {t: RELATIVE[t] * rng.uniform(0.8, 1.2) for t in types}
        offers = tuple(Offer(c, t, None, GPU_PROFILES[t].price_per_gpu_hour * factor[c] * gpr, speed[t])
                       for c in allowed for t in types)
        current = {}
        for c in rng.sample(allowed, min(len(allowed), rng.randint(1, 5))):
            current[(c, rng.choice(types))] = rng.randint(1, 4)
        # Demand in reference replicas (the first allowed type): 2-40 of them, or what runs now x0.5-2.
        served = sum(n * speed[t] for (_, t), n in current.items())
        demand = max(served * rng.uniform(0.5, 2.0), rng.uniform(2, 40) * speed[types[0]])
        spread = 1 if rng.random() < 0.2 else 0
        if spread:
            offers = tuple(o for o in offers if o.cluster_id in allowed[:4])
        cluster_max = {c: 8 for c in allowed[:10]} if rng.random() < 0.3 else {}
        out.append(WorkloadDemand(
            key=f"w{w:03d}", demand=demand, offers=offers, reference_throughput=speed[types[0]],
            gpus_per_replica=gpr, current=current, held=current, spread=spread, cluster_max=cluster_max,
            max_replicas=rng.choice((None, 400)),
        ))
    return PlacementProblem(tuple(out), free)


def with_budgets(rng: random.Random, problem: PlacementProblem, teams: int, cap_share: float,
                 levels: int) -> PlacementProblem:
    """``problem`` with a budget per team (a share of the GPUs its demand needs) and random priorities."""
    out = [dataclasses.replace(w, priority=rng.randrange(levels) if levels > 1 else 0) for w in problem.workloads]
    budgets = []
    for t in range(teams):
        members = [w for i, w in enumerate(out) if i % teams == t]
        need = sum(math.ceil(w.demand / (w.offers[0].throughput_per_replica if w.offers else 1.0))
                   * w.gpus_per_replica for w in members)
        budgets.append(BudgetCap(f"team-{t}", frozenset(w.key for w in members),
                                 {ALL_TYPES: max(1, math.floor(cap_share * need))}))
    return PlacementProblem(tuple(out), problem.free_gpus, tuple(budgets))


def hub_shape(rng: random.Random, workloads: int) -> PlacementProblem:
    """The shape of ``bench/hub_throughput.py``: each workload on one of 10 clusters, one roomy H100 pool
    each, 1-2 replicas running and 1-4 wanted. No pool is contended: every workload is closed form."""
    out = []
    for i in range(workloads):
        key = (f"spoke-{i % 10}", "H100")
        running = rng.randint(1, 2)
        offer = Offer(*key, None, GPU_PROFILES["H100"].price_per_gpu_hour, RELATIVE["H100"])
        out.append(WorkloadDemand(key=f"w{i:05d}", demand=rng.randint(1, 4) * RELATIVE["H100"], offers=(offer,),
                                  reference_throughput=RELATIVE["H100"], current={key: running}, held={key: running},
                                  min_replicas=1, max_replicas=8))
    return PlacementProblem(tuple(out), {(f"spoke-{k}", "H100"): 100_000 for k in range(10)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--workloads", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=1.0, help="solver time limit per solve, seconds")
    parser.add_argument("--hub-shape", type=int, nargs="*", default=[],
                        help="also time N single-place workloads, the hub benchmark's shape")
    parser.add_argument("--teams", type=int, default=0, help="a budget per team over its workloads (0: none)")
    parser.add_argument("--cap-share", type=float, default=0.5, help="each budget: this share of its demand's GPUs")
    parser.add_argument("--levels", type=int, default=1, help="priority levels drawn per workload")
    args = parser.parse_args()
    for n in args.hub_shape:
        times = [solve(hub_shape(random.Random(r), n), time_limit_s=args.time_limit).solve_s for r in range(args.runs)]
        print(f"hub shape, {n:,} workloads on 10 clusters, {args.runs} runs: "
              f"solve p50 {p(times, 50) * 1000:.0f} ms, p95 {p(times, 95) * 1000:.0f} ms")
    for n in args.workloads:
        times = []
        gaps: list[float] = []
        methods: Counter[str] = Counter()
        columns = 0
        for run in range(args.runs):
            problem = instance(random.Random(1000 * n + run), args.clusters, n)
            if args.teams or args.levels > 1:
                problem = with_budgets(random.Random(run), problem, args.teams, args.cap_share, args.levels)
            join_background()  # a run left behind at its deadline would take the next one's CPU
            columns = max(columns, sum(len(w.offers) for w in problem.workloads))
            solution = solve(problem, time_limit_s=args.time_limit)
            times.append(solution.solve_s)
            methods[solution.method] += 1
            gaps.append((solution.objective - lp_bound(problem)) / solution.objective)
        print(f"{args.clusters} clusters x {len(TYPES)} types, {n:3d} workloads (up to {columns:,} offers), "
              f"{args.runs} runs: solve p50 {p(times, 50) * 1000:.0f} ms, p95 {p(times, 95) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms; {dict(methods)}; "
              f"gap to the LP bound p50 {p(gaps, 50):.3%}, p95 {p(gaps, 95):.3%}")


def lp_bound(problem: PlacementProblem) -> float:
    """A lower bound on the objective: the LP relaxation, untimed (an upper bound on how far from optimal)."""
    form = formulate(problem)
    model, _ = build(form)
    lp = model.highs(60.0, integer=False)
    lp.run()
    # The program counts churn as n + 2 removed; the objective as |n - current|: they differ by the
    # current replicas, a constant.
    return lp.getInfo().objective_function_value - sum(o.current for wf in form.workloads for o in wf.options)


def p(values: list[float], q: int) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


if __name__ == "__main__":
    main()
