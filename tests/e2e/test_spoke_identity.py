"""Per-spoke identities on a real nats-server: what one spoke's credential cannot do to another.

Every case connects with spoke ``beta``'s own nkey (the attacker holds a real credential, as a
compromised spoke would) and tries to act as, or read from, spoke ``alpha``, or to change what only
the hub may change. Each attempt must be refused *by the server*: the server reports a permissions
violation naming the subject, and nothing the attempt aimed at happened (no message delivered, the
stream and the bucket unchanged). Positive cases show the same credentials do their own job.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from shared import subjects
from shared.bus import Bus, BusOptions, DecisionRetention
from shared.messages import CommandResult, ResultReason, ResultStatus, ScaleCommand, TelemetryReport, WorkloadRef
from shared.natsauth import read_seed
from spoke.backends.simulated import SimulatedBackend
from tests.conftest import SecuredNats
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats

VICTIM, ATTACKER = "alpha", "beta"


@dataclass
class Attacker:
    """Spoke beta's connection, with every error the server sent it."""

    nc: Client
    violations: list[str] = field(default_factory=list)

    async def refused(self, subject: str, kind: str = "publish") -> None:
        """Wait for the server's permissions violation for ``kind`` to ``subject``."""
        wanted = f'permissions violation for {"subscription" if kind == "subscribe" else kind} to "{subject.lower()}"'
        await eventually(lambda: any(wanted in v.lower() for v in self.violations), timeout_s=3)


@asynccontextmanager
async def as_spoke(secured: SecuredNats, cluster_id: str, *, inbox: str | None = None) -> AsyncIterator[Attacker]:
    attacker = Attacker(nc=None)  # type: ignore[arg-type]

    async def on_error(e: Exception) -> None:
        attacker.violations.append(str(e))

    attacker.nc = await nats.connect(
        secured.url, nkeys_seed_str=read_seed(secured.seed_file(cluster_id)), error_cb=on_error,
        inbox_prefix=inbox or subjects.spoke_inbox_prefix(cluster_id), max_reconnect_attempts=0,
    )
    try:
        yield attacker
    finally:
        await attacker.nc.close()


@asynccontextmanager
async def hub_bus(secured: SecuredNats) -> AsyncIterator[Bus]:
    options = BusOptions(url=secured.url, name="test-hub", nkey_seed=read_seed(secured.seed_file()))
    async with Bus.connect(options) as bus:
        await bus.ensure_topology(decisions=DecisionRetention())
        yield bus


def collect(into: list[Any], attribute: str) -> Callable[[Msg], Awaitable[None]]:
    async def on_message(msg: Msg) -> None:
        into.append(getattr(msg, attribute))

    return on_message


def command(cluster_id: str, replicas: int = 3) -> ScaleCommand:
    now = datetime.now(UTC)
    return ScaleCommand(
        cluster_id=cluster_id, workload=WorkloadRef(namespace=NS, name=NAME), replicas_by_gpu_type={"H100": replicas},
        gpus_per_replica=1, policy_id="p", policy_revision=1, reason="test", issued_at=now,
        deadline=now + timedelta(seconds=60),
    )


def result_for(c: ScaleCommand) -> CommandResult:
    return CommandResult(command_id=c.command_id, cluster_id=c.cluster_id, workload=c.workload,
                         status=ResultStatus.APPLIED, reason=ResultReason.APPLIED,
                         observed_replicas_by_gpu_type=dict(c.replicas_by_gpu_type))


def report(cluster_id: str) -> TelemetryReport:
    return TelemetryReport(cluster_id=cluster_id, sequence=0, sent_at=datetime.now(UTC), interval_s=1.0)


async def stream_messages(bus: Bus, stream: str, subject: str | None = None) -> int:
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    if subject is None:
        return info.state.messages
    return sum((info.state.subjects or {}).values())


# --- publishes as another spoke ---------------------------------------------------------------------


async def test_telemetry_as_another_spoke_is_refused_and_never_delivered(secured_nats: SecuredNats) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        heard: list[str] = []
        sub = await hub.nc.subscribe(subjects.TELEMETRY_ALL, cb=collect(heard, "subject"))
        await hub.nc.flush()
        for _ in range(5):
            await beta.nc.publish(subjects.telemetry(VICTIM), report(VICTIM).to_bytes())
        await beta.nc.publish(subjects.telemetry(ATTACKER), report(ATTACKER).to_bytes())  # its own: allowed
        await beta.nc.flush()
        await beta.refused(subjects.telemetry(VICTIM))
        await eventually(lambda: subjects.telemetry(ATTACKER) in heard)
        await sub.unsubscribe()
    assert heard == [subjects.telemetry(ATTACKER)]  # 0 of 5 forged reports reached the hub


