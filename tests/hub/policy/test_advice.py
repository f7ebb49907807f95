"""The advisor's guard rails: table cases, and properties over any advice an LLM could give."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.policy.advice import bound_advice


@pytest.mark.parametrize(("engine", "advised", "mode", "floor", "delta", "want", "applied"), [
    (5, 3, "advisory", 0, 2, 5, False),      # advisory never applies
    (5, None, "bounded", 0, 2, 5, False),    # no advice
    (5, 4, "bounded", 0, 2, 4, True),        # within the rails
    (5, 1, "bounded", 0, 2, 3, True),        # clipped to engine - delta
    (5, 40, "bounded", 0, 2, 7, True),       # clipped to engine + delta
    (5, 3, "bounded", 5, 2, 5, False),       # never below the SLO-safe floor
    (5, 4, "bounded", 4, 2, 4, True),
    (9, 12, "bounded", 0, 5, 10, True),      # never above max_replicas (10)
    (1, 0, "bounded", 0, 3, 1, False),       # never below min_replicas (1)
    (5, 7, "off", 0, 2, 5, False),
])
def test_the_rails(engine: int, advised: int | None, mode: str, floor: int, delta: int, want: int,
                   applied: bool) -> None:
    out = bound_advice(engine, advised, mode=mode, min_replicas=1, max_replicas=10, floor=floor,  # type: ignore[arg-type]
                       max_delta=delta)
    assert (out.desired, out.applied) == (want, applied)
    assert str(advised) in out.reason or advised is None


@given(
    bounds=st.tuples(st.integers(0, 50), st.integers(0, 50)).map(sorted),
    engine_offset=st.integers(0, 50),
    advised=st.one_of(st.none(), st.integers(-(10**30), 10**30)),
    floor_share=st.floats(0, 1),
    delta=st.integers(0, 20),
    mode=st.sampled_from(["off", "advisory", "bounded"]),
)
def test_whatever_the_model_says_the_count_stays_inside_every_rail(
    bounds: list[int], engine_offset: int, advised: int | None, floor_share: float, delta: int, mode: str
) -> None:
    lo, hi = bounds[0], max(bounds[1], 1)
    engine = min(lo + engine_offset, hi)  # the engine honours its own bounds
    floor = int(engine * floor_share)  # and its own SLO floor
    out = bound_advice(engine, advised, mode=mode, min_replicas=lo, max_replicas=hi, floor=floor,  # type: ignore[arg-type]
                       max_delta=delta)
    assert lo <= out.desired <= hi
    assert abs(out.desired - engine) <= delta
    assert out.desired >= floor
    if mode != "bounded":
        assert out.desired == engine and not out.applied
    assert out.applied == (out.desired != engine)
