from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import eventually, next_tick, running_hub, write_policies

pytestmark = pytest.mark.nats

POLICY = {"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
          "signals": [{"metric": "ttft", "target": 1.5}], "bounds": {"max_replicas": 12}}


async def test_policies_survive_a_hub_restart_in_the_kv_bucket(nats_server, tmp_path: Path) -> None:
    policy_file = write_policies(tmp_path / "p.yaml", POLICY)
    async with running_hub(nats_server.url, policy_file=policy_file) as hub:
        (stored,) = hub.policies.all()
        assert stored.revision >= 1 and stored.bounds.max_replicas == 12
    async with running_hub(nats_server.url) as hub:  # no file this time: the bucket is the truth
        (again,) = hub.policies.all()
        assert again == stored
    async with running_hub(nats_server.url, policy_file=policy_file) as hub:
        assert hub.policies.all()[0].revision == stored.revision  # unchanged file, no new revision
    write_policies(policy_file, POLICY | {"bounds": {"max_replicas": 16}})
    async with running_hub(nats_server.url, policy_file=policy_file) as hub:
        (changed,) = hub.policies.all()
        assert changed.bounds.max_replicas == 16 and changed.revision > stored.revision
        history = await hub.policies.kv.history("llama")
        assert [e.revision for e in history][-2:] == [stored.revision, changed.revision]


async def test_dry_run_records_what_it_would_do_once_and_sends_nothing(nats_server, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.hub.factories import node, report, workload

    policy = POLICY | {"mode": "dry-run", "signals": [{"metric": "queue_per_replica", "target": 5}]}
    async with running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub:
        for seq in range(6):
            r = report("dry", [workload(waiting=40)], [node("H100", 6)], seq=seq, sent_at=datetime.now(UTC))
            await hub.bus.publish("fleetscale.v1.telemetry.dry", r)
            await eventually(lambda: hub.metrics.reports.labels("dry")._value.get() == seq + 1)  # noqa: B023
            await next_tick(hub)
        (decision,) = hub.decisions.recent(workload="inference/llama")
        assert decision.mode == "dry-run" and decision.desired_replicas == 8 and decision.commands == []
        assert hub.metrics.commands.labels("dry")._value.get() == 0