async def test_a_result_as_another_spoke_is_refused_and_never_stored(secured_nats: SecuredNats) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        forged = result_for(command(VICTIM))
        js = beta.nc.jetstream(timeout=1.0)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):  # the server drops it: no ack ever comes
            await js.publish(subjects.results(VICTIM), forged.to_bytes(), timeout=1.0,
                             headers={"Nats-Msg-Id": f"result:{forged.command_id}"})
        await beta.refused(subjects.results(VICTIM))
        beta.violations.clear()
        await beta.nc.publish(subjects.results(VICTIM), forged.to_bytes())  # a plain publish on the subject too
        await beta.refused(subjects.results(VICTIM))
        own = result_for(command(ATTACKER))
        await js.publish(subjects.results(ATTACKER), own.to_bytes(), timeout=2.0)  # its own: stored
        assert await stream_messages(hub, subjects.RESULTS_STREAM, subjects.results(VICTIM)) == 0
        assert await stream_messages(hub, subjects.RESULTS_STREAM) == 1


# --- reads of another spoke's commands --------------------------------------------------------------


@pytest.mark.parametrize("subject", [subjects.commands(VICTIM), subjects.COMMANDS_ALL, ">"])
async def test_subscribing_to_another_spokes_commands_is_refused(secured_nats: SecuredNats, subject: str) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        got: list[bytes] = []
        await beta.nc.subscribe(subject, cb=collect(got, "data"))
        await beta.nc.flush()
        await beta.refused(subject, "subscribe")
        await hub.publish_command(command(VICTIM))
        await asyncio.sleep(0.3)
    assert got == []


async def test_another_spokes_durable_consumer_cannot_be_read_bound_or_acked(secured_nats: SecuredNats) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        sent = command(VICTIM)
        await hub.publish_command(sent)  # creates spoke-alpha, as the hub does before its first command
        js = beta.nc.jetstream(timeout=1.0)
        durable = subjects.spoke_consumer(VICTIM)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.consumer_info(subjects.COMMANDS_STREAM, durable, timeout=1.0)
        await beta.refused(subjects.spoke_consumer_info(VICTIM))
        psub = await js.pull_subscribe_bind(durable=durable, stream=subjects.COMMANDS_STREAM)  # client-side only
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await psub.fetch(1, timeout=1.0)
        await beta.refused(subjects.spoke_consumer_next(VICTIM))
        # Acknowledging (so deleting) alpha's commands blindly: the ack subject is refused too.
        await beta.nc.publish(f"$JS.ACK.{subjects.COMMANDS_STREAM}.{durable}.1.1.1.0.0", b"+ACK")
        await beta.refused(f"$JS.ACK.{subjects.COMMANDS_STREAM}.{durable}.1.1.1.0.0")
        # A consumer of its own on alpha's subject, or reading the stream directly: refused.
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.pull_subscribe(subjects.commands(VICTIM), durable="thief", stream=subjects.COMMANDS_STREAM)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.get_msg(subjects.COMMANDS_STREAM, seq=1)
        await beta.refused(f"$JS.API.STREAM.MSG.GET.{subjects.COMMANDS_STREAM}")
        info = await hub.js.consumer_info(subjects.COMMANDS_STREAM, durable)
        assert info.num_pending == 1 and info.delivered.consumer_seq == 0  # untouched: nothing delivered to beta
        assert info.config.filter_subject == subjects.commands(VICTIM)
    async with as_spoke(secured_nats, VICTIM) as alpha:  # and alpha still gets its command
        msgs = await (await alpha.nc.jetstream().pull_subscribe_bind(durable=durable, stream=subjects.COMMANDS_STREAM)
                      ).fetch(1, timeout=3)
        assert ScaleCommand.from_bytes(msgs[0].data).command_id == sent.command_id


async def test_another_spokes_replies_cannot_be_read(secured_nats: SecuredNats) -> None:
    victim_inbox = subjects.spoke_inbox_prefix(VICTIM)
    async with as_spoke(secured_nats, ATTACKER) as beta:
        for subject in (f"{victim_inbox}.>", "_INBOX.>", subjects.TELEMETRY_ALL):
            await beta.nc.subscribe(subject)
            await beta.nc.flush()
            await beta.refused(subject, "subscribe")
    # With the shared default prefix a spoke receives no reply at all: its own requests go unanswered.
    async with as_spoke(secured_nats, ATTACKER, inbox="_INBOX") as beta:
        with pytest.raises((nats.errors.TimeoutError, TimeoutError, nats.errors.NoRespondersError)):
            await beta.nc.jetstream().consumer_info(subjects.COMMANDS_STREAM, subjects.spoke_consumer(ATTACKER),
                                                    timeout=1.0)


