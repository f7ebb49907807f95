"""The HPA's rules, through the engine: per-pod readings, missing and unready pods, the merge, behaviour."""

from __future__ import annotations

from tests.hub.policy.fleet import Cluster, Fleet, policy

CALM = {"enabled": False}
"""Panic mode off: it would lift scale-ups past the behaviour these tests are about."""


def queue(target: float = 5, **kw) -> dict:
    return {"metric": "queue_per_replica", "target": target, **kw}


def test_missing_pods_count_as_the_target_on_scale_down_and_the_engine_holds() -> None:
    complete = Fleet([Cluster("a", samples={"requests_waiting": 2}), Cluster("b", samples={"requests_waiting": 2})])
    assert complete.evaluate(policy([queue()], panic=CALM), now=0).desired_replicas == 1  # ceil(1 / 5 x 4)
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 2}),
                   Cluster("b", samples={"missing_reasons": {"requests_waiting": "engine metrics unreachable"}})])
    rec = fleet.evaluate(policy([queue()], panic=CALM), now=0)
    # HPA: pods (1, 1, 5, 5) -> ratio 0.6 -> 3 replicas; Fleetscale holds: a cluster went dark.
    assert rec.proposals["queue_per_replica"] == 3
    assert rec.desired_replicas == 4 and "no scale-down" in rec.reason
    assert rec.audit.inputs[0].missing == {"b": "engine metrics unreachable"}


def test_missing_pods_count_as_zero_on_scale_up() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 40}), Cluster("b", samples={})])
    rec = fleet.evaluate(policy([queue()], panic=CALM), now=0)
    # (20, 20, 0, 0) -> ratio 2 -> 8, not the 16 the two measured pods alone would ask for.
    assert rec.proposals["queue_per_replica"] == 8 and rec.desired_replicas == 8


def test_unready_pods_count_as_zero_on_scale_up_and_a_flipped_ratio_holds() -> None:
    starting = Fleet([Cluster("a", desired=4, ready=2, samples={"requests_waiting": 12})])
    rec = starting.evaluate(policy([queue()], panic=CALM), now=0)
    assert rec.proposals["queue_per_replica"] == 4 and rec.desired_replicas == 4  # (6, 6, 0, 0): ratio flips
    settled = Fleet([Cluster("a", desired=2, ready=2, samples={"requests_waiting": 12})])
    assert settled.evaluate(policy([queue()], panic=CALM), now=0).desired_replicas == 3  # ceil(1.2 x 2)


def test_the_tolerance_applies_per_direction() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 12})])  # ratio 1.2
    assert fleet.evaluate(policy([queue()], panic=CALM), now=0).desired_replicas == 3
    loose = policy([queue()], panic=CALM, behavior={"scale_up": {"tolerance": 0.25}})
    assert Fleet([Cluster("a", samples={"requests_waiting": 12})]).evaluate(loose, now=0).desired_replicas == 2


def test_the_largest_signal_wins_and_a_failed_one_blocks_only_scale_down() -> None:
    both = [queue(), {"metric": "kv_cache", "target": 50}]
    up = Fleet([Cluster("a", samples={"requests_waiting": 20, "kv_cache_usage_ratio": 0.75})])
    rec = up.evaluate(policy(both, panic=CALM), now=0)
    assert rec.proposals == {"queue_per_replica": 4, "kv_cache": 3} and rec.desired_replicas == 4
    down = Fleet([Cluster("a", samples={"requests_waiting": 0})])  # kv_cache not measured: failed
    rec = down.evaluate(policy(both, panic=CALM), now=0)
    assert rec.desired_replicas == 2 and "failed" in rec.reason
    grow = Fleet([Cluster("a", samples={"requests_waiting": 20})])
    assert grow.evaluate(policy(both, panic=CALM), now=0).desired_replicas == 4  # scale-up proceeds


def test_default_scale_up_rate_is_4_pods_or_100_percent_per_15_s() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 100})])
    p = policy([queue()], panic=CALM)
    rec = fleet.evaluate(p, now=0)
    assert rec.desired_replicas == 6 and rec.audit.clamps[-1].reason == "ScaleUpLimit"  # max(2 + 4, 2 x 2)
    fleet.follow(rec)
    assert fleet.evaluate(p, now=10).desired_replicas == 6  # the +4 of 10 s ago still counts
    fleet.follow(rec)
    assert fleet.evaluate(p, now=16).desired_replicas == 12  # a new period: max(6 + 4, 6 x 2)


def test_a_scale_down_policy_limits_each_period_and_the_window_stabilises() -> None:
    p = policy([queue()], panic=CALM, behavior={"scale_down": {
        "stabilization_window_seconds": 0, "policies": [{"type": "Pods", "value": 1, "period_seconds": 60}]}})
    fleet = Fleet([Cluster("a", desired=6, ready=6, samples={"requests_waiting": 0})])
    first = fleet.evaluate(p, now=0)
    assert first.desired_replicas == 5 and first.audit.clamps[-1].reason == "ScaleDownLimit"
    fleet.follow(first)
    assert fleet.evaluate(p, now=30).desired_replicas == 5
    assert fleet.evaluate(p, now=61).desired_replicas == 4
    held = Fleet([Cluster("a", desired=6, ready=6, samples={"requests_waiting": 30})])
    p300 = policy([queue()], panic=CALM)
    held.evaluate(p300, now=0)
    held.clusters[0].samples = {"requests_waiting": 0}
    rec = held.evaluate(p300, now=200)
    assert rec.desired_replicas == 6 and rec.audit.clamps[0].reason == "ScaleDownStabilized"


def test_dry_run_recommends_but_records_no_scale_event() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 100})])
    p = policy([queue()], panic=CALM, mode="dry-run")
    assert fleet.evaluate(p, now=0).desired_replicas == 6
    # Nothing was scaled, so the next period does not start from a scale event that never happened.
    assert fleet.evaluate(p, now=5).desired_replicas == 6
    assert not fleet.engine._memory["inference/llama"].scale_up_events
