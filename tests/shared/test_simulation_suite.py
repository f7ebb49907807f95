import pytest

from shared.simulation import TraceError
from shared.simulation.suite import fleet_names, fleet_traces, names, suite_trace


def test_the_suite_has_every_load_shape_of_issue_10():
    assert set(names()) >= {"steady", "diurnal", "step", "spike", "ramp", "short-chat", "long-rag", "bimodal"}


@pytest.mark.parametrize("name", names())
def test_a_case_is_deterministic_in_its_seed(name):
    a, b = suite_trace(name, seed=1, duration_s=300), suite_trace(name, seed=1, duration_s=300)
    assert a == b and len(a) > 0
    assert suite_trace(name, seed=2, duration_s=300) != a
    assert a.name == f"synthetic-{name}" and a.duration_s == 300


def count(trace, lo, hi):
    return sum(1 for t in trace.arrival_s if lo <= t < hi)


def test_the_shapes_are_what_they_say():
    d = 1800.0
    spike = suite_trace("spike", duration_s=d)
    at = 2 * d / 3
    assert count(spike, at, at + 60) > 3 * count(spike, at - 120, at - 60)  # x4 for 60 s
    step = suite_trace("step", duration_s=d)
    assert count(step, d / 2, d) > 1.7 * count(step, 0, d / 2)  # x2 after half time
    ramp = suite_trace("ramp", duration_s=d)
    assert count(ramp, d - 300, d) > 3 * count(ramp, 0, 300)
    rag = suite_trace("long-rag", duration_s=d)
    assert min(rag.input_tokens) >= 10_000 and max(rag.input_tokens) <= 100_000
    short = suite_trace("short-chat", duration_s=d)
    assert max(short.input_tokens) <= 500
    bimodal = suite_trace("bimodal", duration_s=d)
    long_share = sum(1 for i in bimodal.input_tokens if i >= 6000) / len(bimodal)
    assert 0.15 < long_share < 0.25


def test_an_unknown_case_is_a_trace_error():
    with pytest.raises(TraceError, match="no synthetic case 'nope'"):
        suite_trace("nope")


def test_the_fleet_case_is_three_workloads_each_deterministic_in_the_seed():
    assert fleet_names() == ["multi-model"]
    a = fleet_traces("multi-model", seed=1, duration_s=600)
    assert a == fleet_traces("multi-model", seed=1, duration_s=600)
    assert [w for w, _ in a] == ["chat", "diurnal", "bimodal"]
    assert [t.name for _, t in a] == [f"synthetic-multi-model-{w}" for w in ("chat", "diurnal", "bimodal")]
    other = fleet_traces("multi-model", seed=2, duration_s=600)
    assert all(x != y for (_, x), (_, y) in zip(a, other, strict=True))
    assert len({t.arrival_s for _, t in a}) == 3  # each workload has its own generator


def test_the_fleet_cases_diurnal_workload_is_out_of_phase_with_the_diurnal_case():
    d = 1800.0
    mine = dict(fleet_traces("multi-model", duration_s=d))["diurnal"]
    single = suite_trace("diurnal", duration_s=d)
    assert count(mine, d / 2, d) > 2 * count(mine, 0, d / 2)  # falls first, peaks in the second half
    assert count(single, 0, d / 2) > 2 * count(single, d / 2, d)
    bimodal = dict(fleet_traces("multi-model", duration_s=d))["bimodal"]
    assert 0.15 < sum(1 for i in bimodal.input_tokens if i >= 6000) / len(bimodal) < 0.25


def test_an_unknown_fleet_case_is_a_trace_error():
    with pytest.raises(TraceError, match="no synthetic fleet case 'nope'"):
        fleet_traces("nope")
