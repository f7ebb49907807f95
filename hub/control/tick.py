"""The evaluator: on a fixed tick, snapshot -> plan (policy, placement) -> dispatch, and record why.

It owns the order of the pipeline and nothing else: planning is pure (``hub.control.planner``), dispatch
owns the bus. A tick that fails is logged and counted, and the next one runs: the loop itself never
dies of one bad tick (a transient error must not stop the fleet's autoscaling). But it does not fail
quietly either: after ``unready_after_failed_ticks`` failures in a row, ``problems()`` says so and the
hub's ``/readyz`` fails with it, until a tick succeeds again.
Dry-run policies are evaluated and recorded, but no command is sent for them. A decision that sends
commands is journalled durably first (``DecisionJournal.store``); only then do its commands go out, so
every applied command is in the decision history even if the hub dies in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from hub.control.dispatch import Dispatcher
from hub.control.planner import Planner
from hub.decisions.journal import DecisionJournal
from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision, placement_json
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore
from hub.policy.model import Policy
from hub.state import FleetState, Placement
from shared.messages import ScaleCommand

logger = logging.getLogger(__name__)


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
        unready_after_failed_ticks: int = 3,
        journal: DecisionJournal | None = None,
    ) -> None:
        self.state = state
        self.policies = policies
        self.dispatcher = dispatcher
        self.decisions = decisions
        self.metrics = metrics
        self.tick_s = tick_s
        self.journal = journal
        self.decisions_added: set[str] = set()
        """None only in tests without a bus: then commands go out without waiting for the history."""
        # Half a tick for the joint placement solve (its deadline holds: hub.placement.solver).
        self.planner = Planner(prices, time_limit_s=tick_s / 2)
        self.unready_after_failed_ticks = unready_after_failed_ticks
        self.failed_in_a_row = 0
        self.last_error: str | None = None

    def problems(self) -> dict[str, str]:
        """What keeps the evaluator from being ready: empty while its ticks succeed."""
        if self.failed_in_a_row < self.unready_after_failed_ticks:
            return {}
        return {"evaluator": f"{self.failed_in_a_row} evaluation ticks in a row failed; the last: {self.last_error}"}

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
        for plan in await asyncio.to_thread(self.planner.plan, snapshot, self.policies.all()):
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
            notes = list(result.notes) + [n for c in mine if (n := self.dispatcher.notes.pop(c.command_id, None))]
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
        commands = await self._journal_first(pending, commands)
        sent = set(await self.dispatcher.send(commands)) if commands else set()
        made = []
        for draft in pending:
            planned = draft.commands
            decision = draft.with_commands(c for c in planned if c in sent)
            shown = decision.id in self.decisions_added
            if decision.mode == "enforce" and not decision.commands:
                if shown:
                    # Journalled and shown already: its stored revision must not claim commands.
                    decision = decision.model_copy(update={"notes": [
                        *decision.notes, "no command went out (bus unavailable); decided again next tick"]})
                    self.decisions.add(decision)
                continue  # nothing went out (bus down): decided again next tick
            if not shown or decision.commands != planned:
                self.decisions.add(decision)  # (again, when some of its commands did not go out)
            self.metrics.count_decision(decision)
            made.append(decision)
        self.decisions_added.clear()
        self.metrics.record_tick(snapshot, plans, self.planner.prices)
        self.metrics.tick_seconds.observe(time.perf_counter() - started)
        return made

    def _failed(self, e: Exception) -> None:
        self.failed_in_a_row += 1
        self.last_error = f"{type(e).__name__}: {e}"
        self.metrics.tick_failures.inc()
        n = self.failed_in_a_row
        # NB: the traceback on the 1st, the Nth (not ready from now on) and every 100th failure in a
        # row; a broken planner fails every tick, once a second.
        if n in (1, self.unready_after_failed_ticks) or n % 100 == 0:
            logger.exception("evaluation tick failed (%d in a row; not ready from %d); the next tick runs as usual",
                             n, self.unready_after_failed_ticks)

    def _succeeded(self) -> None:
        if self.failed_in_a_row:
            logger.info("evaluation tick succeeded after %d failed ones", self.failed_in_a_row)
        self.failed_in_a_row = 0
        self.last_error = None

    async def _journal_first(self, pending: list[Decision], commands: list[ScaleCommand]) -> list[ScaleCommand]:
        """Store the decisions that send commands, then list only the commands of those stored.

        A stored decision is added to the log before its commands go out, so a result that comes
        back at once finds it.
        """
        deciding = [d for d in pending if d.commands]
        if self.journal is None or not deciding:
            return commands
        stored = await self.journal.store(deciding)
        for decision in deciding:
            if decision.id in stored:
                self.decisions.add(decision)
                self.decisions_added.add(decision.id)
        ok = {c for d in deciding if d.id in stored for c in d.commands}
        for c in commands:
            if c.command_id not in ok:
                self.dispatcher.withdraw(c.command_id)
        return [c for c in commands if c.command_id in ok]

    async def run(self) -> None:
        next_at = time.monotonic()
        while True:
            try:
                await self.tick()
            except Exception as e:
                self._failed(e)
            else:
                self._succeeded()
            next_at += self.tick_s
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()  # overran: do not try to catch up with a burst of ticks
                delay = 0
            await asyncio.sleep(delay)
