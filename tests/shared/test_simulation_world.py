import pytest

from shared.simulation import (
    CapacityError,
    ClusterSpec,
    FlowControl,
    NodeSpec,
    SimWorld,
    UnknownTargetError,
    WorkloadSpec,
    from_requests,
    synthetic,
)


def one_cluster_world(trace, *, gpu="L4", gpus=8, replicas=1, cold_start_s=90.0):
    cluster = ClusterSpec("east", (NodeSpec("n1", gpu, gpus),))
    initial = {("east", gpu): replicas} if replicas else {}
    workload = WorkloadSpec("llm", "chat", trace, cold_start_s=cold_start_s, initial_replicas=initial)
    return SimWorld([cluster], [workload])


def load(rate, duration=120.0, seed=1):
    return synthetic(
        "constant", duration_s=duration, rate_per_s=rate, seed=seed, input_tokens=512, output_tokens=64
    )


def test_light_load_gets_low_ttft_and_nothing_waits():
    world = one_cluster_world(load(0.2))
    world.advance(120)
    samples = world.samples("east", "llm", "chat", 60)
    assert samples.requests_waiting == 0
    assert samples.ttft.p99_s is not None and samples.ttft.p99_s < 0.5
    assert samples.request_rate_per_s == pytest.approx(0.2, abs=0.15)
    assert samples.kv_cache_usage_ratio is not None and samples.kv_cache_usage_ratio < 0.2


def test_overload_builds_a_queue_and_ttft_keeps_growing():
    world = one_cluster_world(load(12.0))
    world.advance(40)
    early = world.samples("east", "llm", "chat", 20)
    world.advance(80)
    late = world.samples("east", "llm", "chat", 20)
    assert early.requests_waiting > 0
    assert late.requests_waiting > early.requests_waiting
    assert late.ttft.p50_s > early.ttft.p50_s
    assert all(g.utilization_ratio == 1.0 for g in late.gpus)


def test_more_replicas_give_lower_ttft():
    def p95_ttft(replicas):
        world = one_cluster_world(load(4.0, duration=60), replicas=replicas)
        world.advance(60)
        return world.samples("east", "llm", "chat", 60).ttft.p95_s

    assert p95_ttft(4) < p95_ttft(1)


def test_h100_serves_the_same_load_faster_than_l4():
    def p50_e2e(gpu):
        world = one_cluster_world(load(1.0, duration=60), gpu=gpu)
        world.advance(60)
        return world.samples("east", "llm", "chat", 60).e2e.p50_s

    assert p50_e2e("H100") < p50_e2e("L4") / 3


def test_cold_start_delays_readiness_exactly():
    world = one_cluster_world(load(0.5), replicas=0, cold_start_s=90.0)
    world.advance(10)
    assert world.set_replicas("east", "llm", "chat", "L4", 2) == 2
    assert world.inventory("east")[0].free_gpus == 6
    world.advance(99.999)
    [state] = world.workload_states("east")
    assert (state.desired_replicas, state.ready_replicas) == (2, 0)
    world.advance(100)
    [state] = world.workload_states("east")
    assert state.ready_replicas == 2


def test_replicas_report_their_start_as_a_spoke_measures_it_and_the_initial_fleet_none():
    from shared.messages import StartTier

    world = one_cluster_world(load(0.5), replicas=1, cold_start_s=75.0)
    [state] = world.workload_states("east")
    assert state.variants[0].starts == ()  # ready at time 0: it never started
    world.set_replicas("east", "llm", "chat", "L4", 3)
    world.advance(80)
    [state] = world.workload_states("east")
    [starts] = state.variants[0].starts
    assert (starts.tier, starts.recent_s, starts.count) == (StartTier.COLD, (75.0, 75.0), 2)


def test_requests_wait_at_the_gateway_until_a_replica_is_ready():
    world = one_cluster_world(load(1.0), replicas=0, cold_start_s=30.0)
    world.set_replicas("east", "llm", "chat", "L4", 1)
    world.advance(20)
    queued = world.samples("east", "llm", "chat", 10)
    assert queued.requests_waiting is not None and queued.requests_waiting > 0
    assert queued.requests_running is None
    world.advance(60)
    first = min(world.completed_requests(), key=lambda r: r.arrival_s)
    assert first.arrival_s + first.ttft_s >= 30.0


def test_capacity_error_changes_nothing():
    world = one_cluster_world(load(0.5), gpus=4, replicas=2)
    before = (world.inventory("east"), world.workload_states("east"))
    with pytest.raises(CapacityError, match="L4"):
        world.scale("east", "llm", "chat", {"L4": 5})
    with pytest.raises(CapacityError):
        world.set_replicas("east", "llm", "chat", "H100", 1)
    assert (world.inventory("east"), world.workload_states("east")) == before


