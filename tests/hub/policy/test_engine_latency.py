"""Latency signals through the engine: sized by the capacity model, guarded by the latency, learnt from telemetry."""

from __future__ import annotations

import pytest

from hub.policy.model import Metric
from hub.policy.prior import prior_capacity
from tests.hub.policy.fleet import Cluster, Fleet, policy

CALM = {"enabled": False}
NO_WINDOW = {"scale_down": {"stabilization_window_seconds": 0}}


def load(ttft: float, *, rate: float = 2.0, prompt: float = 2500.0, gen: float = 500.0, waiting: float = 0.0) -> dict:
    return {"ttft": ttft, "request_rate_per_s": rate, "prompt_tokens_per_s": prompt,
            "generation_tokens_per_s": gen, "requests_waiting": waiting}


def ttft(target: float = 2.0, headroom: float = 20.0, **kw) -> dict:
    return {"metric": "ttft", "target": target, "headroom_percent": headroom, **kw}


MEASURED = ttft(capacity_per_replica={"H100": 1000.0})


def test_the_fleet_is_sized_as_load_with_headroom_over_capacity() -> None:
    fleet = Fleet([Cluster("a", samples=load(0.5))])
    rec = fleet.evaluate(policy([MEASURED], panic=CALM), now=0)
    assert rec.proposals["ttft_p95"] == 4  # ceil(3000 tokens/s x 1.2 / 1000)
    assert rec.desired_replicas == 4
    assert rec.capacity_per_replica == {"H100": pytest.approx(1000 / 1.2)}
    assert rec.demand == pytest.approx(3000.0)  # the capacity model decided: the load itself
    assert rec.audit.proposals[0].method == "capacity-model"


def test_latency_above_target_never_proposes_fewer_and_scales_up_by_the_ratio() -> None:
    p = policy([MEASURED], panic=CALM, behavior=NO_WINDOW)
    over = Fleet([Cluster("a", desired=6, ready=6, samples=load(2.5))])
    assert over.evaluate(p, now=0).desired_replicas == 8  # capacity says 4; ceil(6 x 2.5 / 2)
    near = Fleet([Cluster("a", desired=6, ready=6, samples=load(2.1))])  # within tolerance: hold
    assert near.evaluate(p, now=0).desired_replicas == 6
    under = Fleet([Cluster("a", desired=6, ready=6, samples=load(1.0))])
    assert under.evaluate(p, now=0).desired_replicas == 4
    runaway = Fleet([Cluster("a", desired=6, ready=6, samples=load(60.0))])
    assert runaway.evaluate(p, now=0).proposals["ttft_p95"] == 12  # the ratio is capped at 2x


def test_without_a_capacity_estimate_latency_only_guards() -> None:
    fleet = Fleet([Cluster("a", gpu_type="TPU", samples=load(1.0))])  # no datasheet for it
    rec = fleet.evaluate(policy([ttft()], panic=CALM, behavior=NO_WINDOW), now=0)
    assert rec.desired_replicas == 2 and rec.demand is None and rec.capacity_per_replica == {}
    assert "no capacity estimate" in rec.audit.proposals[0].detail["note"]


def test_the_prior_comes_from_the_datasheets_for_the_observed_mix() -> None:
    fleet = Fleet([Cluster("a", samples=load(0.5))])
    p = policy([ttft()], panic=CALM)
    fleet.evaluate(p, now=0)
    rec = fleet.evaluate(p, now=1)  # the mix (1250 in, 250 out per request) is known from the first tick
    prior = prior_capacity("H100", gpus_per_replica=1, metric=Metric.TTFT, percentile="p95", target_s=2.0,
                           mean_input=1250, mean_output=250)
    assert rec.capacity_per_replica["H100"] == pytest.approx(prior / 1.2, rel=0.03)
    assert rec.audit.capacity["H100"]["ttft_p95"]["prior_source"] == "datasheet roofline"


def test_missed_targets_on_a_stable_fleet_lower_the_capacity_and_raise_the_fleet() -> None:
    p = policy([MEASURED], panic=CALM)
    fleet = Fleet([Cluster("a", samples=load(2.15, prompt=500.0, gen=100.0))])  # 600 tokens/s: u = 0.3
    first = fleet.evaluate(p, now=0)
    assert first.audit.correction["ttft_p95"]["factor"] == 1.0 and first.proposals["ttft_p95"] == 2
    for t in range(20, 120, 10):
        rec = fleet.evaluate(p, now=t)
    factor = rec.audit.correction["ttft_p95"]["factor"]
    assert factor == pytest.approx(0.3 / 1.5, rel=0.02)  # below the lowest load seen to miss
    assert rec.capacity_per_replica["H100"] == pytest.approx(1000 * factor / 1.2, rel=0.02)
    assert rec.proposals["ttft_p95"] > first.proposals["ttft_p95"]


def test_met_targets_let_the_capacity_rise_past_what_it_has_seen_only_a_little() -> None:
    p = policy([MEASURED], panic=CALM)
    fleet = Fleet([Cluster("a", samples=load(0.5))])  # 3000 tokens/s on 2 x 1000: u = 1.5, met
    for t in range(0, 100, 10):
        rec = fleet.evaluate(p, now=t)
    assert rec.audit.correction["ttft_p95"]["factor"] == pytest.approx(1.5, rel=0.02)


