"""The decision log: filters, the change listener the journal hangs on, the JSON round trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.settings import HubSettings
from shared import subjects
from shared.bus import decisions_stream_config
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import T0


def decision(id: str, *, workload: str = "inference/llama", minutes: int = 0, **kw: Any) -> Decision:
    fields: dict[str, Any] = {
        "workload": workload, "policy_id": "p", "policy_revision": 1, "mode": "enforce", "current_replicas": 2,
        "desired_replicas": 4, "reason": "r", "inputs": {"queue_per_replica": 6.5},
        "placement_before": {"a/H100": 2}, "placement_after": {"a/H100": 2, "b/L4": 2},
    } | kw
    return Decision(**fields, id=id, at=T0 + timedelta(minutes=minutes))


def result(command_id: str, cluster: str = "b") -> CommandResult:
    return CommandResult(command_id=command_id, cluster_id=cluster, workload=WorkloadRef(namespace="inference",
                         name="llama"), status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                         observed_replicas_by_gpu_type={"L4": 2})


def test_recent_filters_by_workload_cluster_and_time_newest_first() -> None:
    log = DecisionLog()
    log.add(decision("d0", minutes=0))
    log.add(decision("d1", minutes=1, workload="inference/mistral"))
    log.add(decision("d2", minutes=2, placement_before={"c/A100": 1}, placement_after={"c/A100": 2}))
    log.add(decision("d3", minutes=3))
    ids = lambda **kw: [d.id for d in log.recent(**kw)]  # noqa: E731
    assert ids() == ["d3", "d2", "d1", "d0"]
    assert ids(workload="inference/llama") == ["d3", "d2", "d0"]
    assert ids(cluster="c") == ["d2"]
    assert ids(cluster="b") == ["d3", "d1", "d0"]
    assert ids(since=T0 + timedelta(minutes=1)) == ["d3", "d2", "d1"]  # inclusive
    assert ids(until=T0 + timedelta(minutes=2)) == ["d1", "d0"]  # exclusive
    assert ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3), workload="inference/llama") == ["d2"]
    assert ids(limit=2) == ["d3", "d2"]


def test_a_cluster_that_only_answered_counts_for_the_cluster_filter() -> None:
    log = DecisionLog()
    log.add(decision("d0", placement_before={}, placement_after={}, commands=["c1"]))
    assert log.recent(cluster="z") == []
    log.attach_result(result("c1", cluster="z"))
    assert [d.id for d in log.recent(cluster="z")] == ["d0"]


def test_every_change_reaches_the_listener_and_restored_history_does_not() -> None:
    changes: list[tuple[str, int]] = []
    log = DecisionLog()
    log.listeners.append(lambda d: changes.append((d.id, len(d.results))))
    log.restore([decision("old", commands=["c0"])])
    log.add(decision("d1", commands=["c1", "c2"]))
    log.attach_result(result("c1"))
    log.attach_result(result("c0"))  # a restored decision's result is a change to persist too
    log.attach_result(result("unknown"))
    assert changes == [("d1", 0), ("d1", 1), ("old", 1)]
    assert log.get("old") is not None and log.latest["inference/llama"].id == "d1"


def test_a_record_round_trips_through_its_json_as_the_api_serves_it() -> None:
    d = decision("d1", commands=["c1"], notes=["stale clusters excluded"], unplaced=1).with_result(result("c1"))
    again = Decision.model_validate(orjson.loads(orjson.dumps(d.model_dump(mode="json"))))
    assert again == d and again.at == T0 and again.action == "scale_up"
    with pytest.raises(ValidationError, match="desired_replicas"):
        Decision.model_validate(d.model_dump(mode="json") | {"desired_replicas": "many"})


def test_retention_settings_become_the_stream_limits() -> None:
    settings = HubSettings(decisions_max_age_s=3600, decisions_max_msgs=500, decisions_max_bytes=8 * 1024 * 1024)
    config = decisions_stream_config(settings.decision_retention())
    assert config.name == subjects.DECISIONS_STREAM and config.subjects == [subjects.DECISIONS_ALL]
    assert (config.max_age, config.max_msgs, config.max_bytes) == (3600, 500, 8 * 1024 * 1024)
    assert config.max_msgs_per_subject == 1  # one subject per decision: the last revision wins
    defaults = decisions_stream_config(HubSettings().decision_retention())
    assert (defaults.max_age, defaults.max_msgs) == (7 * 86400, 100_000)
    # Each decision id is one subject token; an id that cannot be one has no subject.
    assert subjects.decision("0f3a9c") == "fleetscale.v1.decisions.0f3a9c"
    with pytest.raises(ValueError, match="not a valid subject token"):
        subjects.decision("a.b")
