"""A queue is a backlog to drain by rate, not a count of replicas to multiply; demand no GPU serves is reported."""

from __future__ import annotations

import math

from tests.hub.policy.fleet import Cluster, Fleet, policy

RATES = {"request_rate_per_s": 2.0, "prompt_tokens_per_s": 2000.0, "generation_tokens_per_s": 200.0}
SIGNALS = [{"metric": "queue_per_replica", "target": 5},
           {"metric": "ttft", "target": 2.0, "capacity_per_replica": {"H100": 1000.0}}]


def test_a_backlog_is_drained_by_rate_over_the_stable_window() -> None:
    p = policy(SIGNALS, panic={"enabled": False})
    fleet = Fleet([Cluster("a", samples={**RATES, "requests_waiting": 0, "ttft": 0.5})])
    fleet.evaluate(p, now=0)  # learns the token mix: 1,100 tokens per request
    fleet.clusters[0].samples = {**RATES, "requests_waiting": 100, "ttft": 3.0}
    rec = fleet.evaluate(p, now=10)
    queue = next(x for x in rec.audit.proposals if x.source == "queue_per_replica")
    # The HPA's ceil(100 / 5) = 20 would multiply replicas by the backlog; drained by rate, the queue
    # asks for the fleet that serves the arrivals plus the 110,000 queued tokens over 60 s.
    demand = rec.inputs["demand_tokens_per_s"]
    assert demand > 2200.0
    drain = math.ceil(demand / (1000.0 / 1.1) - 1e-9)
    assert queue.replicas == queue.detail["backlog_drained_by_rate"] == drain < 20
    assert rec.desired_replicas <= max(drain, rec.audit.proposals[-1].replicas or 0)


def test_without_a_token_mix_the_queue_keeps_the_hpa_math() -> None:
    p = policy(SIGNALS, panic={"enabled": False})
    rec = Fleet([Cluster("a", samples={"requests_waiting": 100, "ttft": 3.0, "prompt_tokens_per_s": 2000.0,
                                       "generation_tokens_per_s": 200.0})]).evaluate(p, now=0)
    queue = next(x for x in rec.audit.proposals if x.source == "queue_per_replica")
    assert queue.replicas == 20 and "backlog_drained_by_rate" not in queue.detail  # the backlog has no value


def test_requests_no_gpu_type_prefills_in_time_are_reported() -> None:
    long_prompts = {"request_rate_per_s": 1.0, "prompt_tokens_per_s": 8000.0, "generation_tokens_per_s": 20.0,
                    "requests_waiting": 0, "ttft": 0.5}
    p = policy([{"metric": "ttft", "target": 0.5}])
    rec = Fleet([Cluster("a", gpu_type="L4", samples=long_prompts)]).evaluate(p, now=0)
    share = rec.audit.load["infeasible_share"]["ttft_p95"]
    assert 0.5 < share < 1.0  # an L4 prefills ~1,600 tokens in 0.5 s; the mean prompt is 8,000
    assert rec.inputs["infeasible_requests_per_s"] == share * 1.0
    h100 = Fleet([Cluster("a", gpu_type="H100", samples=long_prompts)]).evaluate(p, now=0)
    assert h100.audit.load["infeasible_share"]["ttft_p95"] < share


GUARD_ONLY = [{"metric": "ttft", "target": 2.0, "capacity_per_replica": {"H100": 1000.0}}]


def test_the_latency_guard_does_not_multiply_replicas_that_are_still_starting() -> None:
    # 4 asked, 2 ready, TTFT 10 s from the backlog the cold start left: the demand (arrivals plus the
    # backlog over the stable window) sizes the fleet; doubling the ready count on the wait of
    # requests from before is how a start-up ran from 1 L4 to 64 GPUs.
    p = policy(GUARD_ONLY, panic={"enabled": False})
    fleet = Fleet([Cluster("a", desired=4, ready=2, samples={**RATES, "requests_waiting": 0, "ttft": 0.5})])
    fleet.evaluate(p, now=0)
    fleet.clusters[0].samples = {**RATES, "requests_waiting": 30, "ttft": 10.0}
    rec = fleet.evaluate(p, now=10)
    prop = next(x for x in rec.audit.proposals if x.source == "ttft_p95")
    assert prop.detail["guard"] == 4  # holds what is asked, no more
    assert rec.desired_replicas == max(4, prop.detail["sized"])


def test_the_guard_waits_for_the_latency_of_the_fleet_that_is_ready_now() -> None:
    p = policy(GUARD_ONLY, panic={"enabled": False})
    fleet = Fleet([Cluster("a", desired=2, ready=2, samples={**RATES, "requests_waiting": 0, "ttft": 5.0})])
    first = fleet.evaluate(p, now=0)  # first seen like this: its history is unknown, the guard acts
    assert next(x for x in first.audit.proposals if x.source == "ttft_p95").detail["guard"] == 4
    fleet.clusters[0].desired = fleet.clusters[0].ready = 4  # the fleet grew
    grown = fleet.evaluate(p, now=5)
    assert next(x for x in grown.audit.proposals if x.source == "ttft_p95").detail["guard"] == 4  # held
    later = fleet.evaluate(p, now=5 + 10 + 5 + 1)  # window + latency later, still slow: its own latency
    assert next(x for x in later.audit.proposals if x.source == "ttft_p95").detail["guard"] == 8
