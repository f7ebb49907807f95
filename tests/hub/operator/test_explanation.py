"""``fleetscale explain`` on a decision whose audit carries measured start times."""

from __future__ import annotations

from hub.operator.explanation import explain


def test_measured_start_times_are_explained_not_left_under_other() -> None:
    decision = {"id": "d1", "workload": "inference/llama", "audit": {
        "inputs": [], "proposals": [], "clamps": [],
        "starts": {"east/H100": {"start_s": 300.0, "starts": 12, "tiers": {"cold": 310.0, "cached": 95.0,
                                                                            "woken": 4.0}}}}}
    text = explain(decision)
    assert "Measured start of a new replica" in text
    assert "east/H100: 300 s over 12 starts (cold 310 s, cached 95 s, woken 4 s)" in text
    assert "Other audit fields" not in text
    assert "Measured start" not in explain({"id": "d2", "audit": {"starts": {}}})
