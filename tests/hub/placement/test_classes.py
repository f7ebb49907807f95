"""Placement of demand in request classes: each class only on the GPU types that serve it."""

from __future__ import annotations

import pytest

from hub.placement import LoadClass, Offer, PlacementProblem, WorkloadDemand, solve
from hub.placement.assignment import assign
from hub.placement.formulation import formulate, score
from hub.policy.classes import fleet_capacity

L4 = ("a", "L4")
A100 = ("b", "A100")
ROOMY = {L4: 16, A100: 16}
OFFERS = (Offer(*L4, None, 0.8, 1000.0), Offer(*A100, None, 4.1, 5000.0))
# Short prompts: an L4 takes 1,200 tokens/s of them; long ones only an A100 serves (4,000 tokens/s).
SHORT = LoadClass("short", 0.6, {"L4": 1200.0, "A100": 6000.0})
LONG = LoadClass("long", 0.4, {"A100": 4000.0})
SPLIT = [(c.share, c.throughput) for c in (SHORT, LONG)]


def classed(demand: float, **kw: object) -> WorkloadDemand:
    return WorkloadDemand(key="w", demand=demand, offers=OFFERS, classes=(SHORT, LONG), **kw)  # type: ignore[arg-type]


def test_short_prompts_go_to_cheap_gpus_and_long_ones_to_the_types_that_serve_them() -> None:
    # 6,000 tokens/s: 3,600 short (3 L4 = $2.40) + 2,400 long (1 A100 = $4.10). The A100 has room
    # left for short prompts: 2,400 / 4,000 of its time on long ones leaves 0.4 x 6,000 = 2,400 short.
    s = solve(PlacementProblem((classed(6000.0),), ROOMY))
    r = s.results["w"]
    assert r.placement == {L4: 1, A100: 1}
    assert r.unplaced == 0
    assert r.cost_per_hour == pytest.approx(4.9)


def test_without_classes_the_whole_load_lands_on_the_cheapest_per_token_type() -> None:
    # One figure per type for the whole mix: six L4s, none of which can serve the long prompts in time.
    whole = WorkloadDemand(key="w", demand=6000.0, offers=OFFERS)
    r = solve(PlacementProblem((whole,), ROOMY)).results["w"]
    assert r.placement == {L4: 6}


def test_a_class_no_offered_type_serves_is_reported_unplaced_not_put_on_a_slow_type() -> None:
    only_l4 = WorkloadDemand(key="w", demand=6000.0, offers=(OFFERS[0],), classes=(SHORT, LONG))
    r = solve(PlacementProblem((only_l4,), ROOMY)).results["w"]
    assert r.placement == {L4: 3}  # the short class, whole; nothing for the long one
    assert r.unplaced > 0


def test_the_score_counts_class_coverage_the_way_the_milp_does() -> None:
    form = formulate(PlacementProblem((classed(6000.0),), ROOMY))
    wf = form.workloads[0]
    assert score(form, wf, {L4: 1, A100: 1}).unmet == 0
    # Eight L4s carry more tokens/s than the demand, but none of the long prompts.
    assert score(form, wf, {L4: 8}).unmet > 0


def test_assignment_splits_a_fast_replica_between_classes() -> None:
    a = assign((SHORT, LONG), 6000.0, {L4: 1, A100: 1})
    assert sum(a.unserved) == pytest.approx(0.0, abs=1e-6)
    assert a.share[(A100, 1)] == pytest.approx(0.6)  # 2,400 long tokens/s at 4,000
    assert a.share[(L4, 0)] == pytest.approx(1.0)


def test_a_fleet_is_worth_the_largest_demand_it_serves_in_the_classes_shares() -> None:
    # One A100 and one L4: the L4 takes 1,200 short tokens/s; the A100 the long 0.4 D at 4,000
    # and the rest of the short at 6,000: 0.4 D / 4000 + (0.6 D - 1200) / 6000 = 1, so D = 6,000
    assert fleet_capacity(SPLIT, {"L4": 1, "A100": 1}) == pytest.approx(6000.0)
    # L4s alone serve no long prompt, so no demand of this split: worth 0, not 1,200 x n.
    assert fleet_capacity(SPLIT, {"L4": 4}) == 0.0
    # Placed again, the worth of a fleet asks for no more than that fleet.
    assert solve(PlacementProblem((classed(6000.0),), ROOMY)).results["w"].placement == {L4: 1, A100: 1}


@pytest.mark.parametrize("classes", [
    (LoadClass("a", 0.5, {"L4": 1.0}),),
    (LoadClass("a", 0.7, {"L4": 1.0}), LoadClass("b", 0.7, {"A100": 1.0})),
    (LoadClass("a", 0.5, {"L4": 0.0}), LoadClass("b", 0.5, {"A100": 1.0})),
])
def test_inconsistent_classes_are_refused(classes: tuple[LoadClass, ...]) -> None:
    with pytest.raises(ValueError, match="class"):
        WorkloadDemand(key="w", demand=1.0, offers=OFFERS, classes=classes).validate()
