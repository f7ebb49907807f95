"""Chaos: nats-server and the hub crash again and again in one run while load keeps the hub scaling.

One run, against a real nats-server and the real hub process (``python -m hub``), with simulated
spokes in this process: the server is killed with SIGKILL and started again on the same store
``NATS_KILLS`` times, and the hub is killed with SIGKILL and started again after three of those
cycles, while a sine-shaped load keeps moving the replicas the hub asks for. Then, from the records
each side keeps (what every hub process logged as sent, after JetStream's ack; what every spoke
applied, counted where it scales; the decision journal in JetStream, as a restarted hub reads it):

* 0 lost: every command a hub sent was answered by its spoke (applied, or refused as the protocol
  says: superseded, expired);
* 0 applied twice: no command id reached the cluster twice;
* every applied command is in the decision history.

Each fault waits for the hub to have sent two new commands since the last one (polls with
deadlines, no fixed pauses), so the faults land while commands flow, on a loaded machine too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import nats
import pytest

from shared import subjects
from shared.messages import ResultReason, ResultStatus, ScaleCommand
from shared.natsserver import NatsServer, free_port
from shared.replay import tail
from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.agent import Spoke
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import ROOT, eventually, running_spoke, write_policies
from tests.e2e.world import NS, driven

pytestmark = [pytest.mark.nats, pytest.mark.slow]

NATS_KILLS = 10
HUB_KILLED_AFTER = (3, 6, 9)
"""The nats-server cycles after which the hub is killed and started again too."""
NATS_DOWN_S = (0.1, 0.5, 1.0, 2.5, 0.1, 0.5, 1.0, 2.5, 0.3, 1.5)
"""How long the server stays dead each cycle: some outages outlast the journal's 2 s publish timeout."""
CLUSTERS = ("alpha", "beta")
INTERVAL_S = 1.0
"""The spokes' report interval, and the hub's start-up grace below: the defaults. Together they
give a spoke 6 s after the hub is back on NATS to report again, more than its longest reconnect
back-off (5 s), so no outage here makes a live cluster stale."""


class CountingBackend(SimulatedBackend):
    """The simulated cluster, counting every command it applied, by id: where "applied twice" shows."""

    def __init__(self, world: SimWorld, cluster_id: str) -> None:
        super().__init__(world, cluster_id, window_s=5.0)
        self.applies: Counter[str] = Counter()

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        observed = await super().apply(command)
        self.applies[command.command_id] += 1
        return observed


