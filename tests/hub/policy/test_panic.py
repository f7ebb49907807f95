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
