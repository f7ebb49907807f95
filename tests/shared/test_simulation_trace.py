import pytest

from shared.simulation import Trace, TraceError, bundled_trace, load_trace, synthetic


def test_bundled_conv_trace_is_the_whole_azure_file():
    trace = bundled_trace("azure2023_conv_1h")
    assert len(trace) == 19_366
    assert trace.arrival_s[0] == 0.0
    assert trace.duration_s == pytest.approx(3501.7, abs=0.1)
    assert list(trace.arrival_s) == sorted(trace.arrival_s)


def test_unknown_bundled_trace_lists_the_known_ones():
    with pytest.raises(TraceError, match="azure2023_code_1h"):
        bundled_trace("nope")


def test_loader_reads_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp_s,input_tokens,output_tokens\n0.0,10,2\n1.5,20,3\n")
    trace = load_trace(path)
    assert trace.arrival_s == (0.0, 1.5) and trace.input_tokens == (10, 20) and trace.output_tokens == (2, 3)


@pytest.mark.parametrize(
    ("body", "line", "match"),
    [
        ("0.0,10,2\n1.0,x,3\n", 3, "invalid literal"),
        ("0.0,10,2\n1.0,10\n", 3, "expected 3 fields"),
        ("2.0,10,2\n1.0,10,3\n", 3, "before the previous"),
        ("0.0,0,2\n", 2, ">= 1"),
    ],
)
def test_loader_errors_name_file_and_line(tmp_path, body, line, match):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp_s,input_tokens,output_tokens\n" + body)
    with pytest.raises(TraceError, match=match) as info:
        load_trace(path)
    assert f"bad.csv:{line}:" in str(info.value)


def test_loader_rejects_a_wrong_header(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("time,in,out\n0,1,1\n")
    with pytest.raises(TraceError, match=r"h\.csv:1: expected header"):
        load_trace(path)


def test_same_seed_gives_the_same_trace_and_another_seed_does_not():
    a = synthetic("sine", duration_s=300, rate_per_s=5, seed=7, input_tokens=(100, 900))
    b = synthetic("sine", duration_s=300, rate_per_s=5, seed=7, input_tokens=(100, 900))
    c = synthetic("sine", duration_s=300, rate_per_s=5, seed=8, input_tokens=(100, 900))
    assert a == b
    assert a != c


def test_step_trace_changes_rate_at_the_step_and_back():
    trace = synthetic(
        "step", duration_s=600, rate_per_s=2, step_at_s=200, step_rate_per_s=10, step_back_at_s=400
    )
    low = sum(1 for t in trace.arrival_s if t < 200) / 200
    high = sum(1 for t in trace.arrival_s if 200 <= t < 400) / 200
    back = sum(1 for t in trace.arrival_s if t >= 400) / 200
    assert 1.5 < low < 2.5 and 8.5 < high < 11.5 and 1.5 < back < 2.5


def test_scaled_trace_arrives_faster_with_the_same_requests():
    trace = synthetic("constant", duration_s=100, rate_per_s=1, seed=1)
    fast = trace.scaled(2.0)
    assert len(fast) == len(trace) and fast.duration_s == 50
    assert fast.arrival_s[-1] == pytest.approx(trace.arrival_s[-1] / 2)


def test_trace_rejects_unsorted_arrivals():
    with pytest.raises(TraceError, match="not sorted"):
        Trace("x", (1.0, 0.5), (1, 1), (1, 1), duration_s=1.0)
