"""CPU cost of the hub's records and views: a decision made, served, journalled, read back; the feed's fleet event.

    PYTHONPATH=$PWD .venv/bin/python bench/record_costs.py

In-process and CPU time (``time.process_time``, best of several runs), so other load on the machine
moves the figures less than wall time would. Per decision: ``make`` (the evaluator builds one),
``serve`` (one SSE frame, the same bytes the API serves), ``journal`` (the bytes stored in JetStream),
``read`` (one stored record read back at start). The fleet event: the overview of ``--workloads``
workloads on 10 clusters, each with a bound policy and a last decision, built and framed as the
live feed does every 2 s while anyone watches.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.decisions.log import DecisionLog  # noqa: E402
from hub.decisions.model import Decision  # noqa: E402
from hub.policy.model import Policy  # noqa: E402
from hub.state import FleetState  # noqa: E402
from hub.web.feed import frame  # noqa: E402
from hub.web.overview import fleet_json  # noqa: E402
from tests.hub.factories import FixedPolicies, node, report, workload  # noqa: E402

AUDIT: dict[str, Any] = {
    "workload": "inference/llama", "policy_id": "p", "policy_revision": 1, "current_replicas": 2, "ready_replicas": 2,
    "inputs": [{"signal": "ttft_p95", "value": 0.8, "target": 0.5, "unit": "s", "partial": False, "missing": {},
                "note": ""}],
    "load": {"tokens_per_s": 2200.0}, "capacity": {}, "correction": {},
    "proposals": [{"source": "ttft_p95", "method": "hpa", "replicas": 4, "detail": {"ratio": 1.6}}],
    "merged": 4, "clamps": [{"stage": "bounds", "before": 4, "after": 4, "reason": "x", "message": ""}],
    "panic": {}, "desired_replicas": 4, "reason": "r",
}


def make(i: int) -> Decision:
    return Decision(workload=f"inference/w{i}", policy_id=f"w{i}", policy_revision=1, mode="enforce",
                    current_replicas=2, desired_replicas=4, reason="ttft_p95=0.8 vs target 0.5",
                    inputs={"ttft_p95": 0.8, "queue_per_replica": 3.0, "partial": False},
                    placement_before={"a/H100": 2}, placement_after={"a/H100": 2, "b/L4": 2}, commands=[f"c{i}"],
                    audit=AUDIT)


def best_us(fn: Callable[[], object], n: int, runs: int) -> float:
    out = []
    for _ in range(runs):
        started = time.process_time()
        fn()
        out.append(time.process_time() - started)
    return min(out) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    n, runs = args.decisions, args.runs
    made = [make(i) for i in range(n)]
    stored = [d.model_dump_json().encode() for d in made]
    print(f"per decision, CPU microseconds (best of {runs} runs of {n}):")
    print(f"  make     {best_us(lambda: [make(i) for i in range(n)], n, runs):6.1f}")
    print(f"  serve    {best_us(lambda: [frame('decision', d) for d in made], n, runs):6.1f}")
    print(f"  journal  {best_us(lambda: [d.model_dump_json().encode() for d in made], n, runs):6.1f}")
    print(f"  read     {best_us(lambda: [Decision.model_validate_json(b) for b in stored], n, runs):6.1f}")

    w = args.workloads
    state = FleetState()
    for c in range(10):
        state.ingest(report(f"c{c}", [workload(f"w{i}", waiting=3, ttft_p95=0.8, gpu_util=0.5)
                                      for i in range(c, w, 10)], [node("H100", 4)]))
    policies = FixedPolicies(*[Policy.model_validate({
        "id": f"w{i}", "targets": {"workloads": [{"namespace": "inference", "name": f"w{i}"}]},
        "signals": [{"metric": "ttft", "target": 0.5}]}) for i in range(w)])
    log = DecisionLog()
    for i in range(w):
        log.add(make(i))
    snap = state.snapshot()
    ms = best_us(lambda: frame("fleet", fleet_json(snap, log, policies)), 1, runs) / 1e3
    print(f"fleet event, {w} workloads on 10 clusters: {ms:.1f} CPU ms (best of {runs})")


if __name__ == "__main__":
    main()
