from __future__ import annotations

import pytest

from hub.placement import Offer, PlacementProblem, WorkloadDemand, free_gpus, solve
from hub.placement.formulation import formulate, pool_violations, score
from hub.placement.greedy import greedy
from hub.state import FleetState
from tests.hub.factories import node, report, workload


def offer(c: str, t: str, price: float, throughput: float = 1.0, cap: int | None = None) -> Offer:
    return Offer(c, t, cap, price, throughput)


def one(demand: float, offers: list[Offer], free: dict[tuple[str, str], int], **kw: object) -> WorkloadDemand:
    return WorkloadDemand(key=str(kw.pop("key", "w")), demand=demand, offers=tuple(offers), **kw)  # type: ignore[arg-type]


def solve_one(w: WorkloadDemand, free: dict[tuple[str, str], int]):  # type: ignore[no-untyped-def]
    s = solve(PlacementProblem((w,), free))
    assert s.method == "optimal"
    return s.results[w.key]


# --- throughput-aware cost ---------------------------------------------------------------------

L4 = ("a", "L4")
H100 = ("b", "H100")
ROOMY = {L4: 16, H100: 16}


def test_a_fast_gpu_wins_when_it_is_cheaper_per_unit_of_load() -> None:
    # H100 at $2.40 serving 3.2x an L4 at $0.80: $0.75 per unit of load against $0.80.
    r = solve_one(one(3.2, [offer(*L4, 0.80), offer(*H100, 2.40, 3.2)], ROOMY), ROOMY)
    assert r.placement == {H100: 1}  # $2.40, where 4 L4s cost $3.20
    assert r.cost_per_hour == pytest.approx(2.40)


def test_a_fast_gpu_loses_when_its_price_outruns_its_throughput() -> None:
    # At $6.88 the H100 costs $2.15 per unit of load: 3.2 L4s' worth costs $2.56, so 4 L4s ($3.20) win.
    r = solve_one(one(3.2, [offer(*L4, 0.80), offer(*H100, 6.88, 3.2)], ROOMY), ROOMY)
    assert r.placement == {L4: 4}


def test_whole_replicas_decide_not_just_price_per_load() -> None:
    # The H100 is cheaper per unit of load, but one unit of demand is served by one L4 for less.
    r = solve_one(one(1.0, [offer(*L4, 0.80), offer(*H100, 2.40, 3.2)], ROOMY), ROOMY)
    assert r.placement == {L4: 1}
    # 4.2 units: 1 H100 + 1 L4 ($3.20) beats 2 H100 ($4.80) and 5 L4 ($4.00).
    r = solve_one(one(4.2, [offer(*L4, 0.80), offer(*H100, 2.40, 3.2)], ROOMY), ROOMY)
    assert r.placement == {L4: 1, H100: 1}


# --- constraints -------------------------------------------------------------------------------


def test_capacity_is_free_gpus_plus_what_the_workload_holds_divided_by_gpus_per_replica() -> None:
    w = one(20, [offer(*L4, 0.8)], {}, gpus_per_replica=2, current={L4: 1}, held={L4: 1})
    r = solve_one(w, {L4: 5})
    assert r.placement == {L4: 3}  # (5 free + 2 held) // 2
    assert r.unplaced == 17 and any("do not fit" in n for n in r.notes)


def test_spread_puts_k_replicas_in_every_allowed_cluster_even_above_demand() -> None:
    offers = [offer("a", "L4", 0.8), offer("b", "L4", 0.9), offer("c", "A100", 4.1)]
    free = {("a", "L4"): 8, ("b", "L4"): 8, ("c", "A100"): 8}
    r = solve_one(one(4, offers, free, spread=1), free)
    assert r.placement == {("a", "L4"): 2, ("b", "L4"): 1, ("c", "A100"): 1}


def test_spread_that_cannot_be_met_is_met_where_it_can_and_reported() -> None:
    offers = [offer("a", "L4", 0.8), offer("b", "L4", 0.9)]
    free = {("a", "L4"): 8, ("b", "L4"): 0}
    r = solve_one(one(1, offers, free, spread=2), free)
    assert r.placement == {("a", "L4"): 2}
    assert any("b holds 0 of the 2" in n for n in r.notes)


