"""Decision history in JetStream: it survives a hub restart, with the same ids and results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from hub.decisions import Decision
from shared import subjects
from shared.bus import Bus, BusOptions, DecisionRetention
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from shared.replay import tail
from tests.e2e.conftest import eventually, running_hub, write_policies
from tests.hub.factories import node, report, workload

pytestmark = pytest.mark.nats

ENFORCED = {"id": "llama", "workload": {"namespace": "inference", "name": "llama"},
            "target": {"signal": "queue_per_replica", "value": 5}, "max_replicas": 12}
DRY_RUN = ENFORCED | {"id": "mistral", "workload": {"namespace": "inference", "name": "mistral"}, "mode": "dry-run"}


async def test_decisions_and_their_results_survive_a_hub_restart(nats_server, tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "p.yaml", ENFORCED, DRY_RUN)
    async with running_hub(nats_server.url, policy_file=policies) as hub:
        seq = 0

        async def decided() -> list[Decision]:
            nonlocal seq
            seq += 1
            r = report("alpha", [workload("llama", waiting=40), workload("mistral", waiting=40)], [node("H100", 16)],
                       seq=seq, sent_at=datetime.now(UTC))
            await hub.bus.publish(subjects.telemetry("alpha"), r)
            await asyncio.sleep(0.1)
            return [d for d in hub.decisions.recent() if d.commands or d.mode == "dry-run"]

        async with asyncio.timeout(15):
            while len(made := await decided()) < 2:
                pass
        enforced = next(d for d in made if d.commands)
        (command_id,) = enforced.commands
        result = CommandResult(command_id=command_id, cluster_id="alpha",
                               workload=WorkloadRef(namespace="inference", name="llama"),
                               status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                               observed_replicas_by_gpu_type={"H100": enforced.desired_replicas})
        await hub.bus.publish_durable(subjects.results("alpha"), result, msg_id=f"result:{command_id}")
        await eventually(lambda: command_id in enforced.results)
        before = [d.to_json() for d in hub.decisions.recent()]
        await eventually(lambda: hub.journal.pending == 0)
        assert hub.metrics.journal_failures.labels("publish")._value.get() == 0

    async with running_hub(nats_server.url) as hub:
        after = [d.to_json() for d in hub.decisions.recent()]
        assert after == before  # same ids, same order, same results
        restored = hub.decisions.get(enforced.id)
        assert restored is not None and restored.results[command_id]["status"] == "applied"
        assert hub.decisions.latest["inference/llama"].id == enforced.id
        url = f"http://127.0.0.1:{hub.api_port}/api/v1/decisions"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/{enforced.id}") as r:
                assert r.status == 200 and await r.json() == enforced.to_json()
            async with s.get(url, params={"cluster": "alpha", "workload": "inference/llama"}) as r:
                assert [d["id"] for d in (await r.json())["decisions"]] == [enforced.id]
        # One message per decision: the result replaced the first revision in the stream.
        info = await hub.bus.js.stream_info(subjects.DECISIONS_STREAM)
        assert info.state.messages == len(before)


async def test_a_record_made_while_nats_is_down_is_counted_retried_and_stored(nats_server, tmp_path: Path) -> None:
    async with running_hub(nats_server.url) as hub:
        # NB: the policy watcher's first subscribe does not survive an outage (it stops the hub),
        # so let it subscribe first.
        await asyncio.sleep(0.5)
        nats_server.stop()
        decision = Decision(workload="inference/llama", policy_id="p", policy_revision=1, mode="dry-run",
                            current_replicas=1, desired_replicas=3, reason="queue", inputs={},
                            placement_before={"alpha/H100": 1}, placement_after={"alpha/H100": 3})
        hub.decisions.add(decision)  # returns at once, NATS or not
        await eventually(lambda: hub.metrics.journal_failures.labels("publish")._value.get() >= 1)
        assert hub.journal.pending == 1
        nats_server.start()
        await eventually(lambda: hub.journal.pending == 0 and hub.metrics.journal_published._value.get() == 1,
                         timeout_s=20)
    async with running_hub(nats_server.url) as hub:
        restored = hub.decisions.get(decision.id)
        assert restored is not None and restored.to_json() == decision.to_json()


async def test_retention_settings_are_applied_to_the_stream_and_changed_in_place(nats_server) -> None:
    async with Bus.connect(BusOptions(url=nats_server.url)) as bus:
        await bus.ensure_topology(decisions=DecisionRetention(max_age_s=3600, max_msgs=50, max_bytes=2 * 1024 * 1024))
        config = (await bus.js.stream_info(subjects.DECISIONS_STREAM)).config
        assert (config.max_age, config.max_msgs, config.max_bytes, config.max_msgs_per_subject) == (
            3600, 50, 2 * 1024 * 1024, 1)
        await bus.ensure_topology(decisions=DecisionRetention(max_age_s=7200, max_msgs=80, max_bytes=4 * 1024 * 1024))
        config = (await bus.js.stream_info(subjects.DECISIONS_STREAM)).config
        assert (config.max_age, config.max_msgs, config.max_bytes) == (7200, 80, 4 * 1024 * 1024)
        # A spoke's ensure_topology (no retention) leaves the hub's stream as the hub set it.
        await bus.ensure_topology()
        assert (await bus.js.stream_info(subjects.DECISIONS_STREAM)).config.max_msgs == 80
        # max_msgs counts decisions: the oldest go first, and a replay reads what is left.
        for i in range(100):
            await bus.publish_durable(subjects.decision(f"d{i}"), b"{}", msg_id=f"m{i}")
        assert (await bus.js.stream_info(subjects.DECISIONS_STREAM)).state.messages == 80
        assert len(await tail(bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=10)) == 10
