"""The evaluator: snapshot -> plan (policy, placement) -> dispatch, on events, and record why.

It owns the order of the pipeline and nothing else: planning is pure (``hub.control.planner``), dispatch
owns the bus. An evaluation that fails is logged and counted, and the next one runs: the loop never dies
of one. But it does not fail quietly either: after ``unready_after_failed_ticks`` failures in a row,
``problems()`` says so and the hub's ``/readyz`` fails with it, until an evaluation succeeds again.
Dry-run policies are evaluated and recorded, but no command is sent for them. A decision of an
``approval`` policy that would send commands is proposed to ``hub.control.approvals`` instead, and
waits there for an operator (docs/approvals.md); a failover re-placement within what the workload
ran before the loss is sent at once unless the policy says otherwise. A decision that sends
commands is journalled durably first (``DecisionJournal.store``); only then do its commands go out, so
every applied command is in the decision history even if the hub dies in between. A command whose
publish NATS did not confirm stays named in its decision: it may still be delivered.

**Event-driven.** A workload is re-planned when its inputs change: a report that moved it
(``hub.control.changes``, marked by ``FleetState.ingest``) or a command result, evaluated a few
milliseconds after it arrives (``settle_s`` gathers a burst). The tick (``tick_s``) is an upper
bound, not the loop: each tick re-plans the *hot* workloads, those a timer may move without any new
input (the engine's answer differs from its signals' proposal: a stabilisation window, a rate
limit, panic, an idle or activation hold; or a command that did not go out; or replicas left
unplaced), and a slice of all workloads, so every one is re-planned at least every ``sweep_s``.
A new answer from the LLM advisor re-plans its workload too (``advice``: the engine's advice stage).
An event-driven evaluation re-plans at most ``batch`` workloads, the oldest changes first, then the
hot ones and the sweep's share; the rest wait in a backlog for the evaluations that follow at once.
A policy change re-plans the workloads it names (everything, for a label selector), and
everything is re-planned together while any cluster is anything but
healthy (new, stale, recovering, or a failover baseline still held): failover moves shares between
workloads' clusters at once. Placement is solved jointly for the workloads planned together; the
others' replicas are already in the free GPUs the clusters report.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.control import budgets as budgeting
from hub.control.approvals import Approvals
from hub.control.dispatch import Dispatcher
from hub.control.planner import Plan, Planner
from hub.control.resizing import Resizer
from hub.control.shard import Shard
from hub.decisions.journal import DecisionJournal
from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision, placement_json
from hub.metrics import HubMetrics
from hub.placement import FleetHealth
from hub.policies.store import BudgetStore, PolicyStore
from hub.policy.advice import WorkloadAdvice
from hub.policy.budget import Budget
from hub.policy.engine import Recommendation
from hub.policy.model import Policy
from hub.policy.vertical import ResourceHistory
from hub.state import FleetSnapshot, FleetState, Placement
from shared.messages import ScaleCommand

logger = logging.getLogger(__name__)

NO_CHANGE = "the newer recommendation needs no change"
FAILOVER_NOTE = "failover: sent without waiting for approval (approval.failover: immediate; docs/approvals.md)"

LOOP_STALL_S = 1.0
"""A tick that wakes this much later than planned means the whole event loop stood still. A loop
that is merely busy wakes a few tens of milliseconds late; a report interval is a second or more."""


def held(rec: Recommendation) -> bool:
    """The engine answered other than its signals' proposal within the policy's bounds: something
    with a clock (a stabilisation window, a rate limit, panic, an idle or activation hold) decided,
    and may decide otherwise later with no new input."""
    if rec.proposal is None:
        return True
    bounds = rec.policy.bounds
    bounded = max(bounds.min_replicas, rec.proposal)
    if bounds.max_replicas is not None:
        bounded = min(bounded, bounds.max_replicas)
    return rec.desired_replicas != bounded


def failover_now(plan: Plan, health: FleetHealth | None) -> bool:
    """An approval policy's decision that only re-places what a lost cluster ran: sent at once.

    Only with ``approval.failover: immediate``, while one of the workload's clusters is lost, and when
    the decision places no more replicas than the workload ran before the loss (its failover
    baseline): those replicas were applied already. Growth beyond that waits like any decision."""
    if plan.policy.approval.failover != "immediate" or not plan.view.stale_clusters or health is None:
        return False
    baseline = health.baselines.get(plan.view.key)
    return baseline is not None and 0 < sum(plan.result.placement.values()) <= sum(baseline.values())


def policy_targets(before: list[Policy] | None, after: list[Policy]) -> set[str] | None:
    """The workloads that policies added, changed or removed between two lists name; ``None`` when
    that is not known from names alone (the first list, or a label selector among the changes)."""
    if before is None:
        return None
    old, new = {p.id: p for p in before}, {p.id: p for p in after}
    out: set[str] = set()
    for pid in old.keys() | new.keys():
        a, b = old.get(pid), new.get(pid)
        if a is b or (a is not None and b is not None and a.revision == b.revision and a == b):
            continue
        for p in (a, b):
            if p is None:
                continue
            if p.targets.selector is not None:
                return None
            out.update(w.key for w in p.targets.workloads)
    return out


_NO_BUDGETS: list[Budget] = []


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
        sweep_s: float = 10.0,
        settle_s: float = 0.005,
        batch: int = 256,
        unready_after_failed_ticks: int = 3,
        journal: DecisionJournal | None = None,
        listening: Callable[[], bool] | None = None,
        advice: Callable[[float], Mapping[str, WorkloadAdvice]] | None = None,
        budgets: BudgetStore | None = None,
        resources: ResourceHistory | None = None,
        resizer: Resizer | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.state = state
        self.shard = shard or Shard()
        """Which workloads this hub decides (all, unless sharded: ``hub.control.shard``)."""
        self._shard_seen = self.shard.version
        self.policies = policies
        self.dispatcher = dispatcher
        self.decisions = decisions
        self.metrics = metrics
        self.tick_s = tick_s
        self.startup_grace_s = startup_grace_s
        self.sweep_s = sweep_s
        self.settle_s = settle_s
        self.batch = batch
        """The most workloads one event-driven evaluation re-plans (a full evaluation plans all)."""
        self._backlog: dict[str, None] = {}
        """Workloads due for a change and not yet re-planned, oldest change first."""
        self.journal = journal
        """None only in tests without a bus: then commands go out without waiting for the history."""
        self.listening = listening
        """Whether the hub can hear reports now (its NATS connection is up); None: always."""
        self.advice = advice
        self.budgets = budgets
        """Hard caps over the workloads each selects (docs/budgets.md); None: no budget store."""
        self._budgets_seen: list[Budget] | None = None
        self.resources = resources
        """Vertical recommendations, recorded in each decision's audit (``audit.resources``)."""
        self.resizer = resizer
        """Applies them for policies with ``resources.apply`` (``hub.control.resizing``); None: never."""
        """The LLM advisor's latest answer per workload at a monotonic time (``Advisor.advice``); None: no advisor."""
        self._advice_at: dict[str, str] = {}
        """Workload -> the answer the engine last saw (a new one re-plans the workload)."""
        self.decisions_added: set[str] = set()
        self.unready_after_failed_ticks = unready_after_failed_ticks
        self.failed_in_a_row = 0
        self.last_error: str | None = None
        # Half a tick for the joint placement solve (its deadline holds: hub.placement.solver).
        self.planner = Planner(prices, time_limit_s=tick_s / 2)
        self.evaluations = 0
        self._wake = asyncio.Event()
        state.on_change = self._wake.set
        self._hot: set[str] = set()
        self._sweep: list[str] = []
        self._policies_seen: list[Policy] | None = None
        self._plans: dict[str, tuple[Policy, Placement]] = {}
        """The latest plan of every workload, for the per-workload gauges (HubMetrics.record_tick)."""
        self.approvals = Approvals(state=state, policies=policies, dispatcher=dispatcher, decisions=decisions,
                                   metrics=metrics, journal=journal)
        """Decisions of approval-mode policies waiting for an operator (the API approves them)."""

    def wake(self) -> None:
        """Evaluate now rather than on the next tick (the partitions this hub holds changed)."""
        self._wake.set()

    def problems(self) -> dict[str, str]:
        """What keeps the evaluator from being ready: empty while its evaluations succeed."""
        if self.failed_in_a_row < self.unready_after_failed_ticks:
            return {}
        return {"evaluator": f"{self.failed_in_a_row} evaluation ticks in a row failed; the last: {self.last_error}"}

    def _due(self, tick: bool, policies: list[Policy], now: float) -> set[str] | None:
        """The workloads to re-plan now, at most ``batch`` of them; ``None`` for all of them.

        The oldest changes come first; with room left on a tick, the hot workloads, then the sweep's
        share. What does not fit waits for the next evaluation, which follows at once: a backlog
        (10,000 first reports, a policy file naming every workload) is planned a batch at a time,
        so no single evaluation holds the answers to newer changes for seconds.
        """
        self._backlog.update(dict.fromkeys(self.state.take_changed()))
        if policies is not self._policies_seen:
            touched = policy_targets(self._policies_seen, policies)
            self._policies_seen = policies
            if touched is None:
                return None
            self._backlog.update(dict.fromkeys(sorted(touched)))
        # The same instant as the evaluation's snapshot: a cluster that goes stale in between would
        # otherwise be lost in a partial plan, and get baselines for part of its workloads only.
        if not self.planner.failover.quiet(self.state.snapshot(now=now, only=())):
            return None
        due = set(itertools.islice(self._backlog, self.batch))
        for key in due:
            del self._backlog[key]
        if not tick:
            return due
        due.update(itertools.islice(self._hot - due, max(0, self.batch - len(due))))
        if not self._sweep:
            keys = {k for k in self.state.workload_keys() if self.shard.owns(k)}
            self._sweep = sorted(keys, reverse=True)
            self.planner.forget(keys)
            self._plans = {k: v for k, v in self._plans.items() if k in keys}
            self.metrics.forget_workloads(set(keys))
            self._advice_at = {k: v for k, v in self._advice_at.items() if k in keys}
        share = max(1, -(-len(self._sweep) * self.tick_s // self.sweep_s))
        room = max(0, self.batch - len(due))  # the sweep's share waits while changes fill the batches
        due.update(self._sweep.pop() for _ in range(min(int(share), room, len(self._sweep))))
        return due

    def _with_budget_mates(self, keys: set[str], budgets: list[Budget], now: float) -> set[str]:
        """``keys`` and every workload under a budget that covers one of them: a budget's caps are placed
        over all of its workloads at once, never over part of them."""
        views = list(self.state.snapshot(now=now).workloads.values())
        out = set(keys)
        for b in budgets:
            members = budgeting.covered(b, views)
            if members & keys:
                out |= members
        return out

    async def tick(self) -> list[Decision]:
        """Re-plan every workload now."""
        return await self.evaluate(tick=True, full=True)

    async def evaluate(self, *, tick: bool, full: bool = False) -> list[Decision]:
        """Re-plan the workloads that are due (every one with ``full``); return the decisions made.

        NB: an approval (``hub.control.approvals``) is sent under ``approvals.lock``; the evaluation
        takes it for its bookkeeping and its decisions, not while the planner solves, or an operator's
        approval would wait for a whole solve (seconds at 10,000 workloads)."""
        started = time.perf_counter()
        policies = self.policies.all()
        now = time.monotonic()
        keys = self._due(tick, policies, now)
        async with self.approvals.lock:
            keys = self._approvals_due(keys)
        advice = self.advice(now) if self.advice is not None else {}
        fresh = {k for k, a in advice.items() if self._advice_at.get(k) != a.answered_at}
        self._advice_at.update((k, advice[k].answered_at) for k in fresh)
        if keys is not None:
            keys |= fresh
        if full or (tick and self.failed_in_a_row):
            keys = None  # a failed evaluation lost the changes it took: the next tick re-plans everything
        budgets = self.budgets.all() if self.budgets is not None else _NO_BUDGETS
        if budgets is not self._budgets_seen:
            self._budgets_seen = budgets
            keys = None  # a budget changed: every workload it covers (or covered) is placed anew
        if keys is not None and budgets:
            keys = self._with_budget_mates(keys, budgets, now)
        if self.shard.version != self._shard_seen:
            self._shard_seen = self.shard.version
            keys = None  # partitions came or went: everything this hub now holds is planned anew
        if keys is not None and self.shard.sharded:
            keys = {k for k in keys if self.shard.owns(k)}  # another hub's workloads are its to decide
        if keys is None:
            self._backlog.clear()  # every workload is planned now
        if keys is not None and not keys:
            return []
        snapshot = self.shard.narrow(self.state.snapshot(now=now, only=keys,
                                                         scope=self.shard.scope() if keys is None else None))
        self.evaluations += 1
        self.metrics.workloads_planned.inc(len(snapshot.workloads))
        for cid, cluster in snapshot.clusters.items():
            self.metrics.report_age.labels(cid).set(snapshot.taken_at - cluster.received_at)
            self.metrics.cluster_stale.labels(cid).set(1 if cluster.stale else 0)
        # In a worker thread: HiGHS releases the GIL, so intake and the API keep running while it solves.
        planned = await asyncio.to_thread(self.planner.plan, snapshot, policies, partial=keys is not None,
                                          advice=advice, budgets=budgets)
        async with self.approvals.lock:
            return await self._decide(snapshot, planned, keys=keys, advice=advice, budgets=budgets, started=started)

    def _approvals_due(self, keys: set[str] | None) -> set[str] | None:
        """Expire what waited too long (re-planned: proposed again if still recommended), and hand the
        changes approved since the last evaluation to the engine's rate-limit memory."""
        expired = self.approvals.expire()
        for applied in self.approvals.take_applied():
            self.planner.engine.record_applied(applied.workload, applied.policy, now=applied.at,
                                               current=applied.current, desired=applied.desired)
        return None if keys is None else keys | expired

    async def _decide(self, snapshot: FleetSnapshot, planned: list[Plan], *, keys: set[str] | None,
                      advice: Mapping[str, WorkloadAdvice], budgets: list[Budget], started: float) -> list[Decision]:
        """The plans into decision records and commands: journalled, then sent; the decisions made."""
        pending: list[Decision] = []
        commands: list[ScaleCommand] = []
        if keys is None:
            self._plans = {}
        hot: set[str] = set()
        health = self.planner.last_health
        if health is not None:
            for cid in health.newly_lost:
                self.metrics.cluster_losses.labels(cid).inc()
            # Before any new command: what was queued for a lost cluster is re-placed by this tick.
            await self.dispatcher.revoke(health.newly_lost)
        if self.shard.sharded:
            # A partition lost while the planner solved is no longer this hub's to command.
            planned = [p for p in planned if self.shard.owns(p.view.key)]
        for plan in planned:
            rec, view, result = plan.recommendation, plan.view, plan.result
            self._plans[view.key] = (plan.policy, result.placement)
            infeasible = rec.inputs.get("infeasible_requests_per_s")
            self.metrics.set_infeasible(view.key, infeasible if isinstance(infeasible, (int, float)) else None)
            if view.key in advice:
                self.metrics.count_advice(view.key, None if rec.audit is None else rec.audit.advice)
            if held(rec) or result.unplaced:
                hot.add(view.key)  # held by a timer, or short of room: may move with no new input
            record, mine = self._draft(plan, snapshot)
            commands += mine
            if record is not None:
                pending.append(record)
        self._gauge_resources(p.view.key for p in planned)
        resizes = [] if self.resizer is None else self.resizer.plan(
            snapshot, ((p.policy, p.view, p.recommendation.current_replicas) for p in planned))
        pending += [d for d, _ in resizes]
        resize_ids = {c.command_id for _, c in resizes}
        commands = await self._journal_first(pending, commands + [c for _, c in resizes])
        published = {c.command_id for c in commands}
        scales = [c for c in commands if c.command_id not in resize_ids]
        sent = set(await self.dispatcher.send(scales)) if scales else set()
        resizing = [c for c in commands if c.command_id in resize_ids]
        for cid in await self.dispatcher.send_resources(resizing) if resizing else []:
            sent.add(cid)
            self.metrics.resizes.labels(next(c.cluster_id for _, c in resizes if c.command_id == cid)).inc()
        made = []
        for draft in pending:
            asked = draft.commands
            # Withheld (its decision was not journalled): it never went. Published but not
            # confirmed: it may still be delivered (Dispatcher._send_one), so the record keeps it.
            decision = draft.with_commands(c for c in asked if c in published)
            unconfirmed = [c for c in decision.commands if c not in sent]
            if unconfirmed:
                hot.add(decision.workload)  # decided again next tick
                decision = decision.model_copy(update={"notes": [*decision.notes, (
                    f"not confirmed by NATS (bus unavailable), so they may or may not be delivered: "
                    f"{', '.join(unconfirmed)}; decided again next tick")]})
            shown = decision.id in self.decisions_added
            if asked and len(unconfirmed) == len(decision.commands):
                hot.add(decision.workload)
                if shown:
                    self.decisions.add(decision)  # the journalled record, now with the note
                continue  # nothing confirmed: decided again next tick
            if not shown or decision.commands != asked or unconfirmed:
                self.decisions.add(decision)  # (again, when some of its commands did not go out)
            self.metrics.count_decision(decision)
            made.append(decision)
        self.decisions_added.clear()
        self._hot = hot if keys is None else (self._hot - set(snapshot.workloads)) | hot
        self.metrics.record_tick(self.state.snapshot, self._plans, self.planner.prices)
        if keys is None or budgets:
            self.metrics.record_budgets(list(self.planner.budget_use.values()))
        self.metrics.tick_seconds.observe(time.perf_counter() - started)
        return made

    def _gauge_resources(self, keys: Iterable[str]) -> None:
        if self.resources is None:
            return
        for key in keys:
            targets: dict[tuple[str, str, str], float | None] = {}
            for r in self.resources.recommend(key):
                for resource, estimate in (("cpu_cores", r.cpu_cores), ("memory_bytes", r.memory_bytes),
                                           ("gpu_memory_bytes", r.gpu_memory_bytes)):
                    targets[(r.gpu_type, r.container, resource)] = estimate.target
            if targets:
                self.metrics.set_resource_targets(key, targets)

    def _audit(self, rec: Recommendation) -> dict[str, Any] | None:
        """The engine's audit, with the workload's vertical recommendations where there are any."""
        if rec.audit is None:
            return None
        audit = rec.audit.to_json()
        if self.resources is not None:
            recs = self.resources.recommend(rec.audit.workload)
            if recs:
                audit["resources"] = {"apply": rec.policy.resources.apply, "containers": [r.to_json() for r in recs]}
        return audit

    def _draft(self, plan: Plan, snapshot: FleetSnapshot) -> tuple[Decision | None, list[ScaleCommand]]:
        """The decision record for one plan and the commands to send for it; (None, []) when there is
        nothing to do and nothing new to say."""
        rec, view, before, result = plan.recommendation, plan.view, plan.before, plan.result
        mode = rec.policy.mode
        if mode == "approval" and self.approvals.approved_since(view.key, snapshot.taken_at):
            return None, []  # planned before an approval was sent: the next evaluation sees its commands
        if mode != "approval":
            self.approvals.withdraw(view.key, f"its policy is in {mode} mode now")
        if not plan.changed:
            if mode == "approval":
                self.approvals.withdraw(view.key, NO_CHANGE)
            return None, []  # nothing to do and nothing new to say
        mine: list[ScaleCommand] = []
        waits = False
        if mode in ("enforce", "approval"):
            mine = self.dispatcher.commands_for(snapshot, view, rec.policy, result.placement, rec.reason,
                                                plan.routing)
            if not mine:
                if mode == "approval":
                    self.approvals.withdraw(view.key, NO_CHANGE)
                return None, []  # already asked for; waiting for the clusters to catch up
            if mode == "approval":
                mine, waits = self._hold_for_approval(plan, mine, snapshot.taken_at)
                if waits and self.approvals.known(view.key, (
                        rec.policy.id, rec.policy.revision, rec.desired_replicas, placement_json(result.placement),
                        [r.model_dump(mode="json") for r in plan.routing])):
                    return None, []  # already waiting (or rejected): not news, and no record to build
        else:
            last = self.decisions.latest.get(view.key)
            if last is not None and last.mode == "dry-run" and last.desired_replicas == rec.desired_replicas \
                    and last.placement_after == placement_json(result.placement):
                return None, []  # dry-run: the same recommendation as last tick is not news
        notes = list(result.notes) + [n for c in mine if (n := self.dispatcher.notes.pop(c.command_id, None))]
        if mode == "approval" and mine:
            notes.append(FAILOVER_NOTE)
        if view.stale_clusters:
            notes.insert(0, f"stale clusters excluded, their share re-placed: {', '.join(view.stale_clusters)}")
        draft: Decision | None = Decision(
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
            routing=[r.model_dump(mode="json") for r in plan.routing],
            unplaced=result.unplaced,
            cause=None if plan.placement_cause is None else str(plan.placement_cause),
            notes=notes,
            commands=[c.command_id for c in mine],
            audit=self._audit(rec),
        )
        if waits and draft is not None:
            draft = self.approvals.propose(draft, rec.policy)  # None: the same as the one already waiting
        return draft, mine

    def _hold_for_approval(self, plan: Plan, commands: list[ScaleCommand],
                           at: float) -> tuple[list[ScaleCommand], bool]:
        """An approval policy's commands: (what to send now, whether the decision waits for approval).

        A failover re-placement (``failover_now``) goes out at once, and the engine's rate limits count
        it; anything else waits, and its commands are not sent."""
        if failover_now(plan, self.planner.last_health):
            rec = plan.recommendation
            self.approvals.withdraw(plan.view.key, "a failover re-placement was sent without waiting")
            self.planner.engine.record_applied(plan.view.key, plan.policy, now=at, current=rec.current_replicas,
                                               desired=rec.desired_replicas)
            return commands, False
        for c in commands:
            self.dispatcher.withdraw(c.command_id)
        return [], True

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

    async def run(self) -> None:
        started = time.monotonic()
        self.state.listen_from(started)
        # A hub that decides before every cluster has reported sees part of the fleet: a workload
        # whose other replicas run on a cluster not yet heard from looks short, and is grown.
        decide_from = started + self.startup_grace_s
        next_tick = started
        while True:
            deadline = next_tick
            # NB: asyncio.timeout, not wait_for: a change that arrives just as the tick is due must
            # not be lost to a cancelled wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self._wake.wait()
            now = time.monotonic()
            self._check_stall(now - deadline)
            self._check_deaf(now)
            tick = now >= next_tick
            if tick:
                next_tick += self.tick_s
                if next_tick < now:
                    next_tick = now + self.tick_s  # overran: do not try to catch up with a burst of ticks
            else:
                await asyncio.sleep(self.settle_s)  # let a burst of reports land: one evaluation for all
            self._wake.clear()
            if now < decide_from:
                self.state.take_changed()
                continue
            begun = time.monotonic()
            try:
                await self.evaluate(tick=tick)
            except Exception as e:
                self._failed(e)
            else:
                self._succeeded()
            if self._backlog:
                self._wake.set()  # more changes than one batch: the next batch at once
            # NB: the planner runs in a thread but holds the interpreter most of the time, so intake
            # reads little while it works: a long evaluation (the first one at 10,000 workloads takes
            # seconds) is a stall too, or the reports queued meanwhile would make every cluster stale.
            self._check_stall(time.monotonic() - begun)

    def _check_deaf(self, now: float) -> None:
        """While the hub's NATS connection is down it hears nobody: that silence is not the clusters'.

        NB: counted, a NATS outage longer than the staleness limit made the hub take every cluster for
        lost and revoke the commands queued for them (the chaos run, tests/e2e/test_chaos.py). Silence
        counts again from the start-up grace after the connection is back, as at start: the spokes
        reconnect too, each after its own back-off.
        """
        if self.listening is not None and not self.listening():
            self.state.listen_from(now + self.startup_grace_s)

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
