"""The fleet page in a real browser: real nats-server, real hub, simulated spokes, Debian's Chromium.

Playwright drives ``/usr/bin/chromium`` (it cannot download its own browser here). The page must
render the fleet from the JSON API and then follow it over the live feed without a reload.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub.decisions.model import Decision
from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()


@dataclass
class Browser:
    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium); "
                    "Playwright cannot download a browser on this machine")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = await chromium.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            b = Browser(page)
            page.on("pageerror", lambda e: b.errors.append(str(e)))
            page.on("console", lambda m: b.errors.append(m.text) if m.type == "error" else None)
            yield b
        finally:
            await chromium.close()


def policy(tmp_path: Path, **kw: object) -> Path:
    p = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
         "bounds": {"min_replicas": 2, "max_replicas": 4},
         "signals": [{"metric": "queue_per_replica", "target": 50}, {"metric": "ttft", "target": 5}]}
    return write_policies(tmp_path / "policies.yaml", p | kw)


async def test_the_page_follows_the_fleet_live_and_shows_decisions_with_their_results(
    nats_server, tmp_path: Path, browser: Browser
) -> None:
    from playwright.async_api import expect

    page = browser.page
    world = two_cluster_world(low=0.5, high=0.5)
    async with running_hub(nats_server.url, policy_file=policy(tmp_path)) as hub:
        await page.goto(f"http://127.0.0.1:{hub.api_port}/")
        await expect(page.locator("#clusters")).to_contain_text("No cluster has reported yet")
        await expect(page.locator("#conn")).to_have_text("live")
        await page.evaluate("window.notReloaded = true")

        # Spokes start after the page loaded: clusters, then the policy's decision, come over the feed.
        async with (
            driven(world, time_scale=4.0),
            running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
            running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta")),
        ):
            alpha = page.locator('[data-cluster="alpha"]')
            await expect(alpha.locator('[data-gpu-type="H100"]')).to_contain_text("/ 8 free")
            await expect(page.locator('[data-cluster="beta"] [data-gpu-type="L4"]')).to_contain_text("/ 8 free")
            await expect(alpha).to_contain_text("fresh")

            ups = await eventually(lambda: [d for d in hub.decisions.recent(workload=KEY) if d.action == "scale_up"])
            row = page.locator(f'li.decision[data-decision="{ups[-1].id}"]')
            await expect(row).to_contain_text("1 → 2")
            await expect(row).to_contain_text("queue_per_replica")  # the reason and the per-signal inputs
            for key in ups[-1].placement_after:
                await expect(row.locator(".chip", has_text=key)).to_have_count(1)  # placement before → after
            await expect(row.locator('[data-result="applied"]')).to_have_count(1)  # the result, pushed later
            assert not await row.locator(".dry-run").count()

            workload = page.locator(f'[data-workload="{KEY}"]')
            await expect(workload).to_contain_text("policy llama")
            # TTFT p95 (measured by the simulated spoke) against the policy's p95 TTFT target, 5 s.
            await expect(workload.locator("[data-ttft]")).to_have_text(re.compile(r"^\d+ ms$"))
            await expect(workload).to_contain_text("/ 5.00 s")

            # Text from the hub is text: markup in a reason must not become an element.
            hub.decisions.add(Decision(
                workload=KEY, policy_id="llama", policy_revision=1, mode="dry-run", current_replicas=2,
                desired_replicas=2, reason='<img id="injected" src="x">', inputs={}, placement_before={},
                placement_after={}, id="markup"))
            await expect(page.locator('[data-decision="markup"] .reason')).to_have_text('<img id="injected" src="x">')
            assert await page.locator("#injected").count() == 0

            assert await page.evaluate("window.notReloaded") is True
            await page.screenshot(path=tmp_path / "page.png", full_page=True)
            assert browser.errors == []


async def test_a_dry_run_policy_is_badged_on_its_workload_and_its_decisions(
    nats_server, tmp_path: Path, browser: Browser
) -> None:
    from playwright.async_api import expect

    page = browser.page
    world = two_cluster_world(low=0.5, high=0.5)
    async with (
        running_hub(nats_server.url, policy_file=policy(tmp_path, mode="dry-run")) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
    ):
        await eventually(lambda: KEY in hub.decisions.latest)
        requests: list[Any] = []
        page.on("request", lambda r: requests.append(r))
        await page.goto(f"http://127.0.0.1:{hub.api_port}/#token=s3cret%2Fx")
        # First render, from the JSON API: the cluster with its inventory, the workload, the decision.
        await expect(page.locator('[data-cluster="alpha"] [data-gpu-type="H100"]')).to_contain_text("7 / 8 free")
        await expect(page.locator(f'[data-workload="{KEY}"] .dry-run')).to_have_text("dry-run")
        row = page.locator(f'li.decision[data-decision="{hub.decisions.latest[KEY].id}"]')
        await expect(row.locator(".dry-run")).to_have_text("dry-run")
        await expect(row).to_contain_text("no command sent (dry-run)")
        assert world.workload_states("alpha")[0].desired_replicas == 1  # dry-run really sent nothing

        # A token given as #token= is sent as a bearer token, and as ?access_token= on the event
        # stream only (EventSource cannot set headers); it leaves the address bar.
        api = [r for r in requests if "/api/v1/" in r.url]
        assert {r.url.split("?")[0].rsplit("/", 1)[1] for r in api} >= {"clusters", "workloads", "policies", "events"}
        for r in api:
            if r.url.split("?")[0].endswith("/events"):
                assert r.url.endswith("?access_token=s3cret%2Fx")
            else:
                assert (await r.all_headers())["authorization"] == "Bearer s3cret/x" and "access_token" not in r.url
        assert "#" not in page.url and await page.evaluate("localStorage.getItem('fleetscale.token')") == "s3cret/x"
        assert browser.errors == []
    await expect(page.locator("#conn")).to_have_text("disconnected, retrying")  # the hub is gone