def test_unknown_workload_and_cluster_are_lookup_errors():
    world = one_cluster_world(load(0.5))
    with pytest.raises(UnknownTargetError):
        world.set_replicas("east", "llm", "nope", "L4", 1)
    with pytest.raises(UnknownTargetError):
        world.inventory("west")


def test_scale_down_removes_starting_replicas_first():
    world = one_cluster_world(load(0.5), replicas=2)
    world.set_replicas("east", "llm", "chat", "L4", 4)
    world.set_replicas("east", "llm", "chat", "L4", 2)
    [state] = world.workload_states("east")
    assert (state.desired_replicas, state.ready_replicas) == (2, 2)
    assert world.inventory("east")[0].free_gpus == 6


def test_removed_replica_drains_its_running_requests_and_then_frees_its_gpu():
    trace = from_requests("one", [(0.0, 256, 400)])
    world = one_cluster_world(trace, replicas=1)
    world.advance(1.0)
    world.set_replicas("east", "llm", "chat", "L4", 0)
    assert world.inventory("east")[0].free_gpus == 7
    world.advance(120)
    [done] = world.completed_requests()
    assert done.e2e_s > 1.0
    assert world.inventory("east")[0].free_gpus == 8
    assert world.gpu_seconds()[("east", "L4")] == pytest.approx(done.e2e_s)


def test_samples_are_missing_with_reasons_when_nothing_happened():
    world = one_cluster_world(from_requests("empty", [], duration_s=60), replicas=1)
    world.advance(30)
    samples = world.samples("east", "llm", "chat", 10)
    assert samples.ttft.p50_s is None and samples.e2e.p99_s is None and samples.itl.p95_s is None
    assert samples.missing_reasons["e2e"] == "no requests completed in window"
    assert samples.missing_reasons["cpu_utilization_ratio"] == "not simulated"
    assert samples.request_rate_per_s == 0.0
    assert samples.gpus[0].utilization_ratio == 0.0


def test_samples_of_a_cluster_without_replicas_are_missing_not_zero():
    clusters = [
        ClusterSpec("east", (NodeSpec("a", "L4", 2),)),
        ClusterSpec("west", (NodeSpec("b", "L4", 2),)),
    ]
    workload = WorkloadSpec("llm", "chat", load(1.0), initial_replicas={("east", "L4"): 1})
    world = SimWorld(clusters, [workload])
    world.advance(30)
    west = world.samples("west", "llm", "chat", 10)
    assert west.requests_waiting is None and west.request_rate_per_s is None and west.gpus == ()
    assert "no ready replicas" in west.missing_reasons["requests_running"]
    assert world.samples("east", "llm", "chat", 10).request_rate_per_s > 0


def test_same_inputs_give_identical_results():
    def run():
        world = one_cluster_world(load(6.0, duration=60, seed=3), replicas=2)
        world.advance(30)
        world.set_replicas("east", "llm", "chat", "L4", 3)
        world.advance(90)
        return world.completed_requests(), world.samples("east", "llm", "chat", 30), world.cost()

    assert run() == run()


def test_cost_includes_the_cold_start():
    world = one_cluster_world(from_requests("empty", [], duration_s=600), replicas=0, cold_start_s=90)
    world.set_replicas("east", "llm", "chat", "L4", 1)
    world.advance(3600)
    assert world.gpu_seconds() == {("east", "L4"): pytest.approx(3600.0)}
    assert world.cost() == pytest.approx(0.805)


def test_routing_prefers_the_faster_replica_at_light_load():
    cluster = ClusterSpec("east", (NodeSpec("a", "L4", 1), NodeSpec("b", "H100", 1)))
    initial = {("east", "L4"): 1, ("east", "H100"): 1}
    workload = WorkloadSpec("llm", "chat", load(0.2), initial_replicas=initial)
    world = SimWorld([cluster], [workload])
    world.advance(120)
    served = {r.gpu_type for r in world.completed_requests()}
    assert served == {"H100"}


def backlog_world(flow_control):
    """One L4 ready and seven starting, under a load one L4 cannot keep up with."""
    trace = synthetic("constant", duration_s=120, rate_per_s=6.0, seed=2, input_tokens=1500, output_tokens=200)
    workload = WorkloadSpec("llm", "chat", trace, cold_start_s=30.0, initial_replicas={("east", "L4"): 1},
                            flow_control=flow_control)
    world = SimWorld([ClusterSpec("east", (NodeSpec("east-l4", "L4", 8),))], [workload])
    world.set_replicas("east", "llm", "chat", "L4", 8)
    return world


def test_flow_control_holds_requests_at_the_gateway_while_every_replica_is_saturated():
    world = backlog_world(FlowControl())
    world.advance(25)  # the new replicas are still starting
    waiting = world.samples("east", "llm", "chat", 1).requests_waiting
    assert world.gateway_waiting("llm", "chat") > 0
    assert waiting == world.gateway_waiting("llm", "chat") + 6  # the pod holds at most queue_depth + 1 waiting
    world.advance(29.99)
    before = world.gateway_waiting("llm", "chat")
    world.advance(30.0)  # seven replicas become ready and take from the gateway until they saturate
    assert world.gateway_waiting("llm", "chat") < before - 7 * 6


