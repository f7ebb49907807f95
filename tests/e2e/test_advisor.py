"""The advisor in a running hub: asked over HTTP, its exchange served by the API and shown on the page."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.test_page import Browser, browser  # noqa: F401  (the fixture)
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats


async def test_an_advisory_answer_is_recorded_served_and_shown_but_never_applied(
    nats_server, tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    from playwright.async_api import expect

    asked: list[dict] = []  # type: ignore[type-arg]

    async def chat(request: web.Request) -> web.Response:
        asked.append(await request.json())
        content = '{"replicas": 5, "confidence": 0.7, "rationale": "queue builds at the step; add two"}'
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": content}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 2},
              "signals": [{"metric": "queue_per_replica", "target": 50}],
              "advisor": {"mode": "advisory", "endpoint": f"http://127.0.0.1:{port}/v1", "model": "m",
                          "interval_s": 10}}
    world = two_cluster_world(low=0.5, high=0.5)
    try:
        async with (
            running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy)) as hub,
            driven(world, time_scale=4.0),
            running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
            running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
        ):
            await eventually(lambda: KEY in hub.advisor.latest, timeout_s=20)
            assert asked and asked[0]["model"] == "m"
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{hub.api_port}/api/v1/advisor") as r:
                    (x,) = (await r.json())["exchanges"]
            assert x["workload"] == KEY and x["advice"]["replicas"] == 5 and x["error"] is None
            assert x["summary"]["workload"] == KEY
            # Advisory: recorded and shown, never applied (the policy's max is 2 anyway).
            assert all(d.desired_replicas <= 2 for d in hub.decisions.recent(workload=KEY))
            page = browser.page
            await page.goto(f"http://127.0.0.1:{hub.api_port}/")
            await expect(page.locator(f'[data-advisor="{KEY}"]')).to_contain_text("queue builds at the step")
            await expect(page.locator(f'[data-advisor="{KEY}"]')).to_contain_text("advisor (advisory")
    finally:
        await runner.cleanup()
    assert browser.errors == []
