"""The evaluator: on a fixed tick, snapshot -> policy -> placement -> dispatch, and record why.

It owns the order of the pipeline and nothing else: policy and placement are pure, dispatch owns the
bus. A tick that fails is logged and the next one runs; the loop itself never dies of one bad tick.
Dry-run policies are evaluated and recorded, but no command is sent for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from hub.decisions import Decision, DecisionLog, placement_json
from hub.dispatch import Dispatcher
from hub.metrics import HubMetrics
from hub.placement import CapacityLedger, place
from hub.policies import PolicyStore
from hub.policy.engine import Engine
from hub.policy.model import Policy
from hub.state import FleetSnapshot, FleetState, Placement, WorkloadView
from shared.messages import ResultStatus, ScaleCommand

logger = logging.getLogger(__name__)


def current_placement(snapshot: FleetSnapshot, view: WorkloadView) -> Placement:
    """Observed placement on fresh clusters, with in-flight or applied intents taking precedence."""
    current = view.placement()
    for cluster_id in view.reports:
        intent = snapshot.live_intent(view.key, cluster_id)
        if intent is None or (intent.result is not None and intent.result.status is not ResultStatus.APPLIED):
            continue
        for key in [k for k in current if k[0] == cluster_id]:
            del current[key]
        for gpu_type, n in intent.replicas_by_gpu_type.items():
            if n:
                current[(cluster_id, gpu_type)] = n
    return current


class Evaluator:
    def __init__(
        self,
        *,
        state: FleetState,
        policies: PolicyStore,
        dispatcher: Dispatcher,
        decisions: DecisionLog,
        metrics: HubMetrics,
        prices: Mapping[str, float],
        tick_s: float,
    ) -> None:
        self.state = state
        self.policies = policies
        self.dispatcher = dispatcher
        self.decisions = decisions
        self.metrics = metrics
        self.prices = prices
        self.tick_s = tick_s
        self.engine = Engine()

    async def tick(self) -> list[Decision]:
        started = time.perf_counter()
        snapshot = self.state.snapshot()
        for cid, cluster in snapshot.clusters.items():
            self.metrics.report_age.labels(cid).set(snapshot.taken_at - cluster.received_at)
            self.metrics.cluster_stale.labels(cid).set(1 if cluster.stale else 0)
        ledger = CapacityLedger(snapshot, self.prices)
        pending: list[Decision] = []
        commands: list[ScaleCommand] = []
        plans: dict[str, tuple[Policy, Placement]] = {}  # for the per-workload gauges (HubMetrics.record_tick)
        for rec in self.engine.evaluate(snapshot, self.policies.all()):
            view = snapshot.workloads[rec.workload_key]
            gpr = view.gpus_per_replica
            before = current_placement(snapshot, view)
            observed = view.placement()

            # Only clusters that run the workload can be asked to scale it (a deployment there may
            # have 0 replicas); growth elsewhere would be placed and then never sent.
            offers = ledger.offers(gpus_per_replica=gpr, held=observed, clusters=view.reports,
                                   allows=rec.policy.allows)
            result = place(rec.desired_replicas, before, offers)
            ledger.consume(observed, result.placement, gpr)
            plans[view.key] = (rec.policy, result.placement)
            if result.placement == before and not rec.changed:
                continue  # nothing to do and nothing new to say
            mine: list[ScaleCommand] = []
            if rec.policy.mode == "enforce":
                mine = self.dispatcher.commands_for(snapshot, view, rec.policy, result.placement, rec.reason)
                if not mine:
                    continue  # already asked for; waiting for the clusters to catch up
            else:
                last = self.decisions.latest.get(view.key)
                if last is not None and last.mode != "enforce" and last.desired_replicas == rec.desired_replicas \
                        and last.placement_after == placement_json(result.placement):
                    continue  # dry-run: the same recommendation as last tick is not news
            commands += mine
            notes = list(result.notes)
            if view.stale_clusters:
                notes.insert(0, f"stale clusters excluded, their share re-placed: {', '.join(view.stale_clusters)}")
            pending.append(Decision(
                workload=view.key,
                policy_id=rec.policy.id,
                policy_revision=rec.policy.revision,
                mode=rec.policy.mode,
                current_replicas=rec.current_replicas,
                desired_replicas=rec.desired_replicas,
                reason=rec.reason,
                inputs=dict(rec.inputs),
                placement_before=placement_json(before),
                placement_after=placement_json(result.placement),
                unplaced=result.unplaced,
                notes=notes,
                commands=[c.command_id for c in mine],
            ))
        sent = set(await self.dispatcher.send(commands)) if commands else set()
        made = []
        for decision in pending:
            decision.commands = [c for c in decision.commands if c in sent]
            if decision.mode == "enforce" and not decision.commands:
                continue  # nothing went out (bus down): decided again next tick
            self.decisions.add(decision)
            self.metrics.count_decision(decision)
            made.append(decision)
        self.metrics.record_tick(snapshot, plans, self.prices)
        self.metrics.tick_seconds.observe(time.perf_counter() - started)
        return made

    async def run(self) -> None:
        next_at = time.monotonic()
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("evaluation tick failed; the next tick will run as usual")
            next_at += self.tick_s
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()  # overran: do not try to catch up with a burst of ticks
                delay = 0
            await asyncio.sleep(delay)