def test_with_flow_control_a_scale_up_serves_the_backlog_sooner():
    def late(flow_control):
        world = backlog_world(flow_control)
        world.advance(400)
        assert world.unfinished_requests() == 0
        return max(r.ttft_s for r in world.completed_requests())

    assert late(FlowControl()) < late(None) / 2  # without it the backlog stays queued at the first pod


def test_the_gateway_follows_routing_rules_by_prompt_length():
    from shared.messages import RoutingRule
    from shared.simulation import Trace

    # Bursts of four 6,000-token prompts and four 300-token ones on one L4 and one A100: by shortest
    # expected delay alone, some long prompts go to the idle L4 (and take it seconds to prefill).
    arrivals = tuple(float(10 * (i // 8)) for i in range(48))
    inputs = tuple(6000 if i % 8 < 4 else 300 for i in range(48))
    trace = Trace("mixed", arrivals, inputs, tuple(50 for _ in range(48)), 60.0)

    def served_long(rules):
        cluster = ClusterSpec("east", (NodeSpec("a", "L4", 1), NodeSpec("b", "A100", 1)))
        workload = WorkloadSpec("llm", "chat", trace, initial_replicas={("east", "L4"): 1, ("east", "A100"): 1})
        world = SimWorld([cluster], [workload])
        world.set_routing("llm", "chat", rules)
        world.advance(300)
        done = world.completed_requests()
        assert len(done) == 48
        return {r.gpu_type for r in done if r.input_tokens > 1000}

    assert "L4" in served_long([])
    assert served_long([
        RoutingRule(max_prompt_tokens=1000, gpu_types=("L4", "A100"), weights={"L4": 1.0}),
        RoutingRule(min_prompt_tokens=1000, gpu_types=("A100",), weights={"A100": 1.0}),
    ]) == {"A100"}


def test_containers_follow_the_load_and_carry_the_pod_templates_requests():
    idle = one_cluster_world(from_requests("empty", [], duration_s=60), replicas=1)
    idle.advance(30)
    [quiet] = idle.samples("east", "llm", "chat", 10).containers
    busy = one_cluster_world(load(4.0), replicas=1)
    busy.advance(60)
    [loaded] = busy.samples("east", "llm", "chat", 10).containers
    assert quiet.container == "engine" and quiet.pod.startswith("chat-") and quiet.gpu_type == "L4"
    assert loaded.cpu_cores is not None and quiet.cpu_cores is not None and loaded.cpu_cores > quiet.cpu_cores
    assert loaded.gpu_memory_bytes is not None and quiet.gpu_memory_bytes is not None
    assert loaded.gpu_memory_bytes > quiet.gpu_memory_bytes  # KV in use on top of the weights
    assert quiet.cpu_request_cores == 8.0 and quiet.memory_limit_bytes == quiet.memory_request_bytes


def test_containers_are_missing_with_a_reason_without_a_ready_replica():
    world = one_cluster_world(from_requests("empty", [], duration_s=60), replicas=0)
    world.advance(30)
    samples = world.samples("east", "llm", "chat", 10)
    assert samples.containers == () and samples.missing_reasons["containers"] == "no ready replica"


def test_workloads_share_the_nodes_and_each_is_billed_for_its_own_replicas():
    cluster = ClusterSpec("east", (NodeSpec("n1", "L4", 4),))
    a = WorkloadSpec("llm", "a", from_requests("a", [(0.0, 256, 400)]), initial_replicas={("east", "L4"): 3})
    b = WorkloadSpec("llm", "b", load(1.0), initial_replicas={("east", "L4"): 1})
    world = SimWorld([cluster], [a, b])
    with pytest.raises(CapacityError):
        world.set_replicas("east", "llm", "b", "L4", 2)  # a holds the other three GPUs
    world.advance(1.0)
    world.set_replicas("east", "llm", "a", "L4", 0)  # a drains; its GPUs come free when its request ends
    world.advance(120.0)
    assert world.set_replicas("east", "llm", "b", "L4", 4) == 4
    world.advance(600.0)
    total, mine, theirs = world.gpu_seconds(), world.gpu_seconds("llm/a"), world.gpu_seconds("llm/b")
    assert total[("east", "L4")] == pytest.approx(mine[("east", "L4")] + theirs[("east", "L4")])
    assert theirs[("east", "L4")] > 600.0 > mine[("east", "L4")]
    assert world.cost() == pytest.approx(world.cost("llm/a") + world.cost("llm/b"))
    with pytest.raises(UnknownTargetError):
        world.gpu_seconds("llm/nope")
