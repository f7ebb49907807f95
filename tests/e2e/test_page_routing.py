"""Routing rules end to end: a policy with request classes, a real hub and NATS, simulated spokes,
and the page in Debian's Chromium.

The hub splits the demand by prompt length and publishes, with its commands, which GPU types each
class may use (docs/routing.md). The decision record carries those rules, the page shows them on
the decision, and the simulated spoke hands them to its gateway, as a real gateway would read them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.test_page import Browser, browser  # noqa: F401  (the fixture)
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats


async def test_routing_rules_reach_the_decision_the_page_and_the_gateway(
    nats_server, tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    from playwright.async_api import expect

    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 6},
              "signals": [{"metric": "ttft", "target": 2}],
              "placement": {"request_classes": True}}
    world = two_cluster_world(low=4.0, high=30.0, step_at=4.0)
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        routed = await eventually(
            lambda: next((d for d in hub.decisions.recent(workload=KEY) if d.routing and d.commands), None),
            timeout_s=60)
        rules = routed.routing
        assert len(rules) >= 2, rules
        # The classes cover every prompt length once, shortest first, and the longest may use only
        # types fast enough for it; every class has a type to go to.
        assert rules[0]["min_prompt_tokens"] == 0 and rules[-1]["max_prompt_tokens"] is None
        for a, b in itertools.pairwise(rules):
            assert a["max_prompt_tokens"] == b["min_prompt_tokens"]
        assert all(r["gpu_types"] and abs(sum(r["weights"].values()) - 1) < 1e-3 for r in rules)
        # The spoke that applied a command handed the rules to its gateway.
        await eventually(lambda: world.routing(NS, NAME), timeout_s=20)

        page = browser.page
        await page.goto(f"http://127.0.0.1:{hub.api_port}/")
        row = page.locator(f'li.decision[data-decision="{routed.id}"]')
        chips = row.locator(".routing .chip")
        await expect(chips).to_have_count(len(rules))
        first = rules[0]
        shares = ", ".join(f"{t} {round(100 * first['weights'].get(t, 0))} %" for t in first["gpu_types"])
        await expect(chips.first).to_contain_text(f"prompt tokens: {shares}")
        await expect(chips.last).to_contain_text("> ")
        assert browser.errors == []
