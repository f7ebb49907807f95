from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared import subjects
from shared.bus import Bus, BusOptions
from shared.messages import CommandResult, Fence, ResultReason, ResultStatus, ScaleCommand, WorkloadRef
from spoke.backend import PermanentApplyError, TemporaryApplyError
from spoke.executor import Executor, RetryLater
from spoke.metrics import SpokeMetrics
from tests.spoke.recording_backend import RecordingBackend

REF = WorkloadRef(namespace="inference", name="llama")


def command(cluster: str, replicas: int = 3, *, issued: datetime | None = None, deadline_s: float = 60,
            command_id: str | None = None) -> ScaleCommand:
    issued = issued or datetime.now(UTC)
    extra = {"command_id": command_id} if command_id else {}
    return ScaleCommand(cluster_id=cluster, workload=REF, replicas_by_gpu_type={"H100": replicas}, policy_id="p",
                        issued_at=issued, deadline=issued + timedelta(seconds=deadline_s), **extra)


async def test_a_command_id_seen_twice_is_applied_once() -> None:
    backend = RecordingBackend()
    ex = Executor(None, backend, "c1", SpokeMetrics())  # type: ignore[arg-type]
    c = command("c1")
    first = await ex.handle(c)
    second = await ex.handle(c)
    assert len(backend.applied) == 1
    assert first == second and first is not None and first.status is ResultStatus.APPLIED


async def test_expired_command_is_dropped_and_says_why() -> None:
    backend = RecordingBackend()
    ex = Executor(None, backend, "c1", SpokeMetrics())  # type: ignore[arg-type]
    c = command("c1", deadline_s=5)
    out = await ex.handle(c, now=c.issued_at + timedelta(seconds=6))
    assert out is not None and out.reason is ResultReason.EXPIRED and out.status is ResultStatus.REJECTED
    assert backend.applied == []


async def test_older_command_cannot_undo_a_newer_one() -> None:
    backend = RecordingBackend()
    ex = Executor(None, backend, "c1", SpokeMetrics())  # type: ignore[arg-type]
    t = datetime.now(UTC)
    newer, older = command("c1", 5, issued=t), command("c1", 2, issued=t - timedelta(seconds=3))
    assert (await ex.handle(newer)).status is ResultStatus.APPLIED  # type: ignore[union-attr]
    out = await ex.handle(older)
    assert out is not None and out.reason is ResultReason.SUPERSEDED and newer.command_id in (out.error or "")
    assert backend.replicas == {"H100": 5}


async def test_a_command_fenced_off_by_a_newer_lease_epoch_is_refused_and_counted() -> None:
    """A deposed hub's late command (a lower epoch of the same partition lease) is refused, even when
    its issue time is the newest: the hubs' clocks do not decide who owns a workload."""
    backend = RecordingBackend()
    metrics = SpokeMetrics()
    ex = Executor(None, backend, "c1", metrics)  # type: ignore[arg-type]
    t = datetime.now(UTC)
    new_owner = command("c1", 5, issued=t).model_copy(update={"fence": Fence(lease="p16-3", epoch=7)})
    deposed = command("c1", 2, issued=t + timedelta(seconds=2)).model_copy(
        update={"fence": Fence(lease="p16-3", epoch=6)})
    other_lease = command("c1", 4, issued=t + timedelta(seconds=3)).model_copy(
        update={"fence": Fence(lease="p16-4", epoch=1)})
    assert (await ex.handle(new_owner)).status is ResultStatus.APPLIED  # type: ignore[union-attr]
    out = await ex.handle(deposed)
    assert isinstance(out, CommandResult)
    assert (out.status, out.reason) == (ResultStatus.REJECTED, ResultReason.SUPERSEDED)
    assert "fenced" in (out.error or "") and "epoch 7" in (out.error or "")
    assert metrics.registry.get_sample_value("fleetscale_spoke_commands_fenced_total") == 1
    assert backend.replicas == {"H100": 5}
    # Another lease's epochs are its own; the same epoch again (the owner's next command) passes.
    assert (await ex.handle(other_lease)).status is ResultStatus.APPLIED  # type: ignore[union-attr]
    again = command("c1", 6, issued=t + timedelta(seconds=4)).model_copy(
        update={"fence": Fence(lease="p16-3", epoch=7)})
    assert (await ex.handle(again)).status is ResultStatus.APPLIED  # type: ignore[union-attr]
    assert metrics.registry.get_sample_value("fleetscale_spoke_commands_fenced_total") == 1


