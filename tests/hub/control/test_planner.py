from __future__ import annotations

from typing import Any

import pytest

from hub.control.planner import Planner
from hub.placement.throughput import PROFILE_THROUGHPUT
from hub.policy.model import Policy
from hub.state import FleetState, Intent
from shared.messages import Samples, StartTier, StartTimes, WorkloadReport
from tests.hub.factories import T0, node, report, workload

PRICES = {"L4": 0.8, "A100": 4.1, "H100": 12.0}
FAST_UP = {"scale_up": {"policies": [{"type": "Percent", "value": 1000, "period_seconds": 15}]}}


def policy(name: str = "llama", target: float = 5, **kw: Any) -> Policy:
    return Policy.model_validate({
        "id": name, "targets": {"workloads": [{"namespace": "inference", "name": name}]},
        "signals": [{"metric": "queue_per_replica", "target": target}], "behavior": FAST_UP,
        "bounds": {"min_replicas": 1, "max_replicas": 40}, **kw,
    })


def plans(state: FleetState, *policies: Policy, planner: Planner | None = None, now: float = 10.0):  # type: ignore[no-untyped-def]
    planner = planner or Planner(PRICES)
    return {p.view.key: p for p in planner.plan(state.snapshot(now=now), list(policies))}


def test_growth_is_only_placed_on_clusters_that_run_the_workload() -> None:
    s = FleetState()
    s.ingest(report("cheap", [workload("y")], [node("L4", 8)]), now=10.0)  # runs another workload only
    s.ingest(report("dear", [workload("x", waiting=40)], [node("H100", 8)]), now=10.0)
    plan = plans(s, policy("x"))["inference/x"]
    assert set(plan.result.placement) == {("dear", "H100")}
    assert plan.result.placement[("dear", "H100")] == plan.recommendation.desired_replicas == 8


def test_workloads_of_a_tick_share_the_free_gpus_and_are_not_served_first_come_first_served() -> None:
    # Cluster a has 4 free L4s, cluster b H100s. "a-flex" may use both types, "b-l4" only L4s; both
    # want 4 replicas. Placed one by one, "a-flex" (first by name) would take the L4s.
    s = FleetState()
    flex = workload("a-flex", variants={"L4": (0, 0)}, waiting=20)
    l4 = workload("b-l4", variants={"L4": (0, 0)}, waiting=20)
    s.ingest(report("a", [flex, l4], [node("L4", 4)]), now=10.0)
    s.ingest(report("b", [workload("a-flex", variants={"H100": (0, 0)}), workload("b-l4", variants={"H100": (0, 0)})],
                    [node("H100", 8)]), now=10.0)
    only_l4 = policy("b-l4", placement={"gpu_types": ["L4"]})
    same_speed = {"L4": 1.0, "H100": 1.0}
    out = plans(s, policy("a-flex"), only_l4, planner=Planner(PRICES, throughput=same_speed))
    assert out["inference/b-l4"].result.placement == {("a", "L4"): 4}
    assert out["inference/a-flex"].result.placement == {("b", "H100"): 4}
    assert all(p.result.unplaced == 0 for p in out.values())
    alone = plans(s, policy("a-flex"), planner=Planner(PRICES, throughput=same_speed))["inference/a-flex"]
    assert alone.result.placement == {("a", "L4"): 4}  # what first come, first served would have done


def test_policy_prices_win_over_the_hub_s_per_cluster_then_for_every_cluster() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=10)], [node("L4", 8)]), now=10.0)
    s.ingest(report("b", [workload(variants={"L4": (1, 1)}, waiting=10)], [node("L4", 8)]), now=10.0)
    # The hub prices both at 0.8; the policy prices every cluster at 1.0 except b, at 0.5.
    cheap_b = policy(placement={"prices": {"*": {"L4": 1.0}, "b": {"L4": 0.5}}})
    # (a's running replica stays until b's new ones are ready: make before break.)
    placed = plans(s, cheap_b)["inference/llama"].result.placement
    assert placed == {("a", "L4"): 1, ("b", "L4"): 4}
    dear_b = policy(placement={"prices": {"b": {"L4": 2.0}}})  # a keeps the hub's price
    assert plans(s, dear_b)["inference/llama"].result.placement == {("a", "L4"): 4, ("b", "L4"): 1}


