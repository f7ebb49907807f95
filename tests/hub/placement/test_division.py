from __future__ import annotations

from hub.placement.division import divide


def test_shares_follow_the_weights_and_add_up() -> None:
    assert divide(8, {"a": 3, "b": 1}) == {"a": 6, "b": 2}
    assert divide(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}  # remainder to the lowest id on a tie
    assert sum(divide(7, {"a": 5, "b": 3, "c": 2}).values()) == 7


def test_the_largest_remainder_wins_then_the_larger_weight() -> None:
    assert divide(3, {"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert divide(1, {"a": 1, "b": 2}) == {"a": 0, "b": 1}  # remainders 1/3 and 2/3


def test_zero_weights_and_totals_give_nothing() -> None:
    assert divide(5, {"a": 0, "b": 2}) == {"a": 0, "b": 5}
    assert divide(0, {"a": 1}) == {"a": 0}
    assert divide(4, {"a": 0}) == {"a": 0}
