from __future__ import annotations

from hub.placement import Offer, place


def offer(c: str, t: str, cap: int, price: float) -> Offer:
    return Offer(c, t, cap, price)


def test_growth_fills_the_cheapest_type_first() -> None:
    r = place(6, {}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 4, 0.8), offer("c", "A100", 10, 4.1)])
    assert r.placement == {("b", "L4"): 4, ("c", "A100"): 2}
    assert r.unplaced == 0


def test_current_placements_are_kept_when_growing_at_equal_price() -> None:
    r = place(5, {("a", "L4"): 2}, [offer("a", "L4", 10, 0.8), offer("b", "L4", 10, 0.8)])
    assert r.placement[("a", "L4")] >= 2 and r.total == 5 and r.churn == 3


def test_a_cheaper_place_wins_over_keeping_current_replicas() -> None:
    # Churn only breaks ties: it never keeps a replica on a dearer place.
    r = place(5, {("a", "H100"): 2}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 10, 0.8)])
    assert r.placement == {("a", "H100"): 0, ("b", "L4"): 5}


def test_shrinking_removes_the_most_expensive_first() -> None:
    r = place(3, {("a", "H100"): 2, ("b", "L4"): 3}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 10, 0.8)])
    assert r.placement == {("a", "H100"): 0, ("b", "L4"): 3}


def test_what_does_not_fit_is_reported_unplaced() -> None:
    r = place(9, {}, [offer("a", "H100", 2, 12.0), offer("b", "L4", 3, 0.8)])
    assert r.total == 5 and r.unplaced == 4 and r.notes


def test_replicas_on_a_stale_cluster_are_re_placed_elsewhere() -> None:
    r = place(4, {("a", "H100"): 2, ("gone", "L4"): 2}, [offer("a", "H100", 8, 12.0)])
    assert r.placement == {("a", "H100"): 4}
    assert any("gone" in n for n in r.notes)
