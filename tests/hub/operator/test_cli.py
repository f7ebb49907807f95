"""Every operator verb against a real hub (auth on, real NATS, simulated spokes), run as a process.

The CLI runs as a subprocess, as an operator's shell would run it, while the hub runs in this
process; the subprocess is awaited with asyncio so the hub keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

from hub.operator.client import ExitCode
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats

VIEWER, OPERATOR = "viewer-token-0123456789abcdef", "operator-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef0123"
POLICY = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
          "bounds": {"min_replicas": 1, "max_replicas": 6},
          "signals": [{"metric": "queue_per_replica", "target": 2}]}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):  # type: ignore[no-untyped-def]
        return orjson.loads(self.out)


@dataclass
class Env:
    url: str
    tmp: Path

    async def cli(self, *args: str, token: str | None = OPERATOR, url: str | None = None) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETSCALE_")}
        if token is not None:
            env["FLEETSCALE_TOKEN"] = token
        env["FLEETSCALE_HUB"] = url or self.url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.cli", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def env(nats_server, tmp_path: Path) -> AsyncIterator[Env]:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"name": "grafana", "role": "viewer", "token": VIEWER},
                                      {"name": "ci", "role": "operator", "token": OPERATOR},
                                      {"name": "platform", "role": "admin", "token": ADMIN}]))
    world = two_cluster_world(low=0.5, high=60.0, step_at=5.0)
    async with (
        running_hub(nats_server.url, auth_tokens_file=tokens) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        await eventually(lambda: len(hub.state.snapshot().clusters) == 2)
        yield Env(f"http://127.0.0.1:{hub.api_port}", tmp_path)


def policy_file(tmp: Path, **changes: object) -> str:
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump([POLICY | changes]))
    return str(path)


async def test_status_shows_readiness_clusters_and_workloads_as_table_and_json(env: Env) -> None:
    table = await env.cli("status")
    assert table.code == 0, table.err
    assert "ready" in table.out.splitlines()[0] and "alpha" in table.out and KEY in table.out
    data = (await env.cli("status", "-o", "json", token=VIEWER)).json()
    assert data["ready"] is True
    assert {c["cluster_id"] for c in data["clusters"]} == {"alpha", "beta"}
    assert [w["workload"] for w in data["workloads"]] == [KEY]
    assert yaml.safe_load((await env.cli("status", "-o", "yaml")).out)["ready"] is True


async def test_a_missing_or_wrong_token_is_a_clear_message_and_exit_code_3(env: Env) -> None:
    none = await env.cli("status", token=None)
    assert none.code == ExitCode.AUTH and "no token given" in none.err and "FLEETSCALE_TOKEN" in none.err
    wrong = await env.cli("policies", "get", token="not-a-real-token-000000000000")
    assert wrong.code == ExitCode.AUTH and "the token was refused" in wrong.err
    token_file = env.tmp / "token"
    token_file.write_text(OPERATOR + "\n")
    by_file = await env.cli("policies", "get", "--token-file", str(token_file), token=None)
    assert by_file.code == 0, by_file.err


async def test_policies_apply_get_dry_run_and_delete(env: Env) -> None:
    created = await env.cli("policies", "apply", "-f", policy_file(env.tmp))
    assert created.code == 0 and created.out.strip() == "policy llama created"
    again = await env.cli("policies", "apply", "-f", policy_file(env.tmp))
    assert again.code == 0 and "policy llama" in again.out
    changed = await env.cli("policies", "apply", "-f", policy_file(env.tmp, bounds={"min_replicas": 1,
                                                                                      "max_replicas": 4}))
    assert "configured" in changed.out
    got = (await env.cli("policies", "get", "llama", "-o", "json")).json()
    assert got["bounds"]["max_replicas"] == 4 and got["source"] == "rest"
    assert "llama" in (await env.cli("policies", "get")).out

    viewer = await env.cli("policies", "dry-run", "llama", token=VIEWER)
    assert viewer.code == ExitCode.AUTH and "role" in viewer.err
    assert "dry-run" in (await env.cli("policies", "dry-run", "llama")).out
    assert (await env.cli("policies", "get", "llama", "-o", "json")).json()["mode"] == "dry-run"
    assert "enforce" in (await env.cli("policies", "dry-run", "llama", "--off")).out

    assert (await env.cli("policies", "delete", "llama")).code == 0
    gone = await env.cli("policies", "get", "llama")
    assert gone.code == ExitCode.NOT_FOUND and "404" in gone.err
    bad = env.tmp / "bad.yaml"
    bad.write_text("- {id: x, bounds: {min_replicas: 5, max_replicas: 1}, targets: {workloads: []}}\n")
    refused = await env.cli("policies", "apply", "-f", str(bad), "-o", "json")
    assert refused.code == ExitCode.ERROR and orjson.loads(refused.err)["details"]


async def test_budgets_apply_get_and_delete_need_the_admin_role(env: Env) -> None:
    assert (await env.cli("policies", "apply", "-f", policy_file(env.tmp))).code == 0  # a budget covers planned ones
    path = env.tmp / "budgets.yaml"
    path.write_text(yaml.safe_dump({"budgets": [{"id": "ml", "team": "ml-platform",
                                                 "workloads": {"namespaces": [NS]}, "caps": {"gpus": {"*": 16}}}]}))
    refused = await env.cli("budgets", "apply", "-f", str(path))
    assert refused.code == ExitCode.AUTH and "admin" in refused.err
    created = await env.cli("budgets", "apply", "-f", str(path), token=ADMIN)
    assert created.code == 0 and created.out.strip() == "budget ml created", created.err
    listed = await env.cli("budgets", "get", token=VIEWER)
    assert listed.code == 0 and "ml-platform" in listed.out
    got = await eventually_json(env, "ml")
    assert got["caps"]["gpus"] == {"*": 16} and got["source"] == "rest" and got["use"]["gpus"]["*"] >= 1
    path.write_text(yaml.safe_dump([{"id": "ml", "workloads": {"namespaces": [NS]}, "caps": {"gpus": {"*": -1}}}]))
    bad = await env.cli("budgets", "apply", "-f", str(path), "-o", "json", token=ADMIN)
    assert bad.code == ExitCode.ERROR and "caps.gpus.*" in bad.err
    assert (await env.cli("budgets", "delete", "ml", token=ADMIN)).code == 0
    assert (await env.cli("budgets", "get", "ml")).code == ExitCode.NOT_FOUND


async def eventually_json(env: Env, budget_id: str) -> dict[str, object]:
    """The budget once the hub has planned the workload under it (``use`` comes from the next plan)."""
    for _ in range(100):
        got = (await env.cli("budgets", "get", budget_id, "-o", "json")).json()
        if KEY in (got.get("use") or {}).get("workloads", []):
            return got  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"budget {budget_id} never got its use")


async def test_decisions_list_and_explain_a_real_decision(env: Env) -> None:
    assert (await env.cli("policies", "apply", "-f", policy_file(env.tmp))).code == 0

    async def decided() -> list[dict[str, object]]:
        return (await env.cli("decisions", "list", "--workload", KEY, "-o", "json")).json()["decisions"]

    decisions: list[dict[str, object]] = []
    for _ in range(60):
        decisions = await decided()
        if decisions:
            break
        await asyncio.sleep(0.5)
    assert decisions and all(d["workload"] == KEY for d in decisions)
    listed = await env.cli("decisions", "list", "--workload", KEY)
    assert str(decisions[0]["id"]) in listed.out
    explained = await env.cli("explain", str(decisions[0]["id"]))
    assert explained.code == 0, explained.err
    text = explained.out
    assert f"Decision {decisions[0]['id']}" in text and "Inputs" in text and "Placement" in text
    assert "queue_per_replica" in text
    assert (await env.cli("explain", "no-such-decision")).code == ExitCode.NOT_FOUND


async def test_top_draws_frames_and_stops(env: Env) -> None:
    run = await env.cli("top", "--iterations", "2", "--interval", "0.1")
    assert run.code == 0, run.err
    assert "Clusters" in run.out and "alpha" in run.out and "Workloads" in run.out


async def test_an_unreachable_hub_is_exit_code_6() -> None:
    env = Env("http://127.0.0.1:9", Path("."))
    run = await env.cli("status", "--timeout", "2")
    assert run.code == ExitCode.UNREACHABLE and "cannot reach the hub" in run.err