async def test_permanent_failure_is_reported_and_temporary_one_is_retried() -> None:
    conflict = PermanentApplyError(ResultReason.CONFLICT, "HorizontalPodAutoscaler inference/llama owns it")
    out = await Executor(None, RecordingBackend(fail_with=conflict), "c1", SpokeMetrics()).handle(command("c1"))  # type: ignore[arg-type]
    assert out is not None and out.status is ResultStatus.REJECTED and "HorizontalPodAutoscaler" in (out.error or "")
    throttled = TemporaryApplyError(ResultReason.BACKEND_ERROR, "429", delay_s=7.0)
    ex = Executor(None, RecordingBackend(fail_with=throttled), "c1", SpokeMetrics())  # type: ignore[arg-type]
    assert await ex.handle(command("c1")) == RetryLater(7.0)  # nak: JetStream re-delivers after Retry-After


@pytest.mark.nats
async def test_over_jetstream_the_result_is_published_before_the_ack(nats_url: str) -> None:
    async with Bus.connect(BusOptions(url=nats_url)) as bus:
        await bus.ensure_topology()
        backend = RecordingBackend()
        metrics = SpokeMetrics()
        ex = Executor(bus, backend, "exec-js", metrics)
        c = command("exec-js", 4)
        await bus.publish_command(c)
        await bus.publish_command(c)  # same id: JetStream de-duplicates
        await bus.nc.publish(subjects.commands("exec-js"), b"{not json")
        await bus.js.publish(subjects.commands("exec-js"), b'{"type": "scale"}')
        # A barrier rather than a sleep: the consumer delivers in stream order, so once this last
        # command's result is in, everything published before it has been handled.
        last = command("exec-js", 5)
        await bus.publish_command(last)
        results: list[CommandResult] = []

        async def collect() -> None:
            async for d in bus.durable(stream=subjects.RESULTS_STREAM, subject=subjects.results("exec-js"),
                                       durable="test-exec-js", model=CommandResult, on_invalid=lambda e: None):
                results.append(d.model)
                await d.ack()

        runner = asyncio.create_task(ex.run())
        collector = asyncio.create_task(collect())
        try:
            async with asyncio.timeout(10):
                while last.command_id not in [r.command_id for r in results]:
                    await asyncio.sleep(0.05)
        finally:
            runner.cancel()
            collector.cancel()
            await asyncio.gather(runner, collector, return_exceptions=True)
        assert backend.applied == [c, last]
        assert [r.command_id for r in results] == [c.command_id, last.command_id]
        assert results[0].observed_replicas_by_gpu_type == {"H100": 4}
        assert metrics.malformed._value.get() == 2  # counted, terminated, never re-delivered
        info = await bus.js.consumer_info(subjects.COMMANDS_STREAM, subjects.spoke_consumer("exec-js"))
        assert info.num_ack_pending == 0 and info.num_pending == 0


@pytest.mark.nats
async def test_over_jetstream_a_deposed_hubs_late_command_is_refused(nats_url: str) -> None:
    """The fencing path end to end on a real server: the new owner's command (epoch 9) is queued first,
    the deposed owner's (epoch 8, issued later by its clock) after it; the spoke applies only the first,
    and its result says why the second was refused."""
    cluster = "exec-fence"
    async with Bus.connect(BusOptions(url=nats_url)) as bus:
        await bus.ensure_topology()
        backend = RecordingBackend()
        metrics = SpokeMetrics()
        ex = Executor(bus, backend, cluster, metrics)
        t = datetime.now(UTC)
        new_owner = command(cluster, 5, issued=t).model_copy(update={"fence": Fence(lease="p16-9", epoch=9)})
        deposed = command(cluster, 1, issued=t + timedelta(seconds=1)).model_copy(
            update={"fence": Fence(lease="p16-9", epoch=8)})
        await bus.publish_command(new_owner)
        await bus.publish_command(deposed)
        results: dict[str, CommandResult] = {}

        async def collect() -> None:
            async for d in bus.durable(stream=subjects.RESULTS_STREAM, subject=subjects.results(cluster),
                                       durable="test-exec-fence", model=CommandResult, on_invalid=lambda e: None):
                results[d.model.command_id] = d.model
                await d.ack()

        runner = asyncio.create_task(ex.run())
        collector = asyncio.create_task(collect())
        try:
            async with asyncio.timeout(10):
                while deposed.command_id not in results:
                    await asyncio.sleep(0.05)
        finally:
            runner.cancel()
            collector.cancel()
            await asyncio.gather(runner, collector, return_exceptions=True)
        assert backend.applied == [new_owner]
        refused = results[deposed.command_id]
        assert (refused.status, refused.reason) == (ResultStatus.REJECTED, ResultReason.SUPERSEDED)
        assert "fenced" in (refused.error or "")
        assert metrics.registry.get_sample_value("fleetscale_spoke_commands_fenced_total") == 1
