from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import ConfigDict, ValidationError

from shared.bus import decode
from shared.errors import InvalidMessage
from shared.messages import (
    CommandResult,
    ResultReason,
    ResultStatus,
    Samples,
    ScaleCommand,
    TelemetryReport,
    WorkloadRef,
    WorkloadReport,
    json_schemas,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REF = WorkloadRef(namespace="inference", name="llama")


def report(**kw: object) -> TelemetryReport:
    base: dict[str, object] = {"cluster_id": "east-1", "sequence": 7, "sent_at": NOW, "interval_s": 1.0}
    base.update(kw)
    return TelemetryReport.model_validate(base)


def command(**kw: object) -> ScaleCommand:
    base: dict[str, object] = {
        "cluster_id": "east-1",
        "workload": REF,
        "replicas_by_gpu_type": {"H100": 3},
        "policy_id": "llama",
        "issued_at": NOW,
        "deadline": NOW + timedelta(seconds=60),
    }
    base.update(kw)
    return ScaleCommand.model_validate(base)


def test_every_message_round_trips_through_bytes() -> None:
    r = report(workloads=[WorkloadReport(workload=REF, desired_replicas=2, ready_replicas=1)])
    c = command()
    res = CommandResult(
        command_id=c.command_id, cluster_id="east-1", workload=REF,
        status=ResultStatus.APPLIED, reason=ResultReason.APPLIED, observed_replicas_by_gpu_type={"H100": 3},
    )
    for m in (r, c, res):
        assert type(m).from_bytes(m.to_bytes()) == m


def test_messages_are_frozen() -> None:
    with pytest.raises(ValidationError):
        command().cluster_id = "west"  # type: ignore[misc]


def test_unknown_fields_are_ignored_so_sides_upgrade_independently() -> None:
    raw = orjson.loads(report().to_bytes())
    raw["added_in_v1_7"] = {"anything": 1}
    raw["workloads"] = [{"workload": {"namespace": "a", "name": "b", "future": 1}, "desired_replicas": 1,
                         "ready_replicas": 1, "samples": {"new_signal_ratio": 0.3}}]
    parsed = TelemetryReport.from_bytes(orjson.dumps(raw))
    assert parsed.workloads[0].workload.key == "a/b"


def test_strict_subclass_catches_typos_in_tests() -> None:
    class StrictReport(TelemetryReport):
        model_config = ConfigDict(extra="forbid")

    raw = orjson.loads(report().to_bytes()) | {"intervall_s": 2}
    with pytest.raises(ValidationError, match="intervall_s"):
        StrictReport.model_validate(raw)


def test_unknown_protocol_version_is_rejected() -> None:
    raw = orjson.loads(report().to_bytes()) | {"protocol_version": 2}
    with pytest.raises(InvalidMessage, match="protocol_version 2 is not supported"):
        decode(TelemetryReport, orjson.dumps(raw))


def test_missing_samples_stay_missing_and_are_never_zero() -> None:
    s = Samples.model_validate({"requests_waiting": None, "ttft": {"p95_s": 0.4}})
    assert s.requests_waiting is None
    assert s.kv_cache_usage_ratio is None
    assert s.ttft.p50_s is None and s.ttft.p95_s == 0.4
    assert s.gpu_utilization_ratio is None
    wire = orjson.loads(s.model_dump_json())
    assert wire["requests_waiting"] is None and wire["kv_cache_usage_ratio"] is None


def test_gpu_utilization_is_the_mean_of_the_gpus_that_reported() -> None:
    s = Samples.model_validate({"gpus": [{"gpu_id": "a", "utilization_ratio": 0.5},
                                         {"gpu_id": "b", "utilization_ratio": None},
                                         {"gpu_id": "c", "utilization_ratio": 1.0}]})
    assert s.gpu_utilization_ratio == 0.75


def test_ratio_out_of_range_names_the_field() -> None:
    raw = orjson.loads(report().to_bytes()) | {
        "workloads": [{"workload": {"namespace": "a", "name": "b"}, "desired_replicas": 1, "ready_replicas": 1,
                       "samples": {"kv_cache_usage_ratio": 1.5}}]
    }
    with pytest.raises(InvalidMessage) as e:
        decode(TelemetryReport, orjson.dumps(raw))
    assert e.value.field == "workloads.0.samples.kv_cache_usage_ratio"


def test_command_carries_absolute_replicas_and_its_total() -> None:
    c = command(replicas_by_gpu_type={"H100": 2, "L4": 5})
    assert c.total_replicas == 7


def test_command_rejects_negative_replicas_and_deadline_before_issue() -> None:
    with pytest.raises(ValidationError, match="replicas_by_gpu_type"):
        command(replicas_by_gpu_type={"H100": -1})
    with pytest.raises(ValidationError, match="deadline must be after issued_at"):
        command(deadline=NOW - timedelta(seconds=1))


@pytest.mark.parametrize("bad", ["East-1", "a.b", "a*", "", "-x"])
def test_cluster_id_must_be_a_subject_token(bad: str) -> None:
    with pytest.raises(ValidationError, match="cluster_id"):
        report(cluster_id=bad)


def test_published_json_schemas_match_the_models() -> None:
    docs = Path(__file__).parents[2] / "docs" / "protocol"
    for stem, schema in json_schemas().items():
        published = orjson.loads((docs / f"{stem}.schema.json").read_bytes())
        assert published == schema, f"docs/protocol/{stem}.schema.json is stale: run python -m shared.schemas"


# --- strict, finite, bounded (issue 13): each of these once passed validation ----------------------


def _report_json(**kw: object) -> dict[str, object]:
    raw = orjson.loads(report(workloads=[WorkloadReport(workload=REF, desired_replicas=2, ready_replicas=2)])
                       .to_bytes())
    raw.update(kw)
    return raw


def _workload(**kw: object) -> dict[str, object]:
    return {"workload": {"namespace": "a", "name": "b"}, "desired_replicas": 1, "ready_replicas": 1} | kw


def _invalid_field(raw: dict[str, object] | bytes) -> str | None:
    with pytest.raises(InvalidMessage) as e:
        # json, not orjson: orjson cannot even write the integers above 2^64 a hostile client sends
        decode(TelemetryReport, raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    return e.value.field


BIG = 2**64 + 1


@pytest.mark.parametrize(("poison", "field"), [
    ({"sent_at": "2026-11-22T12:00:00"}, "sent_at"),  # naive: compared with a zoned one, it crashed the hub
    ({"sent_at": 1795000000}, "sent_at"),  # epoch number where the docs say RFC 3339
    ({"sent_at": "1795000000"}, "sent_at"),  # numeric string
    ({"interval_s": 1e300}, "interval_s"),  # kept a forged cluster fresh forever
    ({"interval_s": "2"}, "interval_s"),
    ({"sequence": BIG}, "sequence"),
    ({"sequence": 3.0}, "sequence"),
    ({"workloads": [_workload(desired_replicas=BIG)]}, "workloads.0.desired_replicas"),
    ({"workloads": [_workload(ready_replicas=BIG)]}, "workloads.0.ready_replicas"),
    ({"workloads": [_workload(ready_replicas=3e7)]}, "workloads.0.ready_replicas"),
    ({"workloads": [_workload(ready_replicas=30_000_000)]}, "workloads.0.ready_replicas"),
    ({"workloads": [_workload(gpus_per_replica=BIG)]}, "workloads.0.gpus_per_replica"),
    ({"workloads": [_workload(variants=[{"gpu_type": "H100", "desired_replicas": BIG, "ready_replicas": 1}])]},
     "workloads.0.variants.0.desired_replicas"),
    ({"workloads": [_workload(samples={"requests_waiting": 1e300})]}, "workloads.0.samples.requests_waiting"),
    ({"workloads": [_workload(samples={"requests_waiting": "5"})]}, "workloads.0.samples.requests_waiting"),
    ({"workloads": [_workload(samples={"ttft": {"p95_s": 1e9}})]}, "workloads.0.samples.ttft.p95_s"),
    ({"inventory": [{"node": "n", "gpu_product": "p", "gpu_type": "H100", "capacity_gpus": BIG,
                     "allocatable_gpus": 1, "free_gpus": 1}]}, "inventory.0.capacity_gpus"),
    ({"spoke_version": "x" * 129}, "spoke_version"),
    ({"workloads": [_workload(labels={"k": "v" * 64})]}, "workloads.0.labels.k"),
    ({"workloads": [_workload(workload={"namespace": "a", "name": "b" * 254})]}, "workloads.0.workload.name"),
])
def test_a_poisoned_report_is_refused_naming_the_field(poison: dict[str, object], field: str) -> None:
    assert _invalid_field(_report_json(**poison)) == field


@pytest.mark.parametrize("literal", [b"Infinity", b"-Infinity", b"NaN", b"1e999"])
def test_non_finite_numbers_are_refused_wherever_they_appear(literal: bytes) -> None:
    sample = orjson.dumps(_report_json(workloads=[_workload(samples={"requests_waiting": 7.5})]))
    assert _invalid_field(sample.replace(b"7.5", literal)) == "workloads.0.samples.requests_waiting"
    interval = orjson.dumps(_report_json(interval_s=7.5))
    assert _invalid_field(interval.replace(b"7.5", literal)) == "interval_s"


@pytest.mark.parametrize(("model", "field"), [
    (TelemetryReport, "protocol_version"), (TelemetryReport, "type"),
    (ScaleCommand, "command_id"), (ScaleCommand, "issued_at"), (CommandResult, "completed_at"),
])
def test_fields_the_protocol_relies_on_are_required_on_the_wire(model: type, field: str) -> None:
    message = {TelemetryReport: report(), ScaleCommand: command(),
               CommandResult: CommandResult(command_id="c", cluster_id="east-1", workload=REF,
                                            status=ResultStatus.APPLIED, reason=ResultReason.APPLIED)}[model]
    raw = orjson.loads(message.to_bytes())
    assert model.from_bytes(orjson.dumps(raw)) == message
    del raw[field]
    with pytest.raises(InvalidMessage, match=f"{field}: required on the wire"):
        decode(model, orjson.dumps(raw))
    assert field in json_schemas()[{TelemetryReport: "telemetry-report", ScaleCommand: "scale-command",
                                    CommandResult: "command-result"}[model]]["required"]


def test_a_result_with_an_unbounded_count_or_a_naive_time_is_refused() -> None:
    base = orjson.loads(CommandResult(command_id="c", cluster_id="east-1", workload=REF, status=ResultStatus.APPLIED,
                                      reason=ResultReason.APPLIED).to_bytes())
    with pytest.raises(InvalidMessage, match="observed_replicas_by_gpu_type"):
        decode(CommandResult, json.dumps(base | {"observed_replicas_by_gpu_type": {"H100": BIG}}).encode())
    with pytest.raises(InvalidMessage, match="completed_at"):
        decode(CommandResult, orjson.dumps(base | {"completed_at": "2026-11-22T12:00:00"}))
    with pytest.raises(InvalidMessage, match="command_id"):
        decode(CommandResult, orjson.dumps(base | {"command_id": "c" * 129}))


def test_token_histogram_is_bounded_and_consistent() -> None:
    import math

    import pytest
    from pydantic import ValidationError

    from shared.messages import MAX_HISTOGRAM_BOUNDS, Samples, TokenHistogram

    ok = TokenHistogram(le_tokens=(128.0, 1024.0), counts=(3.0, 5.0, 1.0))
    assert ok.total == 9.0
    assert Samples.model_validate_json(Samples(prompt_tokens=ok).model_dump_json()).prompt_tokens == ok
    for bad in (
        {"le_tokens": (128.0,), "counts": (1.0,)},  # no overflow count
        {"le_tokens": (128.0, 64.0), "counts": (1.0, 1.0, 1.0)},  # not increasing
        {"le_tokens": (math.inf,), "counts": (1.0, 1.0)},  # not finite
        {"le_tokens": (1.0,), "counts": (math.nan, 1.0)},
        {"le_tokens": tuple(float(i) for i in range(1, MAX_HISTOGRAM_BOUNDS + 2)),
         "counts": (0.0,) * (MAX_HISTOGRAM_BOUNDS + 2)},  # too many buckets
    ):
        with pytest.raises(ValidationError):
            TokenHistogram(**bad)
    with pytest.raises(ValidationError, match="preemptions_per_s"):
        Samples(preemptions_per_s=math.inf)


def test_start_times_are_bounded_one_entry_per_tier_and_counted() -> None:
    import math

    import pytest
    from pydantic import ValidationError

    from shared.messages import MAX_RECENT_STARTS, StartTier, StartTimes, VariantStatus

    cold = StartTimes(tier=StartTier.COLD, recent_s=(120.0, 95.5), count=7)
    v = VariantStatus(gpu_type="L4", desired_replicas=1, ready_replicas=1, starts=(cold,))
    assert VariantStatus.model_validate_json(v.model_dump_json()) == v
    assert VariantStatus(gpu_type="L4", desired_replicas=1, ready_replicas=1).starts == ()  # 1.2 senders
    for bad in (
        {"tier": "cold", "recent_s": [], "count": 1},  # nothing measured: leave the tier out
        {"tier": "cold", "recent_s": [1.0, 2.0], "count": 1},  # fewer counted than listed
        {"tier": "cold", "recent_s": [-1.0], "count": 1},
        {"tier": "cold", "recent_s": [86_401.0], "count": 1},
        {"tier": "cold", "recent_s": [math.nan], "count": 1},
        {"tier": "cold", "recent_s": [1.0] * (MAX_RECENT_STARTS + 1), "count": 100},
        {"tier": "frozen", "recent_s": [1.0], "count": 1},
        {"tier": "cold", "recent_s": [1.0], "count": 1.5},
    ):
        with pytest.raises(ValidationError):
            StartTimes.model_validate(bad)
    with pytest.raises(ValidationError, match="each tier at most once"):
        VariantStatus(gpu_type="L4", desired_replicas=1, ready_replicas=1, starts=(cold, cold))
