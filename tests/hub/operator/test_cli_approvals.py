"""``fleetscale approvals list|approve|reject`` as a process against a real hub (auth on, real NATS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from hub.operator.client import ExitCode
from hub.service import Hub
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke
from tests.e2e.test_approvals import approval_policy
from tests.e2e.world import KEY, driven, two_cluster_world
from tests.hub.operator.test_cli import OPERATOR, VIEWER, Env

pytestmark = pytest.mark.nats


@pytest.fixture
async def env(nats_server, tmp_path: Path) -> AsyncIterator[tuple[Env, Hub]]:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"name": "grafana", "role": "viewer", "token": VIEWER},
                                      {"name": "ci", "role": "operator", "token": OPERATOR}]))
    world = two_cluster_world(low=0.5, high=0.5)
    async with (
        running_hub(nats_server.url, auth_tokens_file=tokens, policy_file=approval_policy(tmp_path)) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
    ):
        yield Env(f"http://127.0.0.1:{hub.api_port}", tmp_path), hub


async def test_list_reject_then_approve_a_fresh_one(env: tuple[Env, Hub]) -> None:
    cli, hub = env
    (waiting,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
    listed = await cli.cli("approvals", "list", token=VIEWER)
    assert listed.code == 0, listed.err
    assert waiting.id in listed.out and KEY in listed.out and "1→2" in listed.out
    as_json = (await cli.cli("approvals", "list", "--workload", KEY, "-o", "json", token=VIEWER)).json()
    assert [d["id"] for d in as_json["approvals"]] == [waiting.id]

    refused = await cli.cli("approvals", "approve", waiting.id, token=VIEWER)
    assert refused.code == ExitCode.AUTH and "role" in refused.err
    rejected = await cli.cli("approvals", "reject", waiting.id, "-m", "not today")
    assert rejected.code == 0, rejected.err
    assert rejected.out.strip() == f"decision {waiting.id} ({KEY}) rejected by ci"
    record = hub.decisions.get(waiting.id)
    assert record is not None and record.approval is not None and record.approval.comment == "not today"
    explained = await cli.cli("explain", waiting.id, token=VIEWER)
    assert "Approval: rejected by ci at" in explained.out and "(not today)" in explained.out, explained.out
    assert "No command sent (rejected)." in explained.out
    stale = await cli.cli("approvals", "approve", waiting.id)
    assert stale.code == ExitCode.CONFLICT and "rejected" in stale.err
    missing = await cli.cli("approvals", "approve", "0123456789abcdef")
    assert missing.code == ExitCode.NOT_FOUND

    # Ten minutes on (the policy's ttl_s), the rejection no longer holds the same floor back.
    hub.evaluator.approvals.clock = lambda: datetime.now(UTC) + timedelta(seconds=601)
    (fresh,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
    approved = await cli.cli("approvals", "approve", fresh.id)
    assert approved.code == 0, approved.err
    assert approved.out.strip() == f"decision {fresh.id} ({KEY}) approved by ci, 1 commands sent"