def test_a_type_without_a_price_or_not_allowed_gets_nothing() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=20)], [node("L4", 1), node("X9", 8),
                                                                            node("H100", 8)]), now=10.0)
    plan = plans(s, policy(placement={"gpu_types": ["L4", "X9"]}))["inference/llama"]
    assert set(plan.result.placement) == {("a", "L4")}  # X9: no price; H100: not allowed
    assert plan.result.unplaced > 0


def test_a_type_priced_by_the_policy_but_without_a_profile_counts_as_a_reference_replica() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=15)], [node("X9", 8)]), now=10.0)
    plan = plans(s, policy(placement={"prices": {"*": {"X9": 0.5}}}))["inference/llama"]
    assert plan.result.placement == {("a", "X9"): 3}  # (the L4 one is asked to 0 by dispatch: no L4 here)
    assert any("throughput of X9 unknown" in n for n in plan.result.notes)


def test_static_weights_divide_the_count_karmada_s_way_and_the_solver_picks_the_types() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=40)], [node("L4", 8), node("A100", 8)]), now=10.0)
    s.ingest(report("b", [workload(variants={"L4": (1, 1)})], [node("L4", 8)]), now=10.0)
    p = policy(placement={"strategy": "static_weights", "weights": {"a": 3, "b": 1}})
    plan = plans(s, p, planner=Planner(PRICES, throughput={"L4": 1.0, "A100": 1.0}))["inference/llama"]
    assert plan.recommendation.desired_replicas == 8
    assert plan.result.placement == {("a", "L4"): 6, ("b", "L4"): 2}


def test_free_capacity_weights_divide_by_the_replicas_that_fit_now() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=40)], [node("L4", 5)]), now=10.0)
    s.ingest(report("b", [workload(variants={"L4": (1, 1)})], [node("L4", 1)]), now=10.0)
    plan = plans(s, policy(placement={"strategy": "free_capacity"}))["inference/llama"]
    # 6 and 2 replicas fit (free + held): 8 divided 6:2.
    assert plan.result.placement == {("a", "L4"): 6, ("b", "L4"): 2}


def test_spread_and_per_cluster_bounds_come_from_the_policy() -> None:
    s = FleetState()
    for cid in ("a", "b", "c"):
        s.ingest(report(cid, [workload(variants={"L4": (1, 1)}, waiting=10 if cid == "a" else 0)],
                        [node("L4", 8)]), now=10.0)
    p = policy(placement={"spread_min_per_cluster": 1},
               bounds={"min_replicas": 1, "max_replicas": 40, "per_cluster": {"a": {"max_replicas": 1}}})
    plan = plans(s, p)["inference/llama"]
    assert plan.result.placement[("a", "L4")] == 1
    assert plan.result.placement[("b", "L4")] >= 1 and plan.result.placement[("c", "L4")] >= 1


def test_a_stale_cluster_s_replicas_are_re_placed_on_the_first_tick_it_is_stale() -> None:
    # Each cluster sees half the queue. Once b is stale the engine sees a's half only and asks for 2;
    # failover holds the workload at the 4 it ran and re-places b's 2 on a, on that very tick.
    def run(failover: bool) -> list[dict[tuple[str, str], int]]:
        s = FleetState()
        planner = Planner(PRICES)
        p = policy(target=10, behavior={"scale_down": {"stabilization_window_seconds": 0}},
                   placement={"failover": failover})
        out = []
        s.ingest(report("b", [workload(variants={"L4": (2, 2)}, waiting=20)], [node("L4", 8)]), now=10.0)
        for t in range(10, 16):
            s.ingest(report("a", [workload(variants={"L4": (2, 2)}, waiting=20)], [node("L4", 8)], seq=t), now=t)
            out.append(dict(plans(s, p, planner=planner, now=t + 0.5)["inference/llama"].result.placement))
        return out

    with_failover = run(True)
    assert with_failover[:3] == [{("a", "L4"): 2, ("b", "L4"): 2}] * 3  # b last reported at 10; 12.5 is fresh
    assert with_failover[3:] == [{("a", "L4"): 4}] * 3  # 13.5: stale, and re-placed at once
    assert run(False)[3:] == [{("a", "L4"): 2}] * 3


