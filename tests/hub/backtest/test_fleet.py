"""Several workloads on one fleet: shared GPU pools, the hindsight plan per workload, the comparison."""

import pytest

from hub.backtest import fleet_hindsight as fh
from hub.backtest.attainability import attainable
from hub.backtest.demand import Supply, windows
from hub.backtest.fleet_comparison import compare_fleet, default_policies
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import run_fleet
from hub.backtest.kubernetes_hpa import hpa_queue
from hub.backtest.scenario import FleetScenario, Scenario
from hub.backtest.schedule import ScheduleController
from shared.simulation import ClusterSpec, NodeSpec, synthetic
from shared.simulation.suite import fleet_traces
from tests.hub.backtest.conftest import TINY

SMALL = (ClusterSpec("a", (NodeSpec("a-l4", "L4", 4),)), ClusterSpec("b", (NodeSpec("b-a100", "A100", 2),)))
"""4 L4 and 2 A100 GPUs: little enough that two workloads must share."""


def pair(rates=(2.0, 2.0), duration_s=240.0, **kw) -> FleetScenario:
    traces = [
        (f"w{i}", synthetic("constant", duration_s=duration_s, rate_per_s=r, seed=i, input_tokens=(200, 1200),
                            output_tokens=(20, 200)))
        for i, r in enumerate(rates)
    ]
    return FleetScenario.of("pair", traces, clusters=SMALL, warmup_s=60, **kw)


def test_a_workload_cannot_take_gpus_another_holds():
    fleet = pair()
    first = ScheduleController("s", "w0 takes three L4", [(0.0, {("a", "L4"): 3})])
    second = ScheduleController("s", "w1 wants three L4 later", [(0.0, {("a", "L4"): 1}), (30.0, {("a", "L4"): 3})])
    out = run_fleet(fleet, [first, second])
    # Each starts from its own initial L4; w0's two more take the last free ones, so w1's two more
    # are refused as a whole (as a spoke answers ``capacity``) and it keeps its one.
    w0, w1 = out.workloads
    assert not w0.notes
    assert any("not enough free L4 GPUs" in n for n in w1.notes)
    assert {t.get("L4", 0) for t in w0.timeline_replicas[1:]} == {3}
    assert {t.get("L4", 0) for t in w1.timeline_replicas} == {1}


def test_a_deployment_gets_only_the_gpus_the_other_workloads_left():
    fleet = pair(rates=(6.0, 6.0))
    holder = ScheduleController("s", "w0 holds 3 L4", [(0.0, {("a", "L4"): 3})])
    hpa = hpa_queue(fleet.workloads[1], gpu_type="L4", per_replica=0.5, name="hpa")
    out = run_fleet(fleet, [holder, hpa])
    assert max(t.get("L4", 0) for t in out.workloads[0].timeline_replicas) == 3
    assert max(t.get("L4", 0) for t in out.workloads[1].timeline_replicas) == 1  # its own; 3 + 1 = every L4
    assert max(t.get("L4", 0) for t in out.total.timeline_replicas) == 4


def test_the_bill_of_each_workload_sums_to_the_fleets():
    fleet = pair()
    out = run_fleet(fleet, [ScheduleController("s", "one A100 each", [(0.0, {("b", "A100"): 1})])] * 1)
    assert out.total.cost_usd == pytest.approx(sum(r.cost_usd for r in out.workloads))
    assert out.total.requests == sum(r.requests for r in out.workloads)
    assert len(out.total.completed) == sum(len(r.completed) for r in out.workloads)
    assert all(r.cost_usd > 0 for r in out.workloads)


def test_fleetscale_plans_every_workload_in_one_solve_within_the_shared_pools():
    fleet = pair(rates=(3.0, 3.0), duration_s=180.0)
    controller = FleetscaleController(fleet.workloads[0], default_policies(fleet))
    out = run_fleet(fleet, [controller])
    assert {p.view.key for p in controller.plans} == {"inference/w0", "inference/w1"}
    for r in out.workloads:
        assert r.scale_events > 0  # each workload was scaled by the one controller
    for sample in out.total.timeline_replicas:
        assert sample.get("L4", 0) <= 4 and sample.get("A100", 0) <= 2


def test_shared_mixes_fit_the_fleet_when_the_plans_alone_do_not():
    fleet = pair(rates=(6.0, 6.0))
    supplies = [Supply(s) for s in fleet.workloads]
    busiest = [max(windows(s, 60.0), key=lambda w: sum(w.needs.values())).needs for s in supplies]
    alone = [fh.cheapest_mix(n, s) for n, s in zip(busiest, supplies, strict=True)]
    capacity = supplies[0].capacity
    assert any(sum(m.replicas.get(t, 0) for m in alone) > n for t, n in capacity.items())  # they collide
    shared = fh.shared_mixes(busiest, supplies)
    for t, n in capacity.items():
        assert sum(m.replicas.get(t, 0) for m in shared) <= n


