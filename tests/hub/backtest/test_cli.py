import json

import pytest

from shared import cli

FAMILIES = {"hindsight", "fleetscale", "static", "hpa-gpu-util", "hpa-queue", "keda-queue"}


@pytest.fixture
def trace_csv(tmp_path):
    rows = ["timestamp_s,input_tokens,output_tokens"]
    rows += [f"{i * 1.5:.3f},{300 + 37 * (i % 11)},{20 + 7 * (i % 5)}" for i in range(80)]
    path = tmp_path / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_simulate_writes_results_json_and_a_self_contained_plot(tmp_path, trace_csv, capsys):
    out = tmp_path / "out"
    assert cli.main(["simulate", "--trace", str(trace_csv), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {p["family"] for p in results["policies"]} >= FAMILIES
    assert results["policies"][0]["name"] == "hindsight"
    assert results["trace"] == {"name": "tiny", "requests": 80, "duration_s": pytest.approx(118.5),
                                "clipped_to_context": 0, "context_tokens": 131_072}
    assert results["slo_ttft_s"] == 2.0
    assert results["initial_fleet"] == {"ap-south/L4": 1}
    assert results["scored_from_s"] == 0.0  # a trace shorter than twice the warm-up is scored whole
    for p in results["policies"]:
        for span in ("whole_run", "scored_window"):
            assert set(p[span]) >= {"slo_attainment", "attainable", "unattainable", "ttft_p95_s", "gpu_hours",
                                    "cost_usd", "scale_events"}
    assert len(results["checks"]) == 7
    page = (out / "plot.html").read_text()
    assert page.count("<svg") >= 2 + len(FAMILIES)
    assert "<script" not in page and "src=" not in page and "href=" not in page
    captured = capsys.readouterr()
    printed = captured.out
    assert "hindsight" in printed and "fleetscale" in printed and "attainment (scored)" in printed
    # One progress line per policy run, on stderr (the table stays alone on stdout).
    for p in results["policies"]:
        if p["family"] != "hindsight-windows":
            assert p["name"] in captured.err
    checks = [line for line in printed.splitlines() if line.startswith(("PASS  ", "FAIL  "))]
    assert len(checks) == 7


def test_simulate_takes_the_slo_and_a_policy_file(tmp_path, trace_csv):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "- id: chat\n"
        "  targets: {workloads: [{namespace: apps, name: chat}]}\n"
        "  bounds: {min_replicas: 1, max_replicas: 3}\n"
        "  signals: [{metric: queue_per_replica, target: 2}]\n"
    )
    out = tmp_path / "out"
    rc = cli.main(["simulate", "--trace", str(trace_csv), "--policy", str(policy), "--slo-ttft-s", "0.5",
                   "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert results["slo_ttft_s"] == 0.5
    assert results["fleetscale_policy"]["id"] == "chat"
    fleetscale = next(p for p in results["policies"] if p["name"] == "fleetscale")
    assert max(sum(r.values()) for r in fleetscale["timeline"]["replicas_by_gpu_type"]) <= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "/nonexistent/trace.csv"], "trace file /nonexistent/trace.csv does not exist"),
        (["--trace", "no_such_bundled_trace"], "no bundled trace 'no_such_bundled_trace'"),
    ],
)
def test_a_missing_trace_is_a_clear_error_with_exit_status_2(tmp_path, args, message, capsys):
    assert cli.main(["simulate", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fleetscale simulate: ") and message in err
    assert not (tmp_path / "out").exists()


def test_a_malformed_trace_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_s,input_tokens,output_tokens\n0.0,100,10\n1.0,abc,10\n")
    assert cli.main(["simulate", "--trace", str(bad)]) == 2
    assert f"{bad}:3" in capsys.readouterr().err


def test_a_bad_policy_file_names_the_field(tmp_path, trace_csv, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("- id: chat\n  targets: {workloads: [{namespace: a, name: b}]}\n  signals: []\n")
    assert cli.main(["simulate", "--trace", str(trace_csv), "--policy", str(policy)]) == 2
    assert "policy #0: signals" in capsys.readouterr().err
    missing = tmp_path / "absent.yaml"
    assert cli.main(["simulate", "--trace", str(trace_csv), "--policy", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_bad_option_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["simulate", "--trace", "azure2023_code_1h", "--slo-ttft-s", "0"])
    assert exc.value.code == 2
    assert "--slo-ttft-s must be > 0" in capsys.readouterr().err


def test_simulate_runs_the_multi_model_fleet_case(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["simulate", "--trace", "synthetic-multi-model", "--duration-s", "200", "--warmup-s", "100",
                   "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    keys = ["inference/chat", "inference/diurnal", "inference/bimodal"]
    assert results["fleet"] == "synthetic-multi-model" and results["workloads"] == keys
    assert set(results["per_workload"]) == set(keys)
    total = results["total"]
    assert total["initial_fleet"] == {"ap-south/L4": 3}  # one L4 per workload, for every policy
    assert {p["family"] for p in total["policies"]} >= FAMILIES
    assert len(total["checks"]) == 7
    for key in keys:
        mine = results["per_workload"][key]
        assert mine["trace"]["name"] == f"synthetic-multi-model-{key.split('/')[1]}"
        assert len(mine["checks"]) == 7
    # The fleet's bill is its workloads' bills, run by run.
    for p in total["policies"]:
        if p["name"].endswith("-per-workload"):
            continue
        parts = [next(q for q in results["per_workload"][k]["policies"] if q["name"] == p["name"]) for k in keys]
        assert p["scored_window"]["cost_usd"] == pytest.approx(sum(q["scored_window"]["cost_usd"] for q in parts))
    printed = capsys.readouterr().out
    assert "the fleet in total" in printed
    for key in keys:
        assert f"workload {key}" in printed
    assert (out / "plot.html").is_file()


def test_the_fleet_case_refuses_a_policy_file(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("- id: chat\n")
    assert cli.main(["simulate", "--trace", "synthetic-multi-model", "--policy", str(policy)]) == 2
    assert "cannot be used with the fleet case synthetic-multi-model" in capsys.readouterr().err