def test_the_reference_throughput_holds_while_the_mix_changes() -> None:
    # Settled on L4s, the engine's count means L4 replicas. While H100s start (not ready), the
    # count still means L4 replicas: the half-started mix must not rescale it.
    s = FleetState()
    planner = Planner(PRICES)
    s.ingest(report("a", [workload(variants={"L4": (4, 4)}, waiting=20)], [node("L4", 8), node("H100", 8)]), now=10.0)
    snap = s.snapshot(now=10.0)
    assert planner.reference(snap, snap.workloads["inference/llama"], []) == PROFILE_THROUGHPUT["L4"]
    s.ingest(report("a", [workload(variants={"L4": (0, 0), "H100": (2, 0)}, waiting=20)], [node("L4", 8),
                                                                                           node("H100", 6)],
                    seq=1), now=11.0)
    snap = s.snapshot(now=11.0)
    assert planner.reference(snap, snap.workloads["inference/llama"], []) == PROFILE_THROUGHPUT["L4"]
    s.ingest(report("a", [workload(variants={"H100": (2, 2)}, waiting=0)], [node("H100", 6)], seq=2), now=12.0)
    snap = s.snapshot(now=12.0)
    assert planner.reference(snap, snap.workloads["inference/llama"], []) == PROFILE_THROUGHPUT["H100"]


def test_a_move_keeps_the_old_replicas_until_the_new_ones_are_ready_then_drops_them() -> None:
    s, planner = FleetState(), Planner(PRICES)
    cheap_b = policy(placement={"prices": {"*": {"L4": 1.0}, "b": {"L4": 0.5}}},
                     behavior={**FAST_UP, "scale_down": {"stabilization_window_seconds": 0}})

    def tick(t: int, a: tuple[int, int], b: tuple[int, int]) -> dict[tuple[str, str], int]:
        s.ingest(report("a", [workload(variants={"L4": a}, waiting=5)], [node("L4", 8 - a[0])], seq=t), now=t)
        s.ingest(report("b", [workload(variants={"L4": b}, waiting=5)], [node("L4", 8 - b[0])], seq=t), now=t)
        return dict(plans(s, cheap_b, planner=planner, now=t + 0.5)["inference/llama"].result.placement)

    assert tick(1, (2, 2), (0, 0)) == {("a", "L4"): 2, ("b", "L4"): 2}  # make: 2 on b, a's 2 kept
    assert tick(2, (2, 2), (2, 0)) == {("a", "L4"): 2, ("b", "L4"): 2}  # b's starting: nothing removed
    assert tick(3, (2, 2), (2, 2)) == {("a", "L4"): 0, ("b", "L4"): 2}  # ready: now a's go


def test_the_last_joint_solve_is_kept_for_metrics() -> None:
    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (1, 1)}, waiting=10)], [node("L4", 8)]), now=10.0)
    planner = Planner(PRICES)
    plans(s, policy(), planner=planner)
    assert planner.last_solution is not None and planner.last_solution.method == "optimal"


# --- load in the engine's units ------------------------------------------------------------------

def latency_policy(capacity: dict[str, float], **kw: Any) -> Policy:
    """TTFT p95 <= 2 s with the policy's own capacity per replica (tokens/s), no headroom, no panic."""
    return Policy.model_validate({
        "id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
        "signals": [{"metric": "ttft", "target": 2.0, "headroom_percent": 0, "capacity_per_replica": capacity}],
        "bounds": {"min_replicas": 1, "max_replicas": 40}, "panic": {"enabled": False}, **kw,
    })


def serving(variants: dict[str, tuple[int, int]], *, tokens: float, ttft: float) -> WorkloadReport:
    """The workload taking ``tokens`` tokens/s (prompt and generation) at the given p95 TTFT."""
    samples = Samples.model_validate({"window_s": 10.0, "ttft": {"p95_s": ttft}, "request_rate_per_s": 2.0,
                                      "prompt_tokens_per_s": tokens * 0.8, "generation_tokens_per_s": tokens * 0.2,
                                      "requests_waiting": 0})
    return workload(variants=variants).model_copy(update={"samples": samples})


