"""Knative's panic state machine: enter at the threshold, never decrease, leave after a calm stable window."""

from __future__ import annotations

from hub.policy.model import PanicSpec
from hub.policy.panic import PanicState

SPEC = PanicSpec(stable_window_seconds=60, panic_threshold_percent=200)


def test_enters_at_twice_the_ready_replicas_and_not_below() -> None:
    state = PanicState()
    calm = state.update(SPEC, now=0, proposal=3, ready=2)
    assert not calm.panicking and calm.ratio == 1.5
    burst = state.update(SPEC, now=1, proposal=4, ready=2)
    assert burst.panicking and burst.entered and burst.floor == 4


def test_the_floor_never_decreases_while_panicking() -> None:
    state = PanicState()
    state.update(SPEC, now=0, proposal=8, ready=2)
    assert state.update(SPEC, now=10, proposal=12, ready=4).floor == 12
    later = state.update(SPEC, now=20, proposal=3, ready=10)
    assert later.panicking and later.floor == 12


def test_leaves_after_a_whole_stable_window_without_the_condition() -> None:
    state = PanicState()
    state.update(SPEC, now=0, proposal=8, ready=2)
    state.update(SPEC, now=30, proposal=9, ready=4)  # still over: extends the panic
    assert state.update(SPEC, now=89, proposal=2, ready=8).panicking  # 59 s since the last burst
    out = state.update(SPEC, now=90, proposal=2, ready=8)
    assert not out.panicking and out.left and out.floor == 0
    assert not state.update(SPEC, now=91, proposal=3, ready=8).panicking


def test_disabled_never_panics_and_a_missing_proposal_does_not_trigger() -> None:
    off = PanicSpec(enabled=False)
    assert not PanicState().update(off, now=0, proposal=100, ready=1).panicking
    assert not PanicState().update(SPEC, now=0, proposal=None, ready=1).panicking
    assert PanicState().update(SPEC, now=0, proposal=2, ready=0).panicking  # ready counts as at least 1


def test_the_floor_holds_the_load_not_the_count_when_the_rating_moves() -> None:
    # 30 replicas counted while the start-up L4 was rated 129 tokens/s (on the whole mix's long
    # tail) held 30 x 129 tokens/s; once it is rated 1,029 tokens/s that load is 4 replicas, not 30.
    state = PanicState()
    assert state.update(SPEC, now=0, proposal=30, ready=1, per_replica=129.0).floor == 30
    later = state.update(SPEC, now=1, proposal=4, ready=1, per_replica=1029.0)
    assert later.panicking and later.floor == 4
    # A larger load replaces the held one; a smaller one does not lower the floor.
    assert state.update(SPEC, now=2, proposal=6, ready=1, per_replica=1029.0).floor == 6
    assert state.update(SPEC, now=3, proposal=2, ready=1, per_replica=2058.0).floor == 3


def test_a_count_without_a_capacity_estimate_is_held_as_a_count() -> None:
    state = PanicState()
    state.update(SPEC, now=0, proposal=8, ready=2, per_replica=None)
    assert state.update(SPEC, now=1, proposal=5, ready=2, per_replica=500.0).floor == 8


def test_the_floor_is_a_load_read_in_replicas_of_todays_mix() -> None:
    state = PanicState()
    start = state.update(SPEC, now=0, proposal=30, ready=1, per_replica=130.0)  # 30 start-up L4s
    assert start.floor == 30 and start.load == 3900.0
    later = state.update(SPEC, now=5, proposal=1, ready=1, per_replica=3900.0)  # one A100 takes it all
    assert later.floor == 1 and later.load == 3900.0
    assert PanicState().update(SPEC, now=0, proposal=4, ready=1).load is None  # no estimate: a bare count
