"""Fault and abuse: every single poison message of issue 13, against a real nats-server and hub.

Each test runs the real hub (in this process, with its own NATS connection) on a private
nats-server, with one good cluster reporting every 0.2 s under a dry-run queue policy, and sends
one kind of hostile message. The hub must count and drop it, and keep deciding for the good
cluster: the probe flips the good cluster's queue and waits for the decision that follows.
On the code before issue 13 each of these crashed the hub, stopped its ticks, or let the message
count.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest

from hub.service import Hub
from shared import subjects
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.e2e.conftest import eventually, running_hub, write_policies

pytestmark = pytest.mark.nats

NS, NAME = "inference", "good"
KEY = f"{NS}/{NAME}"
BIG = 2**64 + 1


def good_report(cluster: str = "good", *, seq: int = 0, waiting: float = 0.0, **kw: Any) -> dict[str, Any]:
    report = {
        "protocol_version": 1, "type": "telemetry", "cluster_id": cluster, "sequence": seq,
        "sent_at": datetime.now(UTC).isoformat(), "interval_s": 0.2, "spoke_version": "test",
        "inventory": [{"node": f"{cluster}-n1", "gpu_product": "NVIDIA-H100-80GB-HBM3", "gpu_type": "H100",
                       "capacity_gpus": 8, "allocatable_gpus": 8, "free_gpus": 6}],
        "workloads": [{"workload": {"namespace": NS, "name": NAME}, "desired_replicas": 2, "ready_replicas": 2,
                       "gpus_per_replica": 1,
                       "variants": [{"gpu_type": "H100", "desired_replicas": 2, "ready_replicas": 2}],
                       "samples": {"requests_waiting": waiting, "requests_running": 2.0}}],
    }
    report.update(kw)
    return report


def encode(report: dict[str, Any]) -> bytes:
    # json, not orjson: orjson cannot write the integers above 2^64 an attacker sends
    return json.dumps(report).encode()


class GoodCluster:
    """Reports like a spoke; ``flip`` changes its queue so that the dry-run policy decides anew."""

    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.waiting = 0.0
        self.seq = 0

    async def run(self) -> None:
        while True:
            self.seq += 1
            await self.nc.publish(subjects.telemetry("good"), encode(good_report(seq=self.seq, waiting=self.waiting)))
            await asyncio.sleep(0.2)

    async def still_deciding(self, hub: Hub) -> None:
        """A change in the good cluster's load becomes a new decision (the hub's loop is alive)."""
        before = len(hub.decisions.recent(workload=KEY, limit=10_000))
        self.waiting = 40.0 if self.waiting == 0.0 else 0.0
        await eventually(lambda: len(hub.decisions.recent(workload=KEY, limit=10_000)) > before, timeout_s=10)
        assert hub.metrics.tick_failures._value.get() == 0


@asynccontextmanager
async def hub_with_good_cluster(
    nats_url: str, tmp_path: Path, *, probe_at_exit: bool = True, **settings: Any
) -> AsyncIterator[tuple[Hub, GoodCluster]]:
    policy = {"id": "good", "mode": "dry-run", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 8},
              "signals": [{"metric": "queue_per_replica", "target": 2}],
              "behavior": {"scale_down": {"stabilization_window_seconds": 0}}, "panic": {"enabled": False}}
    async with running_hub(nats_url, policy_file=write_policies(tmp_path / "p.yaml", policy), **settings) as hub:
        nc = await nats.connect(nats_url)
        good = GoodCluster(nc)
        task = asyncio.create_task(good.run())
        try:
            await eventually(lambda: "good" in hub.state.snapshot().fresh)
            await good.still_deciding(hub)
            yield hub, good
            if probe_at_exit:
                await good.still_deciding(hub)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await nc.close()


def refused(hub: Hub, kind: str, reason: str) -> float:
    return hub.metrics.refused.labels(kind, reason)._value.get()


def malformed(hub: Hub) -> float:
    return hub.metrics.malformed.labels("telemetry")._value.get()


def poisoned_workload(**fields: Any) -> dict[str, Any]:
    """The good workload, as a forged cluster reports it: poison in the workload the policy scales."""
    w = good_report()["workloads"][0]
    w.update(fields)
    return good_report("evil", workloads=[w])


POISONS = {
    "desired_replicas above 2^64": poisoned_workload(desired_replicas=BIG),
    "ready_replicas above 2^64": poisoned_workload(ready_replicas=BIG),
    "gpus_per_replica above 2^64": poisoned_workload(gpus_per_replica=BIG),
    "variant replicas above 2^64": poisoned_workload(
        variants=[{"gpu_type": "H100", "desired_replicas": BIG, "ready_replicas": 1}]),
    "inventory above 2^64": good_report("evil", inventory=[{"node": "x", "gpu_product": "p", "gpu_type": "H100",
                                                            "capacity_gpus": BIG, "allocatable_gpus": BIG,
                                                            "free_gpus": BIG}]),
    "ready_replicas 3e7": poisoned_workload(ready_replicas=3e7),
    "ready_replicas 30000000": poisoned_workload(ready_replicas=30_000_000),
    "interval_s 1e300": good_report("evil", interval_s=1e300),
    "sent_at as epoch seconds": good_report("evil", sent_at=1_795_000_000),
    "replicas as a numeric string": poisoned_workload(desired_replicas="3"),
}


@pytest.mark.parametrize("name", list(POISONS))
async def test_one_poisoned_report_is_counted_and_dropped_and_the_hub_keeps_deciding(
    nats_server, tmp_path: Path, name: str
) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, good):
        await good.nc.publish(subjects.telemetry("evil"), encode(POISONS[name]))
        await eventually(lambda: malformed(hub) == 1)
        assert "evil" not in hub.state.snapshot().clusters
        async with aiohttp.ClientSession() as http:
            for path in ("/api/v1/workloads", "/api/v1/clusters", "/api/v1/autoscaling", "/metrics"):
                async with http.get(f"http://127.0.0.1:{hub.api_port}{path}") as r:
                    assert r.status == 200, path


@pytest.mark.parametrize("literal", [b"Infinity", b"NaN", b"1e999"])
async def test_non_finite_queue_or_interval_is_refused(nats_server, tmp_path: Path, literal: bytes) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, good):
        queue = encode(poisoned_workload(samples={"requests_waiting": 7.25})).replace(b"7.25", literal)
        interval = encode(good_report("evil2", interval_s=7.25)).replace(b"7.25", literal)
        await good.nc.publish(subjects.telemetry("evil"), queue)  # once failed every tick for every workload
        await good.nc.publish(subjects.telemetry("evil2"), interval)  # once kept a forged cluster fresh forever
        await eventually(lambda: malformed(hub) == 2)
        assert not {"evil", "evil2"} & set(hub.state.snapshot().clusters)


async def test_a_naive_sent_at_followed_by_a_zoned_one_does_not_stop_the_hub(nats_server, tmp_path: Path) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, good):
        naive = good_report("evil", sent_at=datetime.now(UTC).replace(tzinfo=None).isoformat())
        await good.nc.publish(subjects.telemetry("evil"), encode(naive))
        await good.nc.publish(subjects.telemetry("evil"), encode(good_report("evil")))  # this one crashed it
        await eventually(lambda: malformed(hub) == 1 and "evil" in hub.state.snapshot().clusters)


async def test_a_report_from_the_future_is_refused_and_later_correct_reports_still_count(
    nats_server, tmp_path: Path
) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, good):
        forged = good_report(seq=10**6, waiting=400.0, sent_at="2099-01-01T00:00:00Z", interval_s=600)
        await good.nc.publish(subjects.telemetry("good"), encode(forged))
        await eventually(lambda: refused(hub, "telemetry", "future") == 1)
        seq = good.seq
        await eventually(lambda: hub.state.snapshot().clusters["good"].report.sequence > seq)
        assert hub.state.snapshot().clusters["good"].report.sent_at.year < 2099


async def test_a_report_on_another_clusters_subject_is_refused(nats_server, tmp_path: Path) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, good):
        await good.nc.publish(subjects.telemetry("evil"), encode(good_report("good", waiting=400.0)))
        await eventually(lambda: malformed(hub) == 1)


async def test_a_flood_of_forged_clusters_is_bounded_counted_and_forgotten(nats_server, tmp_path: Path) -> None:
    settings = {"max_clusters": 16, "cluster_retention_s": 2.0}
    async with hub_with_good_cluster(nats_server.url, tmp_path, **settings) as (hub, good):
        for n in range(2000):
            await good.nc.publish(subjects.telemetry(f"forged-{n}"), encode(good_report(f"forged-{n}")))
        await good.nc.flush()
        await eventually(lambda: refused(hub, "telemetry", "cluster_limit")
                         + refused(hub, "telemetry", "queue_full") >= 2000 - 15)
        assert hub.state.cluster_count <= 16
        await good.still_deciding(hub)
        # Silent past the retention, the forged clusters are forgotten, and their metric series too.
        await eventually(lambda: hub.state.cluster_count == 1, timeout_s=10)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{hub.api_port}/metrics") as r:
            assert "forged-" not in await r.text()


def result_for(command_id: str, cluster: str) -> CommandResult:
    return CommandResult(command_id=command_id, cluster_id=cluster, workload=WorkloadRef(namespace=NS, name=NAME),
                         status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                         observed_replicas_by_gpu_type={"H100": 24})


async def test_a_result_for_a_command_never_sent_does_not_count(nats_server, tmp_path: Path) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, _):
        forged = result_for(str(uuid.uuid4()), "good")
        await hub.bus.publish_durable(subjects.results("good"), forged, msg_id=f"result:{forged.command_id}")
        await eventually(lambda: refused(hub, "result", "unknown_command") == 1)
        assert hub.metrics.results.labels("good", "applied", "applied")._value.get() == 0


async def test_a_result_on_another_clusters_subject_does_not_count(nats_server, tmp_path: Path) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, _):
        forged = result_for(str(uuid.uuid4()), "good")
        await hub.bus.publish_durable(subjects.results("evil"), forged, msg_id=f"result:{forged.command_id}")
        await eventually(lambda: refused(hub, "result", "subject_mismatch") == 1)
        assert hub.metrics.results.labels("good", "applied", "applied")._value.get() == 0


async def test_every_command_is_in_the_decision_history_before_it_is_published(nats_server, tmp_path: Path) -> None:
    """Journal before command: at the moment a command is published, its decision is already stored."""
    async with hub_with_good_cluster(nats_server.url, tmp_path, probe_at_exit=False) as (hub, good):
        seen: list[bool] = []
        publish = hub.bus.publish_command

        async def checked(command):  # type: ignore[no-untyped-def]
            info = await hub.bus.js.get_last_msg(subjects.DECISIONS_STREAM,
                                                 subjects.decision(hub.decisions._by_command[command.command_id]))
            seen.append(command.command_id in json.loads(info.data)["commands"])
            await publish(command)

        hub.bus.publish_command = checked  # type: ignore[method-assign]
        stored = await hub.policies.update(
            hub.policies.get("good").model_copy(update={"mode": "enforce"}),  # type: ignore[union-attr]
            source=hub.policies.entry("good").source)  # type: ignore[union-attr]
        assert stored.mode == "enforce"
        good.waiting = 40.0
        await eventually(lambda: seen, timeout_s=10)
        assert all(seen)


async def test_a_future_dated_result_is_refused(nats_server, tmp_path: Path) -> None:
    async with hub_with_good_cluster(nats_server.url, tmp_path) as (hub, _):
        hub.dispatcher.ledger.add("c-future", "good", KEY)
        later = datetime.now(UTC) + timedelta(days=30)
        forged = result_for("c-future", "good").model_copy(update={"completed_at": later})
        await hub.bus.publish_durable(subjects.results("good"), forged, msg_id="result:c-future")
        await eventually(lambda: refused(hub, "result", "future") == 1)