MIX_PRICES = {"L4": 1.5, "H100": 12.0}
"""Per token the H100 is cheaper ($12 / 1000 tokens/s against $1.5 / 100), but not per replica."""


def test_engine_capacities_make_a_mix_of_types_cheaper_than_whole_replicas_of_one() -> None:
    # 1,300 tokens/s on one H100 that takes 1,000: the engine asks for 2 H100s ($24/h). In its own
    # units the load is 1.3 H100s: 1 H100 + 3 L4s ($16.5/h) serve it, and are cheaper than 13 L4s.
    s = FleetState()
    s.ingest(report("a", [serving({"H100": (1, 1)}, tokens=1300, ttft=0.5)], [node("H100", 7), node("L4", 8)]),
             now=10.0)
    plan = plans(s, latency_policy({"H100": 1000.0, "L4": 100.0}), planner=Planner(MIX_PRICES))["inference/llama"]
    rec = plan.recommendation
    assert rec.desired_replicas == 2 and rec.demand == pytest.approx(1300.0)
    assert plan.result.placement == {("a", "H100"): 1, ("a", "L4"): 3}
    assert plan.result.cost_per_hour == pytest.approx(16.5)
    assert any(n.startswith("load 1300 tokens/s") for n in plan.result.notes)
    # The replica path (the decode table, H100 = 33.9 L4s) would have asked for the second H100.
    assert not any("replicas of the reference" in n for n in plan.result.notes)


def test_a_type_without_a_capacity_estimate_falls_back_to_counting_replicas() -> None:
    # X9 has no datasheet prior and the policy gives no figure for it: tokens/s cannot compare it,
    # so the workload is placed as before, in replicas of the reference (2 H100s, not 1 + L4s).
    s = FleetState()
    s.ingest(report("a", [serving({"H100": (1, 1)}, tokens=1300, ttft=0.5)],
                    [node("H100", 7), node("L4", 8), node("X9", 8)]), now=10.0)
    p = latency_policy({"H100": 1000.0, "L4": 100.0}, placement={"prices": {"*": {"X9": 50.0}}})
    plan = plans(s, p, planner=Planner(MIX_PRICES))["inference/llama"]
    assert "X9" not in plan.recommendation.capacity_per_replica
    assert any(n == "no capacity estimate for X9: placed in replicas of the reference" for n in plan.result.notes)
    assert plan.result.placement == {("a", "H100"): 2}


def test_latency_above_target_never_places_less_than_the_guard_s_count() -> None:
    # 6 H100s at TTFT 2.5 s against 2 s: the capacity model says 4 (3,800 tokens/s over 1,000), the
    # guard 8 (6 x 2.5 / 2). The load placed is the guard's 8 H100s' worth, not the 3,800 tokens/s.
    s = FleetState()
    s.ingest(report("a", [serving({"H100": (6, 6)}, tokens=3800, ttft=2.5)], [node("H100", 2), node("L4", 8)]),
             now=10.0)
    plan = plans(s, latency_policy({"H100": 1000.0, "L4": 100.0}), planner=Planner(MIX_PRICES))["inference/llama"]
    assert plan.recommendation.desired_replicas == 8
    served = sum(n * {"H100": 1000.0, "L4": 100.0}[t] for (_, t), n in plan.result.placement.items())
    assert served >= 8000.0
    assert plan.result.placement == {("a", "H100"): 8}


def test_a_hold_while_replicas_start_keeps_what_was_asked_not_the_ready_mix_s_worth() -> None:
    # 1 H100 ready, 6 L4s asked and starting: the engine holds the 7 it asked for. Read on the ready
    # mix, 7 replicas would be 7 H100s' worth; what was asked serves 1,600 tokens/s, and that stays.
    s = FleetState()
    s.ingest(report("a", [serving({"H100": (1, 1), "L4": (6, 0)}, tokens=900, ttft=0.5)],
                    [node("H100", 7), node("L4", 2)]), now=10.0)
    plan = plans(s, latency_policy({"H100": 1000.0, "L4": 100.0}), planner=Planner(MIX_PRICES))["inference/llama"]
    assert plan.recommendation.desired_replicas == 7
    assert plan.result.placement == {("a", "H100"): 1, ("a", "L4"): 6}
    assert any("7 replicas counted from the 7 asked: 1600 tokens/s" in n for n in plan.result.notes)


