"""The evaluator: on a fixed tick, snapshot -> plan (policy, placement) -> dispatch, and record why.

It owns the order of the pipeline and nothing else: planning is pure (``hub.control.planner``), dispatch
owns the bus. A tick that fails is logged and the next one runs; the loop itself never dies of one bad tick.
Dry-run policies are evaluated and recorded, but no command is sent for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from hub.control.dispatch import Dispatcher
from hub.control.planner import Planner
from hub.decisions.log import Decision, DecisionLog, placement_json
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore
from hub.policy.model import Policy
from hub.state import FleetState, Placement
from shared.messages import ScaleCommand

logger = logging.getLogger(__name__)

LOOP_STALL_S = 1.0
"""A tick that wakes this much later than planned means the whole event loop stood still. A loop
that is merely busy wakes a few tens of milliseconds late; a report interval is a second or more."""


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
        startup_grace_s: float = 0.0,
    ) -> None:
        self.state = state
        self.policies = policies
        self.dispatcher = dispatcher
        self.decisions = decisions
        self.metrics = metrics
        self.tick_s = tick_s
        self.startup_grace_s = startup_grace_s
        # Half a tick for the joint placement solve (its deadline holds: hub.placement.solver).
        self.planner = Planner(prices, time_limit_s=tick_s / 2)

    async def tick(self) -> list[Decision]:
        started = time.perf_counter()
        snapshot = self.state.snapshot()
        for cid, cluster in snapshot.clusters.items():
            self.metrics.report_age.labels(cid).set(snapshot.taken_at - cluster.received_at)
            self.metrics.cluster_stale.labels(cid).set(1 if cluster.stale else 0)
        pending: list[Decision] = []
        commands: list[ScaleCommand] = []
        plans: dict[str, tuple[Policy, Placement]] = {}  # for the per-workload gauges (HubMetrics.record_tick)
        # In a worker thread: HiGHS releases the GIL, so intake and the API keep running while it solves.
        planned = await asyncio.to_thread(self.planner.plan, snapshot, self.policies.all())
        health = self.planner.last_health
        if health is not None:
            for cid in health.newly_lost:
                self.metrics.cluster_losses.labels(cid).inc()
            # Before any new command: what was queued for a lost cluster is re-placed by this tick.
            await self.dispatcher.revoke(health.newly_lost)
        for plan in planned:
            rec, view, before, result = plan.recommendation, plan.view, plan.before, plan.result
            plans[view.key] = (plan.policy, result.placement)
            if not plan.changed:
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
                audit=None if rec.audit is None else rec.audit.to_json(),
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
        self.metrics.record_tick(snapshot, plans, self.planner.prices)
        self.metrics.tick_seconds.observe(time.perf_counter() - started)
        return made

    async def run(self) -> None:
        started = time.monotonic()
        self.state.listen_from(started)
        # A hub that decides before every cluster has reported sees part of the fleet: a workload
        # whose other replicas run on a cluster not yet heard from looks short, and is grown.
        decide_from = started + self.startup_grace_s
        next_at = started
        while True:
            if time.monotonic() >= decide_from:
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
            self._check_stall(time.monotonic() - next_at)

    def _check_stall(self, late_s: float) -> None:
        """A wake-up late by more than ``LOOP_STALL_S``: the event loop did not run, so neither did intake.

        Reports waited unread meanwhile (the process was stopped, its VM frozen, or starved of CPU);
        clusters are not blamed for that silence.
        """
        if late_s > LOOP_STALL_S:
            now = time.monotonic()
            self.state.listen_from(now)
            self.metrics.loop_stalls.inc()
            logger.warning("the hub's event loop stalled for %.1fs; cluster silence is counted again from now",
                           late_s)