# --- what only the hub may write --------------------------------------------------------------------


async def test_the_policies_bucket_cannot_be_written_or_read(secured_nats: SecuredNats) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        kv = await hub.policies_bucket()
        await kv.put("llama", b'{"id": "llama"}')
        forged = json.dumps({"id": "llama", "owner": "crd"}).encode()
        # nats-py's KV handle is built client-side; the writes themselves go to $KV.<bucket>.<key>.
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await beta.nc.jetstream().publish(f"$KV.{subjects.POLICIES_BUCKET}.llama", forged, timeout=1.0)
        await beta.refused(f"$KV.{subjects.POLICIES_BUCKET}.llama")
        await beta.nc.publish(f"$KV.{subjects.POLICIES_BUCKET}.evil", forged)
        await beta.refused(f"$KV.{subjects.POLICIES_BUCKET}.evil")
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await beta.nc.jetstream().key_value(subjects.POLICIES_BUCKET)  # looks the bucket's stream up
        await beta.refused(f"$JS.API.STREAM.INFO.KV_{subjects.POLICIES_BUCKET}")
        await beta.nc.subscribe(f"$KV.{subjects.POLICIES_BUCKET}.>")  # a watch
        await beta.refused(f"$KV.{subjects.POLICIES_BUCKET}.>", "subscribe")
        await asyncio.sleep(0.2)
        assert (await kv.get("llama")).value == b'{"id": "llama"}' and (await kv.status()).values == 1


async def test_the_leases_bucket_is_the_hubs_and_a_spoke_cannot_take_a_partition(secured_nats: SecuredNats) -> None:
    """Sharded hubs (issue 11): the hub's credential creates and writes the leases bucket; a spoke's can
    neither forge a lease (owning a partition, or a high fencing epoch) nor watch who holds what."""
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        kv = await hub.leases_bucket()
        await kv.put("p16-3", b'{"owner": "hub-a", "epoch": 7}')
        forged = json.dumps({"owner": "evil", "epoch": 2**62}).encode()
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await beta.nc.jetstream().publish(f"$KV.{subjects.LEASES_BUCKET}.p16-3", forged, timeout=1.0)
        await beta.refused(f"$KV.{subjects.LEASES_BUCKET}.p16-3")
        await beta.nc.subscribe(f"$KV.{subjects.LEASES_BUCKET}.>")
        await beta.refused(f"$KV.{subjects.LEASES_BUCKET}.>", "subscribe")
        await asyncio.sleep(0.2)
        assert (await kv.get("p16-3")).value == b'{"owner": "hub-a", "epoch": 7}'


@pytest.mark.parametrize("attack", ["purge", "delete", "update", "delete_msg"])
async def test_the_decision_history_cannot_be_purged_deleted_or_changed(
    secured_nats: SecuredNats, attack: str
) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        await hub.publish_durable(subjects.decision("d1"), b'{"id": "d1"}', msg_id="decision:d1")
        js = beta.nc.jetstream(timeout=1.0)
        stream = subjects.DECISIONS_STREAM
        attempts: dict[str, tuple[Callable[[], Awaitable[object]], str]] = {
            "purge": (lambda: js.purge_stream(stream), f"$JS.API.STREAM.PURGE.{stream}"),
            "delete": (lambda: js.delete_stream(stream), f"$JS.API.STREAM.DELETE.{stream}"),
            "update": (lambda: js.update_stream(StreamConfig(name=stream, subjects=[subjects.DECISIONS_ALL],
                                                             max_msgs=1)), f"$JS.API.STREAM.UPDATE.{stream}"),
            "delete_msg": (lambda: js.delete_msg(stream, 1), f"$JS.API.STREAM.MSG.DELETE.{stream}"),
        }
        call, subject = attempts[attack]
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await asyncio.wait_for(call(), 2.0)
        await beta.refused(subject)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):  # nor write a decision of its own
            await js.publish(subjects.decision("forged"), b"{}", timeout=1.0)
        await beta.refused(subjects.decision("forged"))
        assert await stream_messages(hub, stream) == 1


