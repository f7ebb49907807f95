from hub.backtest import harness
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.scenario import Scenario
from hub.policy.model import Policy
from shared.simulation import synthetic


def policy(**placement) -> Policy:
    return Policy.model_validate({
        "id": "chat",
        "targets": {"workloads": [{"namespace": "inference", "name": "llama-3-8b"}]},
        "bounds": {"min_replicas": 1, "max_replicas": 6},
        "signals": [{"metric": "queue_per_replica", "target": 2}],
        "placement": placement,
    })


def test_fleetscale_scales_through_the_hub_planner_within_the_policy_placement_and_bounds():
    trace = synthetic("constant", duration_s=240, rate_per_s=20.0, seed=4, input_tokens=800, output_tokens=100)
    scenario = Scenario(trace, drain_limit_s=60, initial={("eu-west", "A100"): 1})
    controller = FleetscaleController(scenario, [policy(gpu_types=["A100"])])
    run = harness.run(scenario, controller)
    totals = [sum(r.values()) for r in run.timeline_replicas]
    assert set().union(*run.timeline_replicas) == {"A100"}
    assert max(totals) > 1  # the queue signal scaled it up
    assert max(totals) <= 6  # bounds.max_replicas
    # The hub's state holds a real report from every cluster, ingested at simulated time.
    snapshot = controller.state.snapshot(now=run.ended_s)
    assert set(snapshot.clusters) == {"us-east", "eu-west", "ap-south"}
    view = snapshot.workloads["inference/llama-3-8b"]
    assert view.placement()[("eu-west", "A100")] == totals[-1]
