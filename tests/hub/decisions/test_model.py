"""The one Decision model: frozen records, the previous format's history read back, one schema for all."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.web.api.openapi import document
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef

PREVIOUS = Path(__file__).with_name("previous_format.json")
"""A record as the previous hub stored it in the journal (the dataclass's hand-written ``to_json``)."""


def old_record() -> dict[str, Any]:
    return orjson.loads(PREVIOUS.read_bytes())


def result(command_id: str, status: ResultStatus = ResultStatus.APPLIED) -> CommandResult:
    return CommandResult(command_id=command_id, cluster_id="beta", workload=WorkloadRef(namespace="inference",
                         name="llama"), status=status, reason=ResultReason(status.value if status is
                         ResultStatus.APPLIED else "backend_error"))


@pytest.mark.parametrize("without", [(), ("audit",)], ids=["previous", "before-the-audit"])
def test_history_in_the_previous_format_reads_back_into_the_model(without: tuple[str, ...]) -> None:
    old = {k: v for k, v in old_record().items() if k not in without}
    d = Decision.model_validate_json(orjson.dumps(old))  # as the journal reads it back
    assert d.id == old["id"] and d.at == datetime.fromisoformat(old["at"])
    assert d.action == old["action"] == "scale_up"  # recomputed, not read
    assert d.results["cmd-b"].status is ResultStatus.APPLIED and d.clusters == {"alpha", "beta"}
    assert d.cause is None and d.deciding_signal is None and d.routing == []  # not known then
    new = d.model_dump(mode="json")
    # The same object as before, field for field (the time in its canonical RFC 3339 spelling), plus
    # the fields the previous format did not have.
    assert set(new) - set(old) == {"cause", "deciding_signal", "routing", "approval", *without}
    for key, value in old.items():
        if key == "at":
            assert datetime.fromisoformat(new["at"]) == datetime.fromisoformat(value)
        else:
            assert new[key] == value, key
    assert Decision.model_validate_json(d.model_dump_json()) == d


def test_a_broken_record_does_not_read_back() -> None:
    for broken in ({"desired_replicas": "many"}, {"at": "2026-11-22T12:00:00"}, {"results": {"c": {"status": "x"}}}):
        with pytest.raises(ValidationError):
            Decision.model_validate(old_record() | broken)
    with pytest.raises(ValidationError):
        Decision.model_validate_json(b"{not json")


def test_records_are_frozen_and_change_only_into_new_records() -> None:
    d = Decision.model_validate(old_record() | {"results": {}, "commands": ["c1", "c2"]})
    with pytest.raises(ValidationError, match="frozen"):
        d.desired_replicas = 9  # type: ignore[misc]
    sent = d.with_commands(["c1"])
    assert sent.commands == ["c1"] and d.commands == ["c1", "c2"] and sent.id == d.id
    applied = sent.with_result(result("c1"))
    failed = applied.with_result(result("c1", ResultStatus.FAILED))  # a later result replaces the earlier
    assert sent.results == {} and applied.results["c1"].status is ResultStatus.APPLIED
    assert failed.results["c1"].status is ResultStatus.FAILED


def test_the_log_swaps_in_the_new_record_and_hands_it_to_its_listeners() -> None:
    log, seen = DecisionLog(), list[Decision]()
    log.listeners.append(seen.append)
    d = Decision.model_validate(old_record() | {"results": {}})
    log.add(d)
    updated = log.attach_result(result("cmd-b"))
    assert updated is not None and updated is not d and d.results == {}
    assert log.get(d.id) is updated and log.latest[d.workload] is updated and seen == [d, updated]
    assert [x.id for x in log.recent()] == [d.id]


def test_the_api_schema_is_the_model_with_every_field() -> None:
    schemas = document()["components"]["schemas"]
    decision = schemas["Decision"]
    assert set(decision["properties"]) == set(Decision.model_fields) | {"action"}
    assert "audit" in decision["properties"]  # the field the old mirror model had lost
    assert decision["properties"]["action"]["readOnly"] and set(decision["properties"]["action"]["enum"]) == {
        "scale_up", "scale_down", "rebalance", "hold"}
    assert decision["properties"]["results"]["additionalProperties"] == {"$ref": "#/components/schemas/CommandResult"}
    assert "DecisionRecord" not in schemas
    paths = document()["paths"]
    one = paths["/api/v1/decisions/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert one == {"$ref": "#/components/schemas/Decision"}
    workload = schemas["WorkloadOverview"]["properties"]["last_decision"]
    assert {"$ref": "#/components/schemas/Decision"} in workload["anyOf"]
