"""``mode: approval`` over a real nats-server: the real hub, simulated spokes, the API with real tokens.

Nothing is applied while a decision waits; an operator's approval over the API applies exactly that
decision, once. A lost cluster's share is re-placed without waiting (``approval.failover: immediate``),
or waits like anything else (``approval``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.service import Hub
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, next_tick, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world
from tests.hub.web.test_auth import OPERATOR, TOKENS, VIEWER, bearer
from tests.hub.web.test_auth import write_tokens as write_token_file

pytestmark = pytest.mark.nats


def approval_policy(tmp_path: Path, **kw: Any) -> Path:
    # Steady, light load: the one thing to decide is the floor. min_replicas 2 over the 1 replica the
    # world starts with is a recommendation that stays the same until it is approved.
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 2, "max_replicas": 8},
              "signals": [{"metric": "queue_per_replica", "target": 50}],
              "mode": "approval", "approval": {"ttl_s": 600}}
    return write_policies(tmp_path / "policies.yaml", policy | kw)


def sent(hub: Hub) -> float:
    return sum(s.value for m in hub.metrics.commands.collect() for s in m.samples if s.name.endswith("_total"))


async def test_nothing_is_applied_until_an_operator_approves_then_exactly_that_decision_once(
    nats_server, tmp_path: Path
) -> None:
    world = two_cluster_world(low=0.5, high=0.5)
    tokens = write_token_file(tmp_path / "tokens.yaml", TOKENS)
    async with (
        running_hub(nats_server.url, policy_file=approval_policy(tmp_path), auth_tokens_file=tokens) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")) as alpha,
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as beta,
        aiohttp.ClientSession(f"http://127.0.0.1:{hub.api_port}") as http,
    ):
        (waiting,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
        assert waiting.workload == KEY and waiting.desired_replicas == 2 and waiting.commands == []
        for _ in range(5):
            await next_tick(hub)  # decided again and again: still the same one waiting, nothing sent
        assert hub.evaluator.approvals.pending() == [waiting]
        assert sent(hub) == 0 and alpha.executor.applied + beta.executor.applied == 0
        assert world.workload_states("alpha")[0].desired_replicas == 1
        assert hub.metrics.approvals_pending._value.get() == 1

        async with http.get("/api/v1/approvals", headers=bearer(VIEWER)) as r:
            assert r.status == 200 and [d["id"] for d in (await r.json())["approvals"]] == [waiting.id]
        async with http.post(f"/api/v1/approvals/{waiting.id}/approve", headers=bearer(VIEWER)) as r:
            assert r.status == 403  # a viewer may look, not approve
        async with http.post(f"/api/v1/approvals/{waiting.id}/approve", headers=bearer(OPERATOR),
                             json={"comment": "floor of two"}) as r:
            assert r.status == 200, await r.text()
            approved = await r.json()
        assert approved["approval"]["state"] == "approved" and approved["approval"]["by"] == "ci"
        assert len(approved["commands"]) >= 1

        record = await eventually(lambda: (d := hub.decisions.get(waiting.id)) and len(d.results) == len(
            d.commands) and d, timeout_s=10)
        assert all(r.status == "applied" for r in record.results.values())
        await eventually(lambda: sum(s.desired_replicas for c in ("alpha", "beta")
                                     for s in world.workload_states(c)) == 2, timeout_s=10)
        for _ in range(10):
            await next_tick(hub)  # and nothing more: the approved placement is what runs now
        assert sent(hub) == len(approved["commands"])
        assert alpha.executor.applied + beta.executor.applied == len(approved["commands"])
        assert hub.evaluator.approvals.pending() == []
        assert hub.metrics.approvals.labels("approved")._value.get() == 1

        async with http.post(f"/api/v1/approvals/{waiting.id}/approve", headers=bearer(OPERATOR)) as r:
            assert r.status == 409 and (await r.json())["details"]["reason"] == "approved"
        async with http.post("/api/v1/approvals/nope/reject", headers=bearer(OPERATOR)) as r:
            assert r.status == 404


@pytest.mark.parametrize("failover", ["immediate", "approval"])
async def test_a_lost_clusters_share_is_re_placed_at_once_unless_the_policy_says_wait(
    nats_server, tmp_path: Path, failover: str
) -> None:
    world = two_cluster_world(low=0.5, high=0.5, initial={("alpha", "H100"): 1, ("beta", "L4"): 1})
    policy = approval_policy(tmp_path, approval={"ttl_s": 600, "failover": failover})
    async with (
        running_hub(nats_server.url, policy_file=policy) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")) as beta,
    ):
        await eventually(lambda: len(hub.state.snapshot().fresh) == 2)
        await next_tick(hub)
        assert hub.evaluator.approvals.pending() == []  # 2 run, 2 wanted: nothing to decide
        beta.reporter.paused = True
        await eventually(lambda: hub.state.snapshot().clusters["beta"].stale, timeout_s=5)
        if failover == "immediate":
            # The replica beta ran was applied already: its replacement on alpha does not wait.
            await eventually(lambda: world.workload_states("alpha")[0].desired_replicas == 2, timeout_s=10)
            decision = hub.decisions.latest[KEY]
            assert decision.mode == "approval" and decision.approval is None and decision.commands
            assert any(n.startswith("failover: sent without waiting") for n in decision.notes)
            assert hub.evaluator.approvals.pending() == []
        else:
            (waiting,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
            assert waiting.placement_after == {"alpha/H100": 2}
            await asyncio.sleep(1.0)
            assert world.workload_states("alpha")[0].desired_replicas == 1 and sent(hub) == 0


async def test_a_pending_decision_waits_again_after_a_hub_restart(nats_server, tmp_path: Path) -> None:
    world = two_cluster_world(low=0.5, high=0.5)
    policy = approval_policy(tmp_path)
    async with (
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")) as alpha,
    ):
        async with running_hub(nats_server.url, policy_file=policy) as hub:
            (waiting,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
            await eventually(lambda: hub.journal.pending == 0)  # stored in the history
        async with running_hub(nats_server.url, policy_file=policy) as hub:
            (restored,) = hub.evaluator.approvals.pending()
            assert restored.id == waiting.id and restored.approval == waiting.approval
            assert hub.metrics.approvals_pending._value.get() == 1
            for _ in range(5):
                await next_tick(hub)  # the same recommendation: the restored decision still waits
            assert [d.id for d in hub.evaluator.approvals.pending()] == [waiting.id]
            approved = await hub.evaluator.approvals.approve(waiting.id, by="ops")
            assert approved.commands and approved.approval is not None and approved.approval.by == "ops"
            await eventually(lambda: world.workload_states("alpha")[0].desired_replicas == 2, timeout_s=10)
            assert alpha.executor.applied == 1
