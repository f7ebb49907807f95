"""A spoke written from docs/protocol.md alone: plain nats-py, no Fleetscale imports.

With its own nkey (issued by `fleetscale nats-auth`) and inbox prefix, on a server enforcing the
per-spoke permissions, it publishes telemetry as a new cluster, binds the durable consumer the hub
created, receives the hub's command, publishes the result to JetStream and only then acknowledges
the command.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.js.errors
import pytest

from tests.conftest import SecuredNats
from tests.e2e.conftest import eventually, running_hub, write_policies

pytestmark = pytest.mark.nats

CLUSTER = "third-party"


def telemetry(seq: int, replicas: int, waiting: int) -> bytes:
    return json.dumps({
        "protocol_version": 1, "type": "telemetry", "cluster_id": CLUSTER, "sequence": seq,
        "sent_at": datetime.now(UTC).isoformat(), "interval_s": 0.2,
        "inventory": [{"node": "n1", "gpu_product": "NVIDIA-H100-80GB-HBM3", "gpu_type": "H100",
                       "capacity_gpus": 8, "allocatable_gpus": 8, "free_gpus": 8 - replicas}],
        "workloads": [{
            "workload": {"namespace": "team-a", "name": "mistral", "kind": "Deployment"},
            "desired_replicas": replicas, "ready_replicas": replicas, "gpus_per_replica": 1,
            "variants": [{"gpu_type": "H100", "desired_replicas": replicas, "ready_replicas": replicas}],
            "samples": {"requests_waiting": waiting, "ttft": {"p95_s": None},
                        "missing_reasons": {"ttft": "engine exports no TTFT histogram"}},
        }],
    }).encode()


async def test_a_spoke_written_from_the_protocol_doc_gets_and_acks_a_command(
    secured_nats: SecuredNats, tmp_path: Path
) -> None:
    policies = write_policies(tmp_path / "p.yaml", {
        "id": "mistral", "targets": {"workloads": [{"namespace": "team-a", "name": "mistral"}]},
        "signals": [{"metric": "queue_per_replica", "target": 5}], "bounds": {"min_replicas": 1, "max_replicas": 8},
    })
    async with running_hub(secured_nats.url, policy_file=policies, nats_nkey_file=secured_nats.seed_file()) as hub:
        nc = await nats.connect(secured_nats.url, nkeys_seed=str(secured_nats.seed_file(CLUSTER)),
                                inbox_prefix=f"_INBOX.spoke-{CLUSTER}")
        js = nc.jetstream()
        try:
            seq = 0
            sub = None
            msgs = []
            async with asyncio.timeout(10):
                while not msgs:
                    await nc.publish(f"fleetscale.v1.telemetry.{CLUSTER}", telemetry(seq, 1, 20))
                    seq += 1
                    if sub is None:
                        try:  # the hub creates spoke-<cluster> before its first command; bind it then
                            await js.consumer_info("FLEETSCALE_COMMANDS", f"spoke-{CLUSTER}")
                        except nats.js.errors.NotFoundError:
                            await asyncio.sleep(0.2)
                            continue
                        sub = await js.pull_subscribe_bind(durable=f"spoke-{CLUSTER}", stream="FLEETSCALE_COMMANDS")
                    try:
                        msgs = await sub.fetch(1, timeout=0.5)
                    except nats.errors.TimeoutError:
                        pass
            msg = msgs[0]
            command = json.loads(msg.data)
            assert msg.headers and msg.headers.get("Nats-Msg-Id") == command["command_id"]
            assert command["type"] == "scale" and command["replicas_by_gpu_type"] == {"H100": 4}  # ceil(20 / 5)
            result = {
                "protocol_version": 1, "type": "result", "command_id": command["command_id"],
                "cluster_id": CLUSTER, "workload": command["workload"], "status": "applied", "reason": "applied",
                "observed_replicas_by_gpu_type": {"H100": 4}, "error": None,
                "completed_at": datetime.now(UTC).isoformat(),
            }
            await js.publish(f"fleetscale.v1.results.{CLUSTER}", json.dumps(result).encode(),
                             headers={"Nats-Msg-Id": f"result:{command['command_id']}"})
            await msg.ack_sync()
        finally:
            await nc.close()

        def applied() -> bool:
            intent = hub.state.snapshot().intents.get(("team-a/mistral", CLUSTER))
            return intent is not None and intent.result is not None and intent.result.status.value == "applied"

        await eventually(applied)
        decision = hub.decisions.latest["team-a/mistral"]
        assert decision.action == "scale_up" and command["command_id"] in decision.results
