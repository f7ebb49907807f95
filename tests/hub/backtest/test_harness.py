import pytest

from hub.backtest import harness
from hub.backtest.harness import Fleet
from hub.backtest.scenario import Scenario
from hub.backtest.schedule import ScheduleController
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, synthetic

CLUSTERS = (ClusterSpec("a", (NodeSpec("a-l4", "L4", 4),)), ClusterSpec("b", (NodeSpec("b-h100", "H100", 2),)))


def scenario(**kw) -> Scenario:
    trace = synthetic("constant", duration_s=120, rate_per_s=2.0, seed=1, input_tokens=500, output_tokens=200)
    return Scenario(trace, clusters=CLUSTERS, **kw)


def test_a_cluster_without_room_refuses_the_whole_request_unless_pending_pods_are_allowed():
    s = scenario()
    fleet = Fleet(SimWorld(s.clusters, [s.workload_spec({("a", "L4"): 3}, None)]), s)
    assert fleet.set("a", {"L4": 6}) is False
    assert fleet.replicas() == {("a", "L4"): 3}
    assert "not enough free L4 GPUs" in fleet.refusals[0]
    assert fleet.set("a", {"L4": 6}, pending=True) is True  # a Deployment: what fits starts, the rest waits
    assert fleet.replicas() == {("a", "L4"): 4}
    assert fleet.scale_events == 1


def test_apply_sets_every_pool_and_zeroes_the_ones_left_out_once_the_new_ones_serve():
    s = scenario()
    world = SimWorld(s.clusters, [s.workload_spec({("a", "L4"): 2}, None)])
    fleet = Fleet(world, s)
    fleet.apply({("b", "H100"): 1})
    assert fleet.replicas() == {("a", "L4"): 2, ("b", "H100"): 1}  # make-before-break: the H100 is starting
    world.advance(s.cold_start_s)
    fleet.apply({("b", "H100"): 1})
    assert fleet.replicas() == {("a", "L4"): 0, ("b", "H100"): 1}
    assert fleet.scale_events == 2  # one per cluster changed


def test_every_controller_starts_from_the_scenarios_initial_fleet():
    s = scenario(initial={("b", "H100"): 1})
    hold = ScheduleController("hold", "", [(0.0, {("b", "H100"): 1})])
    run = harness.run(s, hold)
    assert run.timeline_replicas[0] == {"H100": 1}
    assert min(r.arrival_s + r.ttft_s for r in run.completed) < 1.0  # served at once: it was ready at time 0


def test_cost_is_billed_to_the_trace_end_while_unfinished_requests_drain_after_it():
    s = scenario(drain_limit_s=600)
    run = harness.run(s, ScheduleController("fixed", "", [(0.0, {("a", "L4"): 1})]))
    assert run.gpu_seconds == {("a", "L4"): pytest.approx(s.duration_s)}
    assert run.cost_usd == pytest.approx(s.duration_s / 3600 * 0.805)
    assert run.unfinished == 0  # one L4 falls behind at 2 req/s; the drain lets the backlog finish
    assert run.ended_s > s.duration_s
