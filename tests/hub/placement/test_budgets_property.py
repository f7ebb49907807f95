"""Budgets and priorities, property-tested on small random problems.

* Under any budget, binding or not, no budget's workloads hold more than its caps (GPUs per type, all
  types, USD/h), whatever method the solver ended with, and the greedy fill keeps them from any start.
* A higher priority is never reclaimed for a lower one: in the solver's answer, no workload with
  unmet demand could take a replica a lower-priority workload holds above its ``min_replicas``
  (one replica moved, every hard constraint kept) and serve more of its demand.

The checks recompute every constraint from the problem itself, not from the formulation.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.placement import BudgetCap, Offer, PlacementProblem, WorkloadDemand, solve
from hub.placement.formulation import formulate
from hub.placement.greedy import greedy
from hub.placement.offers import ALL_TYPES

KEYS = [("a", "L4"), ("a", "H100"), ("b", "L4")]
PRICES = [0.0, 0.8, 1.0, 2.5]
THROUGHPUTS = [0.5, 1.0, 2.0]
Placements = dict[str, dict[tuple[str, str], int]]


@st.composite
def problems(draw: st.DrawFn, *, gpus: tuple[int, ...] = (1, 2), shared: bool = False) -> PlacementProblem:
    """Two or three workloads and one or two budgets; ``shared``: every workload may run on the first place
    (so that they contend far more often)."""
    free = {k: draw(st.integers(0, 2)) for k in KEYS}
    workloads = []
    for i in range(draw(st.integers(2, 3))):
        keys = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=1, max_size=3))
        if shared and KEYS[0] not in keys:
            keys.append(KEYS[0])
        offers = tuple(Offer(c, t, None, draw(st.sampled_from(PRICES)), draw(st.sampled_from(THROUGHPUTS)))
                       for c, t in keys)
        held = {k: n for k in KEYS if (n := draw(st.integers(0, 2)))}
        max_replicas = draw(st.one_of(st.none(), st.integers(1, 5)))
        workloads.append(WorkloadDemand(
            key=f"w{i}",
            demand=draw(st.integers(0, 12)) / 2,
            offers=offers,
            gpus_per_replica=draw(st.sampled_from(gpus)),
            current=held,
            held=held,
            min_replicas=draw(st.integers(0, 2 if max_replicas is None else min(2, max_replicas))),
            max_replicas=max_replicas,
            cluster_max={c: n for c in ("a", "b") if (n := draw(st.integers(-1, 3))) >= 0},
            priority=draw(st.sampled_from([0, 0, 1, 5])),
        ))
    budgets = []
    for j in range(draw(st.integers(1, 2))):
        members = frozenset(draw(st.lists(st.sampled_from([w.key for w in workloads]), unique=True, min_size=1)))
        caps = {t: n for t in (ALL_TYPES, "L4", "H100") if (n := draw(st.integers(-1, 4))) >= 0}
        usd = draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 4.0])))
        if not caps and usd is None:
            caps = {ALL_TYPES: draw(st.integers(0, 4))}
        budgets.append(BudgetCap(f"b{j}", members, caps, usd))
    return PlacementProblem(tuple(workloads), free, tuple(budgets))


def budget_breaches(problem: PlacementProblem, placements: Placements) -> list[str]:
    by_key = {w.key: w for w in problem.workloads}
    out = []
    for b in problem.budgets:
        gpus: dict[str, int] = {}
        usd = 0.0
        for key in b.members:
            w = by_key[key]
            price = {o.key: o.price_per_replica_hour for o in w.offers}
            for (c, t), n in placements.get(key, {}).items():
                gpus[t] = gpus.get(t, 0) + n * w.gpus_per_replica
                gpus[ALL_TYPES] = gpus.get(ALL_TYPES, 0) + n * w.gpus_per_replica
                usd += n * price.get((c, t), 0.0)
        out += [f"{b.id}: {gpus.get(t, 0)} {t} > {cap}" for t, cap in b.gpus.items() if gpus.get(t, 0) > cap]
        if b.cost_per_hour is not None and usd > b.cost_per_hour + 1e-6:
            out.append(f"{b.id}: {usd} USD/h > {b.cost_per_hour}")
    return out


def feasible(problem: PlacementProblem, placements: Placements) -> bool:
    """Every hard constraint, from the problem alone (pools are free plus held)."""
    pools = dict(problem.free_gpus)
    for w in problem.workloads:
        for k, n in w.held.items():
            pools[k] = pools.get(k, 0) + n * w.gpus_per_replica
    used: dict[tuple[str, str], int] = {}
    for w in problem.workloads:
        mine = placements.get(w.key, {})
        offered = {o.key for o in w.offers}
        if any(n < 0 or (n and k not in offered) for k, n in mine.items()):
            return False
        if w.max_replicas is not None and sum(mine.values()) > w.max_replicas:
            return False
        for c, cap in w.cluster_max.items():
            if sum(n for (cc, _), n in mine.items() if cc == c) > cap:
                return False
        for k, n in mine.items():
            used[k] = used.get(k, 0) + n * w.gpus_per_replica
    return all(n <= pools.get(k, 0) for k, n in used.items()) and not budget_breaches(problem, placements)


def load(w: WorkloadDemand, mine: dict[tuple[str, str], int]) -> float:
    speed = {o.key: o.throughput_per_replica for o in w.offers}
    return sum(n * speed.get(k, 0.0) for k, n in mine.items())


def placements_of(problem: PlacementProblem, time_limit_s: float = 10.0) -> Placements:
    solution = solve(problem, time_limit_s=time_limit_s)
    return {k: dict(r.placement) for k, r in solution.results.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_no_budget_is_ever_exceeded(problem: PlacementProblem) -> None:
    placements = placements_of(problem)
    assert budget_breaches(problem, placements) == []
    assert feasible(problem, placements)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.lists(st.floats(0, 3), min_size=9, max_size=9))
def test_the_greedy_fill_keeps_every_budget(problem: PlacementProblem, xs: list[float]) -> None:
    form = formulate(problem)
    start = {wf.demand.key: {o.offer.key: xs[(i * 3 + j) % 9] for j, o in enumerate(wf.options)}
             for i, wf in enumerate(form.workloads)}
    for placements in (greedy(form), greedy(form, start)):
        assert budget_breaches(problem, placements) == []
        assert feasible(problem, placements)


def reclaimable(problem: PlacementProblem, placements: Placements) -> list[str]:
    """Moves of one replica from a lower priority (above its minimum) to a higher one that serves more of
    the higher one's unmet demand and keep every hard constraint."""
    out = []
    for hi in problem.workloads:
        if load(hi, placements[hi.key]) >= hi.demand - 1e-9:
            continue
        for lo in problem.workloads:
            total = sum(placements[lo.key].values())
            if lo.priority >= hi.priority or total <= lo.min_replicas:
                continue
            for k, n in placements[lo.key].items():
                if n <= 0:
                    continue
                for o in hi.offers:
                    moved = {w: dict(p) for w, p in placements.items()}
                    moved[lo.key][k] -= 1
                    moved[hi.key][o.key] = moved[hi.key].get(o.key, 0) + 1
                    if feasible(problem, moved):
                        out.append(f"{lo.key} {k} -> {hi.key} {o.key}")
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(gpus=(1,), shared=True))
def test_a_higher_priority_is_never_reclaimed_for_a_lower(problem: PlacementProblem) -> None:
    solution = solve(problem, time_limit_s=10.0)
    assert solution.method == "optimal", solution.notes
    assert not any("found nothing" in n for n in solution.notes)
    placements = {k: dict(r.placement) for k, r in solution.results.items()}
    assert reclaimable(problem, placements) == []