def test_no_evidence_from_a_fleet_that_just_changed_or_from_a_queue_past_saturation() -> None:
    p = policy([MEASURED], panic=CALM)
    queued = Fleet([Cluster("a", samples=load(5.0, waiting=30))])
    for t in range(0, 100, 10):
        rec = queued.evaluate(p, now=t)
    assert rec.audit.correction["ttft_p95"]["evidence_requests"] == 0
    changing = Fleet([Cluster("a", samples=load(5.0))])
    for t in range(0, 100, 10):
        changing.clusters[0].ready = changing.clusters[0].desired = 2 + t // 10  # a new replica every window
        rec = changing.evaluate(p, now=t)
    assert rec.audit.correction["ttft_p95"]["evidence_requests"] == 0


def test_a_queue_is_demand_too() -> None:
    p = policy([MEASURED], panic=CALM)
    calm = Fleet([Cluster("a", samples=load(0.5))])
    calm.evaluate(p, now=0)
    base = calm.evaluate(p, now=1).audit.load["demand_tokens_per_s"]
    queued = Fleet([Cluster("a", samples=load(0.5))])
    queued.evaluate(p, now=0)
    queued.clusters[0].samples = load(0.5, waiting=60)
    rec = queued.evaluate(p, now=1)
    # 60 waiting x 1500 tokens per request, to be served within the 60 s stable window: +1500 tokens/s
    # now, averaged with the tick before it over the panic window.
    assert base == pytest.approx(3000.0)
    assert rec.audit.load["demand_tokens_per_s"] == pytest.approx((3000.0 + 4500.0) / 2, rel=0.01)


def test_a_change_of_gpu_mix_re_expresses_the_history_in_replicas_of_the_new_mix() -> None:
    p = policy([ttft(capacity_per_replica={"L4": 1000.0, "H100": 8000.0})], panic={"enabled": False})
    l4 = Cluster("l4", gpu_type="L4", desired=8, ready=8, samples=load(0.5, prompt=7000.0, gen=1000.0))
    h100 = Cluster("h", gpu_type="H100", desired=0, ready=0, samples={})
    fleet = Fleet([l4, h100])
    assert fleet.evaluate(p, now=0).desired_replicas == 10  # ceil(8000 x 1.2 / 1000)
    # Placement moved the workload to two H100s, and the load fell: the 10 L4 replicas recommended a
    # minute ago are 10 x 1000 / 8000 -> 2 H100 replicas, not 10.
    l4.desired = l4.ready = 0
    l4.samples = {}
    h100.desired = h100.ready = 2
    h100.samples = load(0.5, prompt=700.0, gen=100.0)
    rec = fleet.evaluate(p, now=60)
    assert rec.proposals["ttft_p95"] == 1
    assert rec.desired_replicas == 2 and rec.audit.clamps[0].reason == "ScaleDownStabilized"


def test_a_mix_that_changes_back_and_forth_does_not_ratchet_the_held_count_up() -> None:
    # One H100 replica takes 8000 / 1.2 = 6667 tokens/s, a replica of the H100 + L4 mix 3750. The
    # window holds the load that was sized (200 tokens/s), not the H100 it was rounded up to: one
    # replica of either mix. Held as the rounded-up H100 it was 2 replicas of the mixed fleet, and
    # rounded up at every change it stayed 2, twice the fleet the load needs.
    p = policy([ttft(capacity_per_replica={"L4": 1000.0, "H100": 8000.0})], panic={"enabled": False})
    small = load(0.5, prompt=350.0, gen=50.0)
    h100 = Cluster("h", gpu_type="H100", desired=1, ready=1, samples=small)
    l4 = Cluster("l4", gpu_type="L4", desired=0, ready=0, samples={})
    fleet = Fleet([h100, l4])
    assert fleet.evaluate(p, now=0).desired_replicas == 1
    l4.desired = l4.ready = 1  # placement added an L4
    l4.samples = small
    mixed = fleet.evaluate(p, now=30)
    assert mixed.proposals["ttft_p95"] == 1 and mixed.desired_replicas == 1
    l4.desired = l4.ready = 0  # and moved the workload to two H100s
    l4.samples = {}
    h100.desired = h100.ready = 2
    back = fleet.evaluate(p, now=60)
    assert back.proposals["ttft_p95"] == 1
    assert back.desired_replicas == 1


def test_a_scale_down_held_by_the_window_hands_placement_the_held_load_not_a_count() -> None:
    # 3,000 tokens/s were sized a minute ago (4 replicas of 833); the load fell to 600. The window
    # holds the 3,000 tokens/s as such, so placement buys that load at the cheapest mix; valued as
    # 4 replicas of the mix that happens to be ready, a move to faster GPUs was bought twice.
    p = policy([MEASURED], panic=CALM)
    fleet = Fleet([Cluster("a", samples=load(0.5))])
    assert fleet.evaluate(p, now=0).desired_replicas == 4
    fleet.clusters[0].desired = fleet.clusters[0].ready = 4
    fleet.clusters[0].samples = load(0.5, rate=0.4, prompt=500.0, gen=100.0)
    rec = fleet.evaluate(p, now=60)
    assert rec.proposals["ttft_p95"] == 1 and rec.desired_replicas == 4
    assert rec.audit.clamps[0].reason == "ScaleDownStabilized"
    assert rec.demand_is_load and rec.demand == pytest.approx(3000.0)
