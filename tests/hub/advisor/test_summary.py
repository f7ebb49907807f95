"""The advisor's summary reads decisions as the one ``Decision`` model: refused commands become events."""

from __future__ import annotations

from hub.advisor.summary import summarise
from hub.decisions.model import Decision
from hub.policy.model import Policy
from hub.state import FleetState
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import node, report, workload

KEY = "inference/llama"
POLICY = Policy.model_validate({"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                                "signals": [{"metric": "queue_per_replica", "target": 2}]})


def result(command_id: str, cluster: str, status: ResultStatus, reason: ResultReason, error: str | None = None
           ) -> CommandResult:
    return CommandResult(command_id=command_id, cluster_id=cluster, workload=WorkloadRef(namespace="inference",
                         name="llama"), status=status, reason=reason, error=error)


def test_refused_and_failed_commands_are_events_and_applied_ones_are_not() -> None:
    state = FleetState()
    state.ingest(report("a", [workload(variants={"H100": (2, 2)})], [node("H100", 4)]), now=1.0)
    d = Decision(workload=KEY, policy_id="llama", policy_revision=1, mode="enforce", current_replicas=2,
                 desired_replicas=6, reason="queue", inputs={"queue_per_replica": 6.0},
                 placement_before={"a/H100": 2}, placement_after={"a/H100": 6}, commands=["c1", "c2", "c3"])
    d = d.with_result(result("c1", "a", ResultStatus.REJECTED, ResultReason.CAPACITY))
    d = d.with_result(result("c2", "b", ResultStatus.FAILED, ResultReason.BACKEND_ERROR, error="timeout"))
    d = d.with_result(result("c3", "c", ResultStatus.APPLIED, ResultReason.APPLIED))
    out = summarise(KEY, POLICY, state.snapshot(now=1.0), {("a", "H100"): 6}, [d], {"H100": 12.0}, 6)
    assert out["events"] == ["command to a rejected: capacity", "command to b failed: backend_error timeout"]
    assert out["recent_decisions"][0]["action"] == "scale_up" and out["recent_decisions"][0]["to"] == 6
