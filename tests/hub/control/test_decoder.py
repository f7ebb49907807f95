"""The decoder validates only changed workloads, and accepts and refuses exactly what a whole-report decode does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from hub.control.decoder import Decoder
from shared.bus import decode
from shared.errors import InvalidMessage
from shared.messages import MAX_WORKLOADS_PER_REPORT, TelemetryReport

SUBJECT = "fleetscale.v1.telemetry.east-1"
BIG = 2**64 + 1


def workload(name: str = "b", **kw: object) -> dict[str, object]:
    return {"workload": {"namespace": "a", "name": name}, "desired_replicas": 1, "ready_replicas": 1,
            "variants": [{"gpu_type": "H100", "desired_replicas": 1, "ready_replicas": 1}],
            "samples": {"requests_waiting": 3, "kv_cache_usage_ratio": 0.5, "ttft": {"p95_s": 0.4},
                        "gpus": [{"gpu_id": "g0", "utilization_ratio": 0.9}]},
            "labels": {"team": "x"}} | kw


def report(workloads: list[dict[str, object]] | None = None, **kw: object) -> dict[str, object]:
    return {"protocol_version": 1, "type": "telemetry", "cluster_id": "east-1", "sequence": 1,
            "sent_at": datetime(2026, 11, 22, 12, tzinfo=UTC).isoformat(), "interval_s": 1.0,
            "inventory": [{"node": "n1", "gpu_product": "p", "gpu_type": "H100", "capacity_gpus": 8,
                           "allocatable_gpus": 8, "free_gpus": 2}],
            "workloads": [workload("b"), workload("c")] if workloads is None else workloads} | kw


def raw(message: dict[str, object]) -> bytes:
    return json.dumps(message).encode()  # json, not orjson: it writes the integers above 2^64 a hostile client sends


def primed() -> Decoder:
    decoder = Decoder()
    decoder.keep("east-1", decoder.decode(SUBJECT, raw(report())))
    return decoder


def test_a_valid_report_decodes_to_what_a_whole_decode_gives() -> None:
    data = raw(report([workload("b"), workload("c", samples={"requests_waiting": 0.0}), workload("d", labels={})],
                      spoke_version="1.2", added_later={"x": 1}))
    got = Decoder().decode(SUBJECT, data)
    assert got.report == decode(TelemetryReport, data)
    assert got.validated == 3


def test_an_unchanged_workload_keeps_its_model_and_is_not_validated_again() -> None:
    decoder = primed()
    before = decoder.decode(SUBJECT, raw(report())).report
    data = raw(report(sequence=2, workloads=[workload("b"), workload("c", desired_replicas=2)]))
    after = decoder.decode(SUBJECT, data)
    assert after.validated == 1
    assert after.report.workloads[0] is before.workloads[0]
    assert after.report.workloads[1].desired_replicas == 2
    assert after.report == decode(TelemetryReport, data)


def test_only_accepted_reports_are_remembered() -> None:
    decoder = Decoder()
    decoder.decode(SUBJECT, raw(report()))  # decoded but never kept (refused by admission, say)
    assert decoder.decode(SUBJECT, raw(report())).validated == 2
    decoder.keep("east-1", decoder.decode(SUBJECT, raw(report())))
    assert decoder.decode(SUBJECT, raw(report())).validated == 0
    decoder.forget("east-1")
    assert decoder.decode(SUBJECT, raw(report())).validated == 2


def test_a_workload_is_remembered_per_cluster() -> None:
    decoder = primed()
    assert decoder.decode("fleetscale.v1.telemetry.west", raw(report(cluster_id="west"))).validated == 2


POISONS: list[tuple[dict[str, object], str]] = [
    ({"workloads": [workload("b", desired_replicas=1.0)]}, "workloads.0.desired_replicas"),  # 1.0 == 1 in Python
    ({"workloads": [workload("b", ready_replicas=True)]}, "workloads.0.ready_replicas"),  # True == 1 in Python
    ({"workloads": [workload("b"), workload("c", desired_replicas=BIG)]}, "workloads.1.desired_replicas"),
    ({"workloads": [workload("b", samples={"requests_waiting": "5"})]}, "workloads.0.samples.requests_waiting"),
    ({"workloads": [workload("b", samples={"kv_cache_usage_ratio": 1.5})]},
     "workloads.0.samples.kv_cache_usage_ratio"),
    ({"workloads": [workload("b", workload={"namespace": "a"})]}, "workloads.0.workload.name"),
    ({"workloads": ["not an object"]}, "workloads.0"),
    ({"workloads": {"b": 1}}, "workloads"),
    ({"workloads": [workload(f"w{i}") for i in range(MAX_WORKLOADS_PER_REPORT + 1)]}, "workloads"),
    ({"sent_at": "2026-11-22T12:00:00"}, "sent_at"),
    ({"sequence": 3.0}, "sequence"),
    ({"interval_s": 1e300}, "interval_s"),
    ({"protocol_version": 2}, "<message>"),
    ({"inventory": [{"node": "n", "gpu_product": "p", "gpu_type": "H100", "capacity_gpus": BIG,
                     "allocatable_gpus": 1, "free_gpus": 1}]}, "inventory.0.capacity_gpus"),
]


@pytest.mark.parametrize(("poison", "field"), POISONS)
@pytest.mark.parametrize("decoder", [Decoder, primed], ids=["fresh", "primed"])
def test_a_poisoned_report_is_refused_as_a_whole_decode_refuses_it(
    poison: dict[str, object], field: str, decoder: type[Decoder]
) -> None:
    data = raw(report() | poison)
    with pytest.raises(InvalidMessage) as whole:
        decode(TelemetryReport, data, subject=SUBJECT)
    with pytest.raises(InvalidMessage) as fast:
        decoder().decode(SUBJECT, data)
    assert str(fast.value) == str(whole.value)
    assert (fast.value.field or "<message>") == field


@pytest.mark.parametrize("data", [b"", b"[]", b"null", b"{", b'{"workloads": [1e999]}',
                                  orjson.dumps(report()).replace(b"0.5", b"NaN")])
def test_what_is_not_a_json_object_is_refused_as_before(data: bytes) -> None:
    with pytest.raises(InvalidMessage) as whole:
        decode(TelemetryReport, data, subject=SUBJECT)
    with pytest.raises(InvalidMessage) as fast:
        primed().decode(SUBJECT, data)
    assert str(fast.value) == str(whole.value)


def test_only_admitted_workloads_are_remembered_when_told() -> None:
    decoder = Decoder()
    decoder.keep("east-1", decoder.decode(SUBJECT, raw(report())), admitted=lambda key: key == "a/b")
    again = decoder.decode(SUBJECT, raw(report()))
    assert again.validated == 1 and again.report.workloads[1].workload.key == "a/c"