def test_per_cluster_maximum_is_hard_and_per_cluster_minimum_is_met() -> None:
    offers = [offer("a", "L4", 0.8), offer("a", "A100", 4.1), offer("b", "L4", 1.0), offer("c", "H100", 12.0)]
    free = {o.key: 8 for o in offers}
    r = solve_one(one(6, offers, free, cluster_max={"a": 2}, cluster_min={"c": 1}), free)
    assert r.placement == {("a", "L4"): 2, ("b", "L4"): 3, ("c", "H100"): 1}


def test_total_maximum_is_hard_so_demand_beyond_it_is_unplaced() -> None:
    r = solve_one(one(6, [offer(*L4, 0.8)], ROOMY, max_replicas=4), ROOMY)
    assert r.placement == {L4: 4} and r.unplaced == 2


def test_total_minimum_is_met_even_without_demand() -> None:
    r = solve_one(one(0, [offer(*L4, 0.8), offer(*H100, 2.4)], ROOMY, min_replicas=2), ROOMY)
    assert r.placement == {L4: 2} and r.unplaced == 0


def test_unmet_demand_is_counted_in_reference_replicas_rounded_up() -> None:
    # Reference replica serves 3.2; 10 units with room for 1 H100 (3.2) leave 6.8: 3 reference replicas.
    r = solve_one(one(10, [offer(*H100, 2.4, 3.2)], {H100: 1}, reference_throughput=3.2), {H100: 1})
    assert r.placement == {H100: 1} and r.unplaced == 3


def test_demand_that_cannot_be_met_is_served_as_far_as_capacity_goes() -> None:
    # One reference replica (an H100, 34 units) wanted, only L4s (1 unit each) free: the 10 that fit
    # serve part of it, where counting whole reference replicas would have placed none.
    free = {L4: 10, H100: 0}
    r = solve_one(one(34, [offer(*L4, 0.8), offer(*H100, 12.0, 34.0)], free, reference_throughput=34.0), free)
    assert r.placement == {L4: 10} and r.unplaced == 1


# --- churn ------------------------------------------------------------------------------------

TWIN = [offer("a", "L4", 0.8), offer("b", "L4", 0.8)]
TWIN_FREE = {("a", "L4"): 8, ("b", "L4"): 8}
NOW = {("a", "L4"): 2, ("b", "L4"): 2}


def test_no_reshuffle_when_costs_are_equal() -> None:
    r = solve_one(one(4, TWIN, TWIN_FREE, current=NOW, held=NOW), TWIN_FREE)
    assert r.placement == NOW and r.churn == 0


def test_growth_and_shrink_move_only_the_difference() -> None:
    up = solve_one(one(6, TWIN, TWIN_FREE, current=NOW, held=NOW), TWIN_FREE)
    assert up.total == 6 and up.churn == 2 and all(n >= 2 for n in up.placement.values())
    down = solve_one(one(3, TWIN, TWIN_FREE, current=NOW, held=NOW), TWIN_FREE)
    assert down.total == 3 and down.churn == 1


def test_a_cheaper_place_wins_even_by_the_smallest_price_step() -> None:
    # One price quantum ($0.001/replica-hour) outweighs any churn: all 4 replicas move.
    offers = [offer("a", "L4", 0.801), offer("b", "L4", 0.800)]
    r = solve_one(one(4, offers, TWIN_FREE, current={("a", "L4"): 4}, held={("a", "L4"): 4}), TWIN_FREE)
    assert r.placement == {("a", "L4"): 0, ("b", "L4"): 4}


def test_replicas_where_the_workload_may_no_longer_run_are_not_kept() -> None:
    r = solve_one(one(4, [offer(*L4, 0.8)], ROOMY, current={L4: 2, ("gone", "L4"): 2}), ROOMY)
    assert r.placement == {L4: 4}
    assert any("gone/L4 not kept" in n for n in r.notes)


def test_a_held_floor_is_not_shrunk() -> None:
    w = one(1, TWIN, TWIN_FREE, current=NOW, held=NOW, floor=NOW)
    assert solve_one(w, TWIN_FREE).placement == NOW


# --- several workloads at once ------------------------------------------------------------------


