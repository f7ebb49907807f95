"""Decision history in JetStream: it survives a hub restart, with the same ids and results."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import aiohttp
import orjson
import pytest

from hub.decisions.model import Decision
from hub.service import Hub
from shared import subjects
from shared.bus import Bus, BusOptions, DecisionRetention
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from shared.replay import tail
from tests.e2e.conftest import eventually, running_hub

pytestmark = pytest.mark.nats


def stored(hub: Hub, decision_id: str) -> Decision:
    """The log's current revision of a record (records are frozen: results arrive as new revisions)."""
    d = hub.decisions.get(decision_id)
    assert d is not None
    return d

def recorded(workload: str, *, commands: list[str], mode: Literal["enforce", "dry-run"] = "enforce") -> Decision:
    return Decision(workload=workload, policy_id=workload.split("/")[1], policy_revision=1, mode=mode,
                    current_replicas=2, desired_replicas=4, reason="queue_per_replica 8.0 > target 4",
                    inputs={"queue_per_replica": 8.0}, placement_before={"alpha/H100": 2},
                    placement_after={"alpha/H100": 2, "beta/L4": 2}, commands=commands)


async def test_decisions_and_their_results_survive_a_hub_restart(nats_server) -> None:
    async with running_hub(nats_server.url) as hub:
        # Recorded as the evaluator records them; results come back over the real results stream.
        made = [
            recorded("inference/llama", commands=["cmd-a", "cmd-b"]),
            recorded("inference/mistral", commands=[], mode="dry-run"),
            recorded("inference/llama", commands=["cmd-c"]),
        ]
        for d in made:
            hub.decisions.add(d)
        for command_id, cluster in (("cmd-a", "alpha"), ("cmd-b", "beta"), ("cmd-c", "beta")):
            # As the dispatcher does when it sends them: a result for a command never sent is refused.
            hub.dispatcher.ledger.add(command_id, cluster, "inference/llama")
        for command_id, cluster in (("cmd-a", "alpha"), ("cmd-b", "beta"), ("cmd-c", "beta")):
            result = CommandResult(command_id=command_id, cluster_id=cluster,
                                   workload=WorkloadRef(namespace="inference", name="llama"),
                                   status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                                   observed_replicas_by_gpu_type={"L4": 2})
            await hub.bus.publish_durable(subjects.results(cluster), result, msg_id=f"result:{command_id}")
        # Records are frozen: the log holds each one's newest revision.
        await eventually(lambda: len(stored(hub, made[0].id).results) == 2
                         and len(stored(hub, made[2].id).results) == 1)
        before = [d.model_dump(mode="json") for d in hub.decisions.recent()]
        await eventually(lambda: hub.journal.pending == 0)
        assert hub.metrics.journal_failures.labels("publish")._value.get() == 0

    async with running_hub(nats_server.url) as hub:
        after = [d.model_dump(mode="json") for d in hub.decisions.recent()]
        assert after == before  # same ids, same order, same results
        restored = hub.decisions.get(made[0].id)
        assert restored is not None and restored.results["cmd-b"].status == "applied"
        assert hub.decisions.latest["inference/llama"].id == made[2].id
        url = f"http://127.0.0.1:{hub.api_port}/api/v1/decisions"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/{made[0].id}") as r:
                assert r.status == 200 and await r.json() == before[2]
            async with s.get(url, params={"cluster": "beta", "workload": "inference/llama"}) as r:
                assert [d["id"] for d in (await r.json())["decisions"]] == [made[2].id, made[0].id]
        # One message per decision: each result replaced its decision's previous revision.
        info = await hub.bus.js.stream_info(subjects.DECISIONS_STREAM)
        assert info.state.messages == 3
        # A result that arrives after the restart still finds its decision, and is stored too.
        late = CommandResult(command_id="cmd-c", cluster_id="beta",
                             workload=WorkloadRef(namespace="inference", name="llama"),
                             status=ResultStatus.FAILED, reason=ResultReason.BACKEND_ERROR, error="retried")
        await hub.bus.publish_durable(subjects.results("beta"), late, msg_id="result:cmd-c:late")
        await eventually(lambda: stored(hub, made[2].id).results["cmd-c"].status == "failed")
        await eventually(lambda: hub.journal.pending == 0)

    async with running_hub(nats_server.url) as hub:
        assert stored(hub, made[2].id).results["cmd-c"].error == "retried"


async def test_a_record_made_while_nats_is_down_is_counted_retried_and_stored(nats_server, tmp_path: Path) -> None:
    async with running_hub(nats_server.url) as hub:
        nats_server.stop()  # at once: the policy watcher's first watch must outlive the outage too
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
        assert restored is not None and restored.model_dump(mode="json") == decision.model_dump(mode="json")


async def test_history_in_the_previous_format_is_read_back_and_served_as_the_one_model(nats_server) -> None:
    """Journal -> log -> API and feed: one model all the way, from a record an older hub stored."""
    old = orjson.loads((Path(__file__).parents[1] / "hub" / "decisions" / "previous_format.json").read_bytes())
    async with Bus.connect(BusOptions(url=nats_server.url)) as bus:
        await bus.ensure_topology(decisions=DecisionRetention())
        await bus.publish_durable(subjects.decision(old["id"]), orjson.dumps(old), msg_id="previous-format")
    async with running_hub(nats_server.url) as hub:
        restored = hub.decisions.get(old["id"])
        assert restored is not None and restored.results["cmd-b"].status == "applied"
        url = f"http://127.0.0.1:{hub.api_port}/api/v1"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/decisions/{old['id']}") as r:
                served = await r.json()
            async with s.get(f"{url}/decisions") as r:
                listed = (await r.json())["decisions"]
        assert served == restored.model_dump(mode="json") and listed == [served]
        assert Decision.model_validate(served) == restored
        assert served["routing"] == [] and served["approval"] is None  # not known then
        assert {k: v for k, v in served.items() if k not in ("at", "cause", "deciding_signal", "routing",
                                                               "approval")} == {
            k: v for k, v in old.items() if k != "at"}
        # A result attached now is journalled in the new format and read back by the next hub.
        late = CommandResult(command_id="cmd-b", cluster_id="beta", workload=WorkloadRef(namespace="inference",
                             name="llama"), status=ResultStatus.FAILED, reason=ResultReason.BACKEND_ERROR,
                             error="evicted")
        await hub.bus.publish_durable(subjects.results("beta"), late, msg_id="result:cmd-b:late")
        await eventually(lambda: stored(hub, old["id"]).results["cmd-b"].status == "failed")
        await eventually(lambda: hub.journal.pending == 0)
        now = stored(hub, old["id"]).model_dump(mode="json")
    async with running_hub(nats_server.url) as hub:
        assert stored(hub, old["id"]).model_dump(mode="json") == now


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