def test_shared_pools_spread_each_workload_within_what_the_others_left():
    pools = {("a", "L4"): 3, ("c", "L4"): 2}
    out = fh.shared_pools([{"L4": 2}, {"L4": 3}], pools)
    assert out == [{("a", "L4"): 2}, {("a", "L4"): 1, ("c", "L4"): 2}]


def multi(duration_s=360.0) -> FleetScenario:
    return FleetScenario.of("synthetic-multi-model", fleet_traces("multi-model", duration_s=duration_s),
                            warmup_s=120)


def plan_of(fleet: FleetScenario, **kw) -> fh.FleetHindsight:
    ok = [attainable(s) for s in fleet.workloads]
    return fh.fleet_hindsight(fleet, [Supply(s) for s in fleet.workloads], ok, attainable(fleet.merged()),
                              target=0.99, window_s=60.0, **kw)


def bursty_pair() -> FleetScenario:
    """Two workloads doubling their load for a minute, on 8 L4 and 4 A100: the capacity model's first
    plan falls just short in replay."""
    clusters = (ClusterSpec("a", (NodeSpec("a-l4", "L4", 8),)), ClusterSpec("b", (NodeSpec("b-a100", "A100", 4),)))
    traces = [
        (f"w{i}", synthetic("step", duration_s=480, rate_per_s=r, step_at_s=240, step_rate_per_s=2 * r,
                            step_back_at_s=300, seed=7 + i, input_tokens=(200, 1500), output_tokens=(20, 200)))
        for i, r in enumerate((3.0, 4.0))
    ]
    return FleetScenario.of("bursty", traces, clusters=clusters, warmup_s=120)


def test_the_hindsight_plan_reaches_the_target_for_each_workload_in_its_own_replay():
    fleet = bursty_pair()
    plan = plan_of(fleet)
    assert min(r.scored.attainment for r in plan.model) < 0.99  # the model-only plan falls short...
    assert plan.rounds >= 1 and plan.reached  # ...the raised one reaches 99 % for each workload
    assert all(r.scored.attainment >= 0.99 for r in plan.results)
    assert plan.total.scored.cost_usd == pytest.approx(sum(r.scored.cost_usd for r in plan.results))
    assert plan.total.scored.cost_usd > plan.model_total.scored.cost_usd
    for sched in plan.schedules:  # each workload's plan stays within the pools
        for _, placement in sched:
            assert all(n <= fleet.workloads[0].pools()[p] for p, n in placement.items())
    failed = plan_of(fleet, max_rounds=0)
    assert not failed.reached and failed.rounds == 0


def test_the_fleet_comparison_is_deterministic_and_its_totals_add_up():
    a = compare_fleet(multi(240.0), grid=TINY, classes_variant=False)  # that variant alone costs more than the rest
    b = compare_fleet(multi(240.0), grid=TINY, classes_variant=False)
    for x, y in zip((a.total, *a.workloads), (b.total, *b.workloads), strict=True):
        assert [r.to_json() | {"wall_s": 0} for r in x.results] == [r.to_json() | {"wall_s": 0} for r in y.results]
    assert [v.scenario.key for v in a.workloads] == ["inference/chat", "inference/diurnal", "inference/bimodal"]
    assert a.hindsight.reached and all(v.hindsight.result.scored.attainment >= 0.99 for v in a.workloads)
    for r in a.total.results:
        parts = [next(p for p in v.results if p.name == r.name) for v in a.workloads if
                 any(p.name == r.name for p in v.results)]
        if r.name.endswith("-per-workload"):
            continue  # in the fleet's view only
        assert r.scored.cost_usd == pytest.approx(sum(p.scored.cost_usd for p in parts))
        assert r.scored.requests == sum(p.scored.requests for p in parts)
    families = {r.family for r in a.total.results}
    assert {"hindsight", "fleetscale", "static", "hpa-gpu-util", "hpa-queue", "keda-queue"} <= families
    # Every policy starts from the same initial fleet: one L4 per workload.
    assert a.total.scenario.initial_fleet() == {("ap-south", "L4"): 3}


def test_a_fleet_scenario_refuses_workloads_that_cannot_share_a_window():
    one = Scenario(synthetic("constant", duration_s=100, rate_per_s=1.0, seed=1), name="x")
    other = Scenario(synthetic("constant", duration_s=200, rate_per_s=1.0, seed=1), name="y")
    with pytest.raises(ValueError, match="duration_s differs"):
        FleetScenario("f", (one, other))
    with pytest.raises(ValueError, match="repeat"):
        FleetScenario("f", (one, one))