async def test_streams_and_consumers_cannot_be_created(secured_nats: SecuredNats) -> None:
    async with hub_bus(secured_nats) as hub, as_spoke(secured_nats, ATTACKER) as beta:
        js = beta.nc.jetstream(timeout=1.0)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.add_stream(StreamConfig(name="SHADOW", subjects=["fleetscale.v1.commands.>"]))
        await beta.refused("$JS.API.STREAM.CREATE.SHADOW")
        # Not even its own consumer: the hub creates spoke-beta, with the protocol's settings.
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.add_consumer(subjects.COMMANDS_STREAM, hub.spoke_consumer_config(ATTACKER))
        await beta.refused(
            f"$JS.API.CONSUMER.CREATE.{subjects.COMMANDS_STREAM}.{subjects.spoke_consumer(ATTACKER)}."
            f"{subjects.commands(ATTACKER)}"
        )
        with pytest.raises(nats.js.errors.NotFoundError):
            await hub.js.stream_info("SHADOW")
        names = [c.name for c in await hub.js.consumers_info(subjects.COMMANDS_STREAM)]
        assert names == []


# --- the same credentials doing their own job -------------------------------------------------------


async def test_a_spoke_does_its_whole_job_with_its_own_credential(secured_nats: SecuredNats) -> None:
    options = BusOptions(url=secured_nats.url, name="alpha", nkey_seed=read_seed(secured_nats.seed_file(VICTIM)),
                         inbox_prefix=subjects.spoke_inbox_prefix(VICTIM))
    async with hub_bus(secured_nats) as hub, Bus.connect(options) as alpha:
        heard: list[str] = []
        sub = await hub.nc.subscribe(subjects.TELEMETRY_ALL, cb=collect(heard, "subject"))
        await hub.nc.flush()
        await alpha.publish(subjects.telemetry(VICTIM), report(VICTIM))
        await eventually(lambda: heard == [subjects.telemetry(VICTIM)])
        await sub.unsubscribe()
        sent = command(VICTIM)
        await hub.publish_command(sent)
        deliveries = alpha.durable(stream=subjects.COMMANDS_STREAM, subject=subjects.commands(VICTIM),
                                   durable=subjects.spoke_consumer(VICTIM), model=ScaleCommand,
                                   on_invalid=lambda e: None, create=False)
        async with asyncio.timeout(10):
            delivery = await anext(deliveries)
        assert delivery.model.command_id == sent.command_id
        await alpha.publish_durable(subjects.results(VICTIM), result_for(sent), msg_id=f"result:{sent.command_id}")
        assert await delivery.ack()
        with suppress(Exception):
            await deliveries.aclose()
        info = await hub.js.consumer_info(subjects.COMMANDS_STREAM, subjects.spoke_consumer(VICTIM))
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert await stream_messages(hub, subjects.RESULTS_STREAM, subjects.results(VICTIM)) == 1


async def test_a_real_hub_and_two_spokes_scale_with_per_spoke_credentials(
    secured_nats: SecuredNats, tmp_path: Path
) -> None:
    world = two_cluster_world(low=0.5, high=80.0, step_at=5.0, step_back=600.0)
    policy = write_policies(tmp_path / "policies.yaml", {
        "id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
        "bounds": {"min_replicas": 1, "max_replicas": 8}, "signals": [{"metric": "queue_per_replica", "target": 2}],
    })
    url = secured_nats.url
    async with (
        running_hub(url, policy_file=policy, nats_nkey_file=secured_nats.seed_file()) as hub,
        driven(world, time_scale=8.0),
        running_spoke(url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0),
                      nats_nkey_file=secured_nats.seed_file("alpha")) as alpha,
        running_spoke(url, "beta", SimulatedBackend(world, "beta", window_s=5.0),
                      nats_nkey_file=secured_nats.seed_file("beta")) as beta,
    ):
        def applied_up() -> list[str]:
            return [c for d in hub.decisions.recent(workload=KEY) if d.action == "scale_up"
                    for c, r in d.results.items() if r.status == "applied"]

        started = time.monotonic()
        # Each spoke hears the hub's heartbeat under its own credential (else it would take the hub
        # for away and hold counts while it decides: autonomy).
        await eventually(lambda: min(alpha.autonomy.last_heartbeat, beta.autonomy.last_heartbeat) > started,
                         timeout_s=10)
        await eventually(applied_up, timeout_s=40)
        assert alpha.executor.applied + beta.executor.applied >= 1
        assert set(hub.state.snapshot().fresh) == {"alpha", "beta"}
        # The hub did the rest of its job under its own credential: the policy in its bucket, the
        # decisions in their stream.
        assert (await hub.policies.kv.get("llama")).value
        assert await stream_messages(hub.bus, subjects.DECISIONS_STREAM) >= 1