def test_activation_from_zero_is_placed_in_load_units() -> None:
    # Nothing runs: the engine wakes the workload for 525 tokens/s. In load units that is 6 L4s
    # ($9/h), not the H100 ($12/h) a count of one replica would have been.
    s = FleetState()
    asleep = workload(variants={"H100": (0, 0)}).model_copy(update={"samples": Samples.model_validate(
        {"window_s": 10.0, "requests_waiting": 3, "request_rate_per_s": 1.0, "prompt_tokens_per_s": 400.0,
         "generation_tokens_per_s": 125.0})})
    s.ingest(report("a", [asleep], [node("H100", 8), node("L4", 8)]), now=10.0)
    p = latency_policy({"H100": 1000.0, "L4": 100.0}, bounds={"min_replicas": 0, "max_replicas": 40},
                       scale_to_zero={"enabled": True})
    plan = plans(s, p, planner=Planner(MIX_PRICES))["inference/llama"]
    assert plan.recommendation.current_replicas == 0 and plan.recommendation.desired_replicas == 1
    assert plan.result.placement == {("a", "L4"): 6}


def test_a_refused_command_does_not_hold_the_workload_unsettled() -> None:
    """A grow the cluster refused (no capacity) starts nothing: the workload may still shrink."""
    from datetime import UTC, datetime

    from hub.state import Intent
    from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef

    s, planner = FleetState(), Planner(PRICES)
    p = policy(behavior={**FAST_UP, "scale_down": {"stabilization_window_seconds": 0}}, panic={"enabled": False})
    s.ingest(report("a", [workload(variants={"H100": (4, 4)}, waiting=0)], [node("H100", 4)]), now=1.0)
    s.record_intent("inference/llama", "a", Intent("c1", {"H100": 8}, datetime.now(UTC), 0.0))
    ref = WorkloadRef(namespace="inference", name="llama")
    s.record_result(CommandResult(command_id="c1", cluster_id="a", workload=ref, status=ResultStatus.REJECTED,
                                  reason=ResultReason.CAPACITY))
    plan = plans(s, p, planner=planner, now=1.5)["inference/llama"]
    assert plan.recommendation.desired_replicas == 1
    assert plan.result.placement == {("a", "H100"): 1}


def classed_policy(classes: bool) -> Policy:
    """TTFT p95 <= 1 s on the datasheet priors (no policy capacities), request classes on or off."""
    return Policy.model_validate({
        "id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
        "signals": [{"metric": "ttft", "target": 1.0, "headroom_percent": 0}],
        "bounds": {"min_replicas": 1, "max_replicas": 40}, "panic": {"enabled": False},
        "placement": {"request_classes": classes},
    })


def long_prompt_mix(variants: dict[str, tuple[int, int]]) -> WorkloadReport:
    """6 requests/s of 2,000-token prompts and 30-token outputs: at a 1 s target an L4 cannot take the
    mix's 95th-percentile prompt (6,000 tokens), but it can take the short ones."""
    samples = Samples.model_validate({"window_s": 10.0, "ttft": {"p95_s": 0.4}, "request_rate_per_s": 6.0,
                                      "prompt_tokens_per_s": 12000.0, "generation_tokens_per_s": 180.0,
                                      "requests_waiting": 0})
    return workload(variants=variants).model_copy(update={"samples": samples})


