"""The audit record reads inputs -> proposals -> clamps -> desired, as plain JSON, and the decision log keeps it."""

from __future__ import annotations

import orjson
import pytest

from hub.decisions.model import Decision
from hub.policy.audit import Proposal
from tests.hub.policy.fleet import Cluster, Fleet, policy


def test_an_audit_record_explains_every_step() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 100, "kv_cache_usage_ratio": 0.5, "ttft": 3.0,
                                         "request_rate_per_s": 2.0, "prompt_tokens_per_s": 2000.0,
                                         "generation_tokens_per_s": 200.0}),
                   Cluster("b", gpu_type="L4", desired=1, ready=1,
                           samples={"missing_reasons": {"kv_cache_usage_ratio": "no engine metrics"}})])
    p = policy([{"metric": "queue_per_replica", "target": 5}, {"metric": "kv_cache", "target": 80},
                {"metric": "ttft", "target": 2.0, "capacity_per_replica": {"H100": 1000.0, "L4": 100.0}}],
               panic={"enabled": False})
    rec = fleet.evaluate(p, now=0)
    doc = orjson.loads(orjson.dumps(rec.audit.to_json()))
    assert doc["workload"] == "inference/llama" and doc["current_replicas"] == 3 and doc["ready_replicas"] == 3
    inputs = {i["signal"]: i for i in doc["inputs"]}
    assert inputs["kv_cache"]["missing"] == {"b": "no engine metrics"} and inputs["kv_cache"]["partial"]
    assert inputs["ttft_p95"]["value"] == 3.0 and inputs["ttft_p95"]["unit"] == "s"
    methods = {p["source"]: p["method"] for p in doc["proposals"]}
    assert methods == {"queue_per_replica": "hpa", "kv_cache": "hpa", "ttft_p95": "capacity-model"}
    queue = next(p for p in doc["proposals"] if p["source"] == "queue_per_replica")
    # Pods (50, 50, missing): the missing L4 pod counts as 0 on this scale-up, so ceil(33.3 / 5 x 3).
    assert queue["detail"]["reason"] == "ValidMetricFound" and queue["replicas"] == 20
    assert queue["detail"]["missing_pods"] == 1
    assert doc["merged"] == 20
    assert doc["clamps"] == [{"stage": "rate-limited", "before": 20, "after": 7, "reason": "ScaleUpLimit",
                              "message": "the desired replica count is increasing faster than the maximum scale rate"}]
    assert doc["desired_replicas"] == rec.desired_replicas == 7
    assert doc["capacity"]["L4"]["ttft_p95"]["prior_source"] == "policy"
    assert doc["load"]["request_rate"] == 2.0
    assert doc["reason"].startswith("queue_per_replica=50 vs target 5 (hpa) -> 20; rate-limited to 7")


def test_proposals_name_a_known_method() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        Proposal("x", "guesswork", 3)


def test_the_decision_record_carries_the_audit() -> None:
    fleet = Fleet([Cluster("a", samples={"requests_waiting": 20})])
    rec = fleet.evaluate(policy([{"metric": "queue_per_replica", "target": 5}]), now=0)
    d = Decision(workload=rec.workload_key, policy_id="llama", policy_revision=0, mode="enforce",
                 current_replicas=rec.current_replicas, desired_replicas=rec.desired_replicas, reason=rec.reason,
                 inputs=rec.inputs, placement_before={}, placement_after={}, audit=rec.audit.to_json())
    out = orjson.loads(d.model_dump_json())
    assert out["audit"]["desired_replicas"] == 4 and out["audit"]["proposals"][0]["method"] == "hpa"