def test_scarce_cheap_gpus_go_to_the_workload_they_save_most_on() -> None:
    # 4 cheap L4s. "a" serves the same per dollar on either type (an H100 does 4x an L4 at 4x the
    # price); "b" gets only 2x from an H100. First come first served would give the L4s to "a".
    free = {L4: 4, H100: 8}
    a = one(4, [offer(*L4, 1.0), offer(*H100, 4.0, 4.0)], free, key="a")
    b = one(4, [offer(*L4, 1.0), offer(*H100, 4.0, 2.0)], free, key="b")
    s = solve(PlacementProblem((a, b), free))
    assert s.method == "optimal"
    assert s.results["b"].placement == {L4: 4}
    assert s.results["a"].placement == {H100: 1}
    assert sum(r.cost_per_hour for r in s.results.values()) == pytest.approx(8.0)  # FCFS: $12


def test_gpus_a_shrinking_workload_frees_go_to_another_in_the_same_solve() -> None:
    free = {L4: 0, H100: 8}
    x = one(0, [offer(*L4, 1.0), offer(*H100, 4.0)], free, key="x", current={L4: 4}, held={L4: 4})
    y = one(4, [offer(*L4, 1.0), offer(*H100, 4.0)], free, key="y")
    s = solve(PlacementProblem((x, y), free))
    assert s.results["x"].placement == {L4: 0} and s.results["y"].placement == {L4: 4}


def test_under_scarcity_every_workload_s_unmet_replica_weighs_the_same() -> None:
    free = {L4: 4}
    ws = tuple(one(3, [offer(*L4, 1.0)], free, key=k) for k in ("x", "y"))
    s = solve(PlacementProblem(ws, free))
    assert sum(r.total for r in s.results.values()) == 4
    assert sum(r.unplaced for r in s.results.values()) == 2


def test_shared_pools_count_gpus_per_replica() -> None:
    free = {L4: 5}
    x = one(9, [offer(*L4, 1.0)], free, key="x", gpus_per_replica=2)
    y = one(9, [offer(*L4, 1.0)], free, key="y", gpus_per_replica=1)
    s = solve(PlacementProblem((x, y), free))
    assert 2 * s.results["x"].total + s.results["y"].total <= 5
    assert s.results["y"].total == 5  # one unmet replica weighs the same: the 1-GPU ones serve more


# --- inputs and fallbacks -----------------------------------------------------------------------


def test_stale_clusters_make_no_pool() -> None:
    s = FleetState()
    s.ingest(report("a", [workload()], [node("L4", 4)]), now=10.0)
    s.ingest(report("b", [workload()], [node("L4", 6)]), now=5.0)
    assert free_gpus(s.snapshot(now=10.0)) == {("a", "L4"): 4}


def test_an_offer_without_pool_or_own_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="neither a pool nor its own capacity"):
        solve(PlacementProblem((one(1, [offer(*L4, 0.8)], {}),), {}))
    with pytest.raises(ValueError, match="throughput_per_replica"):
        solve(PlacementProblem((one(1, [offer(*L4, 0.8, 0.0)], ROOMY),), ROOMY))


def test_without_an_answer_in_time_the_greedy_fill_is_used_and_said() -> None:
    free = {L4: 4, H100: 3}
    ws = tuple(one(5.3, [offer(*L4, 0.8), offer(*H100, 2.4, 3.2)], free, key=f"w{i}", current={L4: 2},
                   held={L4: 2}) for i in range(3))
    s = solve(PlacementProblem(ws, free), time_limit_s=0)
    assert s.method == "greedy" and any("greedy" in n for n in s.notes)
    assert all(r.unplaced == 0 for r in s.results.values())


def test_the_greedy_fill_keeps_every_hard_constraint() -> None:
    offers = [offer("a", "L4", 0.8), offer("a", "A100", 4.1), offer("b", "L4", 1.0)]
    free = {o.key: 3 for o in offers}
    ws = tuple(one(5, offers, free, key=k, cluster_max={"a": 2}, max_replicas=4, spread=1, current={("b", "L4"): 1},
                   held={("b", "L4"): 1}) for k in ("x", "y"))
    form = formulate(PlacementProblem(ws, free))
    placements = greedy(form)
    assert not pool_violations(form, placements)
    assert all(not score(form, wf, placements[wf.demand.key]).violations for wf in form.workloads)
    assert sum(placements["x"].values()) == 4
