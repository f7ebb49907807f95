"""The advisor agent: for each workload whose policy has an advisor, ask every ``interval_s``.

It reads the hub's latest tick (the snapshot and the plans the metrics keep, ``HubMetrics.latest_tick``)
and the decision log; it writes only its own records (``latest``): the summary sent, the answer,
the parsed advice or the error. The evaluator hands ``advice`` (each workload's latest answer, if
usable, with its age) to the engine, whose advice stage applies it through the guard rails
(``hub.policy.advice``); the API and the page show ``latest``. An answer that failed (timeout,
error, unusable) leaves no advice: the engine's count stands until the next usable one. Questions
run concurrently up to a bound, each under the policy's timeout; every outcome is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter

from hub.advisor.answer import Advice, AnswerError, read_answer
from hub.advisor.client import AdvisorUnavailable, chat, read_api_key
from hub.advisor.summary import SYSTEM_PROMPT, summarise
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.advice import WorkloadAdvice
from hub.policy.model import Policy
from hub.state import FleetSnapshot, Placement

logger = logging.getLogger(__name__)

OUTCOMES = ("ok", "invalid", "unavailable")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One question and its answer, as the audit keeps it."""

    workload: str
    policy_id: str
    mode: str
    at: datetime
    summary: dict[str, Any]
    answer: str | None
    advice: Advice | None
    error: str | None
    latency_s: float

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "policy_id": self.policy_id, "mode": self.mode,
                "at": self.at.isoformat(), "summary": self.summary, "answer": self.answer,
                "advice": None if self.advice is None else self.advice.model_dump(mode="json"),
                "error": self.error, "latency_s": round(self.latency_s, 3)}


@dataclass
class Advisor:
    metrics: HubMetrics
    decisions: DecisionLog
    concurrency: int = 4
    clock: Callable[[], float] = time.monotonic
    latest: dict[str, Exchange] = field(default_factory=dict)
    _asked_at: dict[str, float] = field(default_factory=dict)
    _received_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "fleetscale_hub_advisor_requests",
            "LLM advisor questions by outcome (ok, invalid: an unusable answer, unavailable: timeout or error); "
            "the engine's count stands unless ok",
            ["outcome"], registry=self.metrics.registry,
        )
        for outcome in OUTCOMES:
            self.requests.labels(outcome)

    def due(self, plans: dict[str, tuple[Policy, Placement]]) -> list[tuple[str, Policy, Placement]]:
        now = self.clock()
        out = []
        # NB: filtered, then sorted: sorting every plan each second cost a third of the hub's CPU
        # at 10,000 workloads, none of them advised.
        for key, (policy, placement) in plans.items():
            spec = policy.advisor
            if spec.mode == "off":
                continue
            if now - self._asked_at.get(key, float("-inf")) >= spec.interval_s:
                out.append((key, policy, placement))
        out.sort(key=lambda due: due[0])
        return out

    def advice(self, now: float) -> dict[str, WorkloadAdvice]:
        """Each workload's latest answer, where it was usable, with its age at ``now`` (this clock).

        Old advice is handed in too: the engine ignores it past two intervals and says so (counted
        as ``stale``), rather than it vanishing unexplained."""
        out = {}
        for key, exchange in self.latest.items():
            at = self._received_at.get(key)
            if exchange.advice is None or at is None:
                continue
            a = exchange.advice
            out[key] = WorkloadAdvice(
                replicas=a.replicas, age_s=max(0.0, now - at), policy_id=exchange.policy_id,
                answered_at=exchange.at.isoformat(), confidence=a.confidence, rationale=a.rationale,
                summary=exchange.summary, answer=exchange.answer)
        return out

    async def ask(
        self, session: aiohttp.ClientSession, key: str, policy: Policy, snapshot: FleetSnapshot,
        placement: Placement, prices: dict[str, float],
    ) -> Exchange:
        spec = policy.advisor
        self._asked_at[key] = self.clock()
        summary = summarise(key, policy, snapshot, placement, self.decisions.recent(workload=key, limit=5), prices,
                            sum(placement.values()))
        started = self.clock()
        answer = advice = error = None
        try:
            assert spec.endpoint is not None  # the policy model requires it unless mode is off
            answer = await chat(session, spec.endpoint, spec.model, SYSTEM_PROMPT,
                                orjson.dumps(summary).decode(), timeout_s=spec.timeout_s,
                                api_key=read_api_key(spec.api_key_secret))
            advice = read_answer(answer)
            outcome = "ok"
        except AnswerError as e:
            error, outcome = f"invalid answer: {e}", "invalid"
        except AdvisorUnavailable as e:
            error, outcome = f"unavailable: {e}", "unavailable"
        self.requests.labels(outcome).inc()
        exchange = Exchange(key, policy.id, spec.mode, datetime.now(UTC), summary, answer, advice, error,
                            self.clock() - started)
        self.latest[key] = exchange
        self._received_at[key] = self.clock()
        if error:
            logger.info("advisor for %s: %s; the engine's count stands", key, error)
        return exchange

    def _start_due(self, session: aiohttp.ClientSession, pending: set[asyncio.Task[Exchange]],
                   bounded: Callable[[Any], Any]) -> None:
        """Start the questions that are due. NB: the fleet snapshot is taken only when one is: with
        no advisor configured this costs a look at the plans, not a whole-fleet snapshot a second."""
        latest = self.metrics.latest_plans()
        if latest is None:
            return
        plans, prices = latest
        busy = {t.get_name() for t in pending}
        due = [(key, policy, placement) for key, policy, placement in self.due(plans) if key not in busy]
        if not due:
            return
        tick = self.metrics.latest_tick()
        if tick is None:
            return
        snapshot = tick[0]
        for key, policy, placement in due:
            task = asyncio.create_task(bounded(self.ask(session, key, policy, snapshot, placement, prices)), name=key)
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def run(self, *, period_s: float = 1.0) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task[Exchange]] = set()

        async def bounded(coro: Any) -> Exchange:
            async with gate:
                return await coro

        async with aiohttp.ClientSession() as session:
            try:
                while True:
                    self._start_due(session, pending, bounded)
                    await asyncio.sleep(period_s)
            finally:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