def test_request_classes_put_short_prompts_on_cheap_gpus_and_route_long_ones_away_from_them() -> None:
    prices = {"L4": 0.5, "A100": 4.096}  # an L4 cheaper per token than an A100 on short prompts only
    inventory = [node("A100", 8), node("L4", 8)]
    whole = FleetState()
    whole.ingest(report("a", [long_prompt_mix({"A100": (4, 4)})], inventory), now=10.0)
    flat = plans(whole, classed_policy(False), planner=Planner(prices))["inference/llama"]
    assert all(t != "L4" or n == 0 for (_, t), n in flat.result.placement.items())  # L4 rated 0 on the mix
    assert flat.routing == ()
    split = FleetState()
    split.ingest(report("a", [long_prompt_mix({"A100": (4, 4)})], inventory), now=10.0)
    plan = plans(split, classed_policy(True), planner=Planner(prices))["inference/llama"]
    assert len(plan.recommendation.classes) >= 2
    assert plan.result.placement.get(("a", "L4"), 0) > 0
    assert plan.result.cost_per_hour < flat.result.cost_per_hour
    longest = plan.routing[-1]
    assert longest.max_prompt_tokens is None and "L4" not in longest.gpu_types
    assert "L4" in plan.routing[0].gpu_types
    assert sum(plan.routing[0].weights.values()) == pytest.approx(1.0)


def test_with_classes_a_hold_while_replicas_start_asks_for_the_same_fleet_again() -> None:
    # 2 A100s ready and 6 L4s starting for short prompts: the engine holds the 8 asked. Valued at the
    # mean capacity of the asked mix, 8 replicas were more than those 8 serve of the classes (the
    # L4s' capacity counts short prompts only), so placement grew the fleet on every tick of the hold.
    prices = {"L4": 0.5, "A100": 4.096}
    s = FleetState()
    s.ingest(report("a", [long_prompt_mix({"A100": (2, 2), "L4": (6, 0)})], [node("A100", 6), node("L4", 2)]),
             now=10.0)
    plan = plans(s, classed_policy(True), planner=Planner(prices))["inference/llama"]
    assert plan.recommendation.desired_replicas == 8 and plan.recommendation.cause.value == "starting"
    assert plan.result.placement == {("a", "A100"): 2, ("a", "L4"): 6}


def test_make_before_break_says_how_long_the_new_replicas_are_measured_to_take() -> None:
    def with_starts(w: WorkloadReport, *durations: float) -> WorkloadReport:
        timed = StartTimes(tier=StartTier.COLD, recent_s=durations, count=len(durations))
        return w.model_copy(update={"variants": tuple(v.model_copy(update={"starts": (timed,)}) for v in w.variants)})

    s = FleetState()
    s.ingest(report("a", [workload(variants={"L4": (2, 2)}, waiting=10)], [node("L4", 8)]), now=10.0)
    s.ingest(report("b", [with_starts(workload(variants={"L4": (0, 0)}, waiting=0), 140.0, 95.0)],
                    [node("L4", 8)]), now=10.0)
    cheap_b = policy(placement={"prices": {"a": {"L4": 2.0}, "b": {"L4": 0.5}}})
    plan = plans(s, cheap_b)["inference/llama"]
    assert plan.result.placement[("a", "L4")] == 2  # kept while b's start
    note = next(n for n in plan.result.notes if n.startswith("make before break"))
    assert note.endswith("until the new replicas are ready (measured start 140s on b/L4)")
    assert plan.recommendation.audit.starts == {"b/L4": {"start_s": 140.0, "starts": 2, "tiers": {"cold": 140.0}}}


def test_replicas_starting_for_twice_their_measured_start_are_noted_as_late() -> None:
    timed = StartTimes(tier=StartTier.CACHED, recent_s=(140.0, 100.0), count=2)
    w = workload(variants={"L4": (3, 1)}, waiting=0)
    w = w.model_copy(update={"variants": tuple(v.model_copy(update={"starts": (timed,)}) for v in w.variants)})
    s = FleetState()
    s.record_intent("inference/llama", "a", Intent("c1", {"L4": 3}, T0, sent_monotonic=100.0))

    def notes(now: float) -> list[str]:
        s.ingest(report("a", [w], [node("L4", 8)], seq=int(now)), now=now)  # fresh at every look
        return list(plans(s, policy(), now=now)["inference/llama"].result.notes)

    assert not any(n.startswith("late start") for n in notes(now=300.0))  # 200 s: within twice 140 s
    late = [n for n in notes(now=500.0) if n.startswith("late start")]
    assert late == ["late start on a/L4: 2 replica(s) not ready 400s after the command, measured start 140s; "
                    "check the pods (image pull, scheduling, crash loop)"]