def test_reclaim_stops_at_the_lower_prioritys_minimum() -> None:
    pool = ("a", "H100")
    hi = WorkloadDemand("team-a/chat", 10.0, (Offer("a", "H100", None, 2.0),), priority=10, min_replicas=1)
    lo = WorkloadDemand("team-b/batch", 4.0, (Offer("a", "H100", None, 2.0),), current={pool: 4}, held={pool: 4},
                        min_replicas=2)
    solution = solve(PlacementProblem((hi, lo), {pool: 2}), time_limit_s=5.0)
    assert solution.results["team-a/chat"].placement[pool] == 4  # 2 free + 2 of the 4 the lower one held
    assert solution.results["team-b/batch"].placement[pool] == 2  # its minimum, never less
    even = WorkloadDemand("team-b/batch", 4.0, lo.offers, current={pool: 4}, held={pool: 4}, min_replicas=2,
                          priority=10)
    shared = solve(PlacementProblem((hi, even), {pool: 2}), time_limit_s=5.0)
    # Equal priorities: no protection and no precedence; the solver serves the most demand in total.
    assert sum(r.placement[pool] for r in shared.results.values()) == 6


def test_a_budget_too_small_for_the_minimums_says_so() -> None:
    a = WorkloadDemand("team-a/x", 3.0, (Offer("a", "H100", None, 2.0),), min_replicas=3)
    b = WorkloadDemand("team-a/y", 3.0, (Offer("a", "H100", None, 2.0),), min_replicas=2)
    budget = BudgetCap("team-a", frozenset({a.key, b.key}), {"H100": 4}, 100.0)
    solution = solve(PlacementProblem((a, b), {("a", "H100"): 8}, (budget,)))
    assert sum(r.total for r in solution.results.values()) == 4
    for r in solution.results.values():
        assert any("min_replicas need at least 5 H100 GPUs, above its cap of 4" in n for n in r.notes), r.notes


def test_a_usd_cap_binds_at_the_prices_placement_uses() -> None:
    a = WorkloadDemand("t/x", 10.0, (Offer("a", "H100", None, 3.0, 2.0), Offer("a", "L4", None, 0.8, 0.5)))
    budget = BudgetCap("t", frozenset({a.key}), {}, 5.0)
    result = solve(PlacementProblem((a,), {("a", "H100"): 8, ("a", "L4"): 8}, (budget,))).results["t/x"]
    assert result.cost_per_hour <= 5.0 + 1e-9
    # The best load for 5 USD/h: one H100 (2.0 for 3.0) and two L4s (1.0 for 1.6), 3.0 of load.
    assert result.placement == {("a", "H100"): 1, ("a", "L4"): 2}
    assert math.isclose(result.cost_per_hour, 4.6)
