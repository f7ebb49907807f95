"""The hub's CPU per report and per workload re-planned, in one process, without NATS.

    PYTHONPATH=. .venv/bin/python bench/evaluation_cost.py --workloads 1000 10000 50000

``bench/hub_throughput.py`` measures the whole pipeline over a real NATS server, which on a shared
2-core machine depends on what else runs. This measures CPU time (``time.process_time``: every
thread of this process), which the rest of the machine disturbs much less, for the two costs that
grow with the fleet:

* intake: decoding one spoke's report (``hub.control.decoder``) of ``workloads / spokes`` workloads
  and ingesting it into the fleet state, when nothing changed and when a tenth of its workloads did;
* evaluation (``hub.control.tick.Evaluator``, the real planner, engine and placement) of a batch of
  changed workloads (``HUB_EVALUATION_BATCH``, 256) and of the whole fleet (the first evaluation).

The reports are the throughput bench's (same workloads, same inventory). The policies are the
throughput bench's in ``dry-run`` mode: decisions are made and recorded but no command is sent, so
nothing here needs a bus (the bus's cost is in the throughput bench).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hub_throughput import telemetry_report  # noqa: E402
from hub.control.changes import moved  # noqa: E402
from hub.control.decoder import Decoder  # noqa: E402
from hub.control.dispatch import Dispatcher  # noqa: E402
from hub.control.tick import Evaluator  # noqa: E402
from hub.decisions.log import DecisionLog  # noqa: E402
from hub.metrics import HubMetrics  # noqa: E402
from hub.policy.model import Policy  # noqa: E402
from hub.state import FleetState  # noqa: E402


class Policies:
    """The policy store's read side over a fixed list (the store itself needs a NATS KV bucket)."""

    def __init__(self, policies: list[Policy]) -> None:
        self._all = policies

    def all(self) -> list[Policy]:
        return self._all


def policy(i: int) -> Policy:
    return Policy.model_validate({
        "id": f"w{i}", "targets": {"workloads": [{"namespace": "bench", "name": f"w{i}"}]}, "mode": "dry-run",
        "bounds": {"min_replicas": 1, "max_replicas": 8}, "signals": [{"metric": "queue_per_replica", "target": 10}],
        "behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 100, "period_seconds": 1}]},
                     "scale_down": {"stabilization_window_seconds": 0,
                                    "policies": [{"type": "Pods", "value": 100, "period_seconds": 1}]}},
        "panic": {"enabled": False}})


def report(spoke: int, workloads: range, busy: list[bool], sequence: int) -> bytes:
    return json.dumps(telemetry_report(spoke, workloads, busy, [1] * len(busy), sequence)).encode()


def cpu(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start


async def measure(total: int, spokes: int, batch: int, seed: int) -> dict[str, float]:
    per = total // spokes
    busy = [False] * total
    # A cluster goes stale only after 1,000 intervals: building 50,000 workloads' reports takes a while.
    state = FleetState(moved=moved, stale_after_intervals=1000)
    decoder = Decoder()
    sequence = [0]

    def ingest(spoke: int) -> None:
        sequence[0] += 1
        decoded = decoder.decode(f"fleetscale.v1.telemetry.spoke-{spoke}",
                                 report(spoke, range(spoke * per, (spoke + 1) * per), busy, sequence[0]))
        decoder.keep(f"spoke-{spoke}", decoded)
        state.ingest(decoded.report)

    for s in range(spokes):
        ingest(s)
    # One spoke's report again, built outside the timing: the same workloads, then a tenth changed.
    same = report(0, range(per), busy, 10**6)
    flipped = random.Random(seed).sample(range(per), max(1, per // 10))
    for i in flipped:
        busy[i] = not busy[i]
    changed = report(0, range(per), busy, 10**6 + 1)
    for i in flipped:
        busy[i] = not busy[i]

    def decode(data: bytes) -> None:
        decoded = decoder.decode("fleetscale.v1.telemetry.spoke-0", data)
        state.ingest(decoded.report)

    intake_same = min(cpu(lambda: decode(same)) for _ in range(5))
    decoder.keep("spoke-0", decoder.decode("fleetscale.v1.telemetry.spoke-0", same))
    intake_changed = cpu(lambda: decode(changed))  # once: a second time it would be unchanged

    metrics, decisions = HubMetrics(), DecisionLog()
    evaluator = Evaluator(
        state=state, policies=Policies([policy(i) for i in range(total)]),  # type: ignore[arg-type]
        dispatcher=Dispatcher(None, state, decisions, metrics, deadline_s=60),  # type: ignore[arg-type]  # dry-run
        decisions=decisions, metrics=metrics, prices={"H100": 12.0}, tick_s=1.0, batch=batch)
    start = time.process_time()
    await evaluator.evaluate(tick=False)  # the first: every workload
    full = time.process_time() - start
    rng = random.Random(seed + 1)
    costs = []
    for _ in range(3):
        for i in rng.sample(range(total), batch):
            busy[i] = not busy[i]
        for s in range(spokes):
            ingest(s)
        start = time.process_time()
        planned = evaluator.metrics.workloads_planned._value.get()
        await evaluator.evaluate(tick=False)
        planned = evaluator.metrics.workloads_planned._value.get() - planned
        costs.append((time.process_time() - start) / max(planned, 1))
        evaluator._backlog.clear()  # the next round measures a fresh batch of changes
    return {
        "workloads": total,
        "spokes": spokes,
        "report_decode_ingest_unchanged_ms": round(intake_same * 1000, 2),
        "report_decode_ingest_tenth_changed_ms": round(intake_changed * 1000, 2),
        "intake_cpu_us_per_workload_unchanged": round(intake_same / per * 1e6, 2),
        "evaluation_cpu_us_per_workload_batch": round(min(costs) * 1e6, 1),
        "batch": batch,
        "first_evaluation_cpu_s": round(full, 2),
        "first_evaluation_cpu_us_per_workload": round(full / total * 1e6, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--spokes", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    print(f"# cores: {os.cpu_count()}, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    for n in args.workloads:
        print(json.dumps(asyncio.run(measure(n, args.spokes, args.batch, args.seed))))


if __name__ == "__main__":
    main()