class HubProcess:
    """The real hub as a process the test kills (SIGKILL) and starts again, on one API port.

    ``sent`` collects, across every process, the ids each one logged as sent: the dispatcher logs a
    command (at debug, with its id as a JSON field) only once JetStream acknowledged it.
    """

    def __init__(self, nats_url: str, policy_file: Path, log_file: Path) -> None:
        self.port = free_port()
        self.env = os.environ | {
            "HUB_NATS_URL": nats_url, "HUB_API_PORT": str(self.port), "HUB_TICK_S": "0.2",
            "HUB_STARTUP_GRACE_S": "3", "HUB_POLICY_FILE": str(policy_file),
            "HUB_LOG_LEVEL": "DEBUG", "HUB_LOG_FORMAT": "json", "HUB_SHUTDOWN_TIMEOUT_S": "5",
            "PYTHONPATH": str(ROOT),
        }
        self.sent: dict[str, str] = {}
        self.losses: list[str] = []
        """The hub's log lines for clusters it took for lost (and whose queued commands it revoked)."""
        self.unconfirmed = 0
        """Commands whose publish NATS did not confirm (they may still be delivered)."""
        self.starts = 0
        self.log: deque[str] = deque(maxlen=200)
        self.log_file = log_file
        """Every line every hub process wrote, for a failure's post-mortem."""
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", cwd=ROOT, env=self.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, limit=1 << 20,
        )
        self.starts += 1
        self._reader = asyncio.create_task(self._read(self.proc))
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(40):
                while not await self._ready(http):
                    assert self.proc.returncode is None, f"the hub exited with {self.proc.returncode}: {self.tail()}"
                    await asyncio.sleep(0.1)

    async def _ready(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(f"{self.api}/readyz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            with self.log_file.open("a") as f:
                f.write(text + "\n")
            with contextlib.suppress(ValueError):
                record = json.loads(text)
                msg = str(record.get("msg", ""))
                if record.get("logger") == "hub.control.dispatch" and msg.startswith("sent "):
                    self.sent[record["command_id"]] = record["cluster"]
                elif " is stale: revoked " in msg:
                    self.losses.append(msg)
                elif record.get("logger") == "hub.control.dispatch" and " not confirmed (" in msg:
                    self.unconfirmed += 1

    async def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing closed; what the process had in memory is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self._reaped()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
        await self._reaped()

    async def _reaped(self) -> None:
        if self.proc is not None:
            await asyncio.wait_for(self.proc.wait(), 15)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)  # every line the process wrote before it died
        self.proc, self._reader = None, None

    def tail(self) -> str:
        return "\n".join(list(self.log)[-30:]) + f"\n(the whole log: {self.log_file})"


WORKLOADS = ("llama", "mistral", "qwen")


def swinging_world(names: tuple[str, ...] = WORKLOADS, *, rate_per_s: float = 12.0, seed: int = 5) -> SimWorld:
    # Sine loads (periods of 40-56 s of world time, 10-14 s of the test's at 4x, out of phase) swing
    # the replicas each workload's policy asks for between two and eight, all run long.
    def load(i: int) -> WorkloadSpec:
        trace = synthetic("sine", duration_s=3600.0, rate_per_s=rate_per_s, period_s=40.0 + 8 * i,
                          amplitude_ratio=0.95, input_tokens=512, output_tokens=64, seed=seed + i)
        return WorkloadSpec(NS, names[i], trace, cold_start_s=2.0,
                            initial_replicas={("alpha", "H100"): 1, ("beta", "L4"): 1})

    return SimWorld(
        (
            ClusterSpec("alpha", tuple(NodeSpec(f"a-{i}", "H100", 8) for i in range(2))),
            ClusterSpec("beta", tuple(NodeSpec(f"b-{i}", "L4", 4) for i in range(4))),
        ),
        tuple(load(i) for i in range(len(names))),
    )


def swinging_policy(tmp_path: Path) -> Path:
    # Both clusters in every placement, so each change of a count is a command to each; no
    # stabilisation and no panic, so the counts follow the load. At most 4 replicas of each
    # workload per cluster: 12 GPUs of the 16 each cluster has, so nothing is refused for room.
    return write_policies(tmp_path / "policies.yaml", {
        "id": "swing", "targets": {"workloads": [{"namespace": NS, "name": n} for n in WORKLOADS]},
        "bounds": {"min_replicas": 2, "max_replicas": 8},
        "signals": [{"metric": "request_rate_per_replica", "target": 3}],
        "behavior": {"scale_down": {"stabilization_window_seconds": 0}}, "panic": {"enabled": False},
        "placement": {"strategy": "static_weights", "weights": {"alpha": 1, "beta": 1}},
    })


async def journalled_commands(nats_url: str) -> set[str]:
    """Every command id a decision in the journal names, read as a starting hub reads it."""
    nc = await nats.connect(nats_url)
    try:
        payloads = await tail(nc.jetstream(), subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=100_000)
    finally:
        await nc.close()
    return {c for data in payloads for c in json.loads(data)["commands"]}


Spokes = dict[str, Spoke]


def unanswered(sent: dict[str, str], spokes: Spokes) -> list[str]:
    """The commands sent that their cluster's spoke has no result for (in its ledger of handled ids)."""
    return [c for c, cluster in sent.items() if spokes[cluster].executor.ledger.result_of(c) is None]


async def progress(hub: HubProcess, timeout_s: float = 30.0) -> float:
    """Wait for the hub to send two new commands; return how long that took."""
    before, started = len(hub.sent), time.monotonic()
    try:
        await eventually(lambda: len(hub.sent) >= before + 2, timeout_s=timeout_s)
    except TimeoutError:
        pytest.fail(f"the hub sent no command for {timeout_s}s; its log ends:\n{hub.tail()}")
    return time.monotonic() - started


async def crash_repeatedly(nats_server: NatsServer, hub: HubProcess, spokes: Spokes) -> int:
    """The faults, each once the hub has sent two new commands; return how many commands were in
    flight (sent, not yet handled by their spoke) when one struck."""
    in_flight = 0
    for cycle, down_s in enumerate(NATS_DOWN_S, start=1):
        await progress(hub)
        in_flight += len(unanswered(hub.sent, spokes))
        nats_server.kill()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(nats_server.start)
        if cycle in HUB_KILLED_AFTER:
            await progress(hub)
            in_flight += len(unanswered(hub.sent, spokes))
            await hub.kill()
            await hub.start()
    await progress(hub)  # commands flow again after the last fault
    return in_flight


async def check_ledgers(hub: HubProcess, spokes: Spokes, backends: Mapping[str, CountingBackend],
                        journal_url: str) -> str:
    """The run's verdict from the records each side keeps, once the hub has stopped sending: 0 lost,
    0 applied twice, every applied command journalled; return a summary line for the run's output."""
    sent = dict(hub.sent)
    # A command fetched but not acknowledged when the server died comes back after the
    # consumer's ack wait (30 s): the deadline covers one.
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: not unanswered(sent, spokes), timeout_s=45)
    lost = unanswered(sent, spokes)
    results = {c: spokes[cid].executor.ledger.result_of(c) for c, cid in sent.items()}
    redelivered = sum(s.executor.duplicates for s in spokes.values())
    journalled = await journalled_commands(journal_url)
    applies = sum((b.applies for b in backends.values()), Counter[str]())
    twice = {c: n for c, n in applies.items() if n > 1}
    unjournalled = sorted(set(applies) - journalled)
    outcomes = Counter(f"{r.status.value}/{r.reason.value}" for r in results.values() if r is not None)
    summary = (f"{len(sent)} commands sent ({hub.unconfirmed} publishes not confirmed), {sum(applies.values())} "
               f"applies of {len(applies)} ids, outcomes {dict(outcomes)}, {redelivered} re-deliveries answered "
               f"from the ledger, {len(twice)} applied twice, {len(lost)} lost, {len(unjournalled)} applied but not "
               "journalled")
    # A revoked command is never answered, by design; none may be revoked here: every spoke lives.
    assert not hub.losses, f"live clusters taken for lost: {hub.losses}"
    assert not lost, f"{len(lost)} commands sent and never answered: {lost[:5]}"
    assert not twice, f"commands applied more than once: {twice}"
    assert not unjournalled, f"{len(unjournalled)} applied commands not in the decision history: {unjournalled[:5]}"
    assert set(sent) <= journalled, "a command went out before its decision was stored"
    refused = {k for k in outcomes if not k.startswith("applied/")}
    assert refused <= {f"rejected/{ResultReason.SUPERSEDED.value}", f"rejected/{ResultReason.EXPIRED.value}"}, outcomes
    assert all(applies[c] == 1 for c, r in results.items() if r is not None and r.status is ResultStatus.APPLIED)
    return summary


@pytest.mark.timeout(240)
async def test_nats_and_hub_crashes_lose_no_command_and_apply_none_twice(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    world = swinging_world()
    backends = {c: CountingBackend(world, c) for c in CLUSTERS}
    hub = HubProcess(nats_server.url, swinging_policy(tmp_path), tmp_path / "hub.log")
    async with (
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", backends["alpha"], interval_s=INTERVAL_S) as alpha,
        running_spoke(nats_server.url, "beta", backends["beta"], interval_s=INTERVAL_S) as beta,
    ):
        spokes = {"alpha": alpha, "beta": beta}
        await hub.start()
        try:
            in_flight = await crash_repeatedly(nats_server, hub, spokes)
        finally:
            await hub.stop()  # gracefully: from here on nothing new is sent
        summary = await check_ledgers(hub, spokes, backends, nats_server.url)
    print(f"\nchaos: {NATS_KILLS} nats-server kills, {len(HUB_KILLED_AFTER)} hub kills ({hub.starts} hub "
          f"processes), {in_flight} commands in flight when a fault struck; {summary}; "
          f"{time.monotonic() - started:.0f}s")
    assert hub.starts == 1 + len(HUB_KILLED_AFTER)  # (and two new commands before each fault: progress)
