"""The page's charts and explain view in Debian's Chromium, on a running hub with simulated spokes.

Every chart must draw a non-empty series whose last point is the API's last number, a decision
marker or feed entry must open the explain view of a real decision, and the console must stay
clean. The screenshot it takes is the one the README shows (docs/images/page.png).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke, write_policies
from tests.e2e.test_page import Browser, browser  # noqa: F401  (the fixture)
from tests.e2e.world import KEY, NAME, NS, driven, two_cluster_world

pytestmark = pytest.mark.nats

README_SCREENSHOT = Path(__file__).parents[2] / "docs" / "images" / "page.png"
"""Written only with FLEETSCALE_UPDATE_SCREENSHOT=1, so a test run leaves the tree as it was."""
SERIES = {"replicas": "desired", "load": "load", "ttft": "ttft", "queue": "queue", "cost": "cost"}
FIELD = {"desired": "desired", "load": "load_tokens_per_s", "ttft": "ttft_p95_s", "queue": "queue_per_replica",
         "cost": "cost_usd_per_hour"}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-3)


def marker_on_axis(hub: Any) -> bool:
    window = hub.history.window(KEY, 900) or {"t": []}
    t = [x for x in window["t"] if x is not None]
    return bool(t) and any(t[0] <= d.at.timestamp() <= t[-1] for d in hub.decisions.recent(workload=KEY))


async def test_every_chart_draws_the_apis_numbers_and_explain_opens_a_real_decision(
    nats_server, tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    screenshot = README_SCREENSHOT if os.environ.get("FLEETSCALE_UPDATE_SCREENSHOT") == "1" else tmp_path / "page.png"
    from playwright.async_api import expect

    page = browser.page
    policy = {"id": "llama", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
              "bounds": {"min_replicas": 1, "max_replicas": 6},
              "signals": [{"metric": "queue_per_replica", "target": 2}, {"metric": "ttft", "target": 2}]}
    # The step comes after the first history points (a 900 s window reads the coarse ring, whose
    # first point is a few seconds in), so its decisions have markers on the axis.
    world = two_cluster_world(low=2.0, high=40.0, step_at=40.0)
    # A budget that never binds here (so the charts are as without one): the cost chart shows the
    # team's spend against it.
    budgets = tmp_path / "b.yaml"
    budgets.write_text(json.dumps([{"id": "ml", "team": "ml-platform", "workloads": {"namespaces": [NS]},
                                    "caps": {"cost_per_hour": 1000, "gpus": {"*": 100}}}]))
    async with (
        running_hub(nats_server.url, policy_file=write_policies(tmp_path / "p.yaml", policy),
                    history_interval_s=0.2, budget_file=budgets) as hub,
        driven(world, time_scale=8.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha", window_s=5.0)),
        running_spoke(nats_server.url, "beta", SimulatedBackend(world, "beta", window_s=5.0)),
    ):
        await eventually(lambda: [d for d in hub.decisions.recent(workload=KEY) if d.action == "scale_up"],
                         timeout_s=30)
        await eventually(lambda: len((hub.history.window(KEY, 900) or {"t": []})["t"]) >= 5, timeout_s=20)
        # A marker is drawn only inside the sampled span, so freeze the history only once a
        # decision lies between its first and last point (the first decisions can predate it).
        await eventually(lambda: marker_on_axis(hub), timeout_s=30)
        await page.goto(f"http://127.0.0.1:{hub.api_port}/")
        await expect(page.locator("#history-workload option")).to_have_count(2)
        await page.select_option("#history-workload", KEY)
        await page.locator('#history-windows button[data-window="900"]').click()
        for chart in SERIES:
            await expect(page.locator(f'[data-chart="{chart}"] svg')).to_have_count(1)
        # Freeze the history at a point the page and the API both read.
        hub.history.sample = lambda *args: None  # type: ignore[method-assign]
        await page.wait_for_timeout(300)
        await page.locator('#history-windows button[data-window="900"]').click()
        await page.wait_for_timeout(500)
        api = hub.history.window(KEY, 900)
        assert api is not None
        for chart, series in SERIES.items():
            node = page.locator(f'[data-chart="{chart}"] [data-series="{series}"]')
            last = await node.get_attribute("data-last")
            values = [v for v in api["values"][FIELD[series]] if v is not None]
            assert values, f"the API has no {FIELD[series]} to draw"
            assert last is not None and close(float(last), values[-1]), (chart, last, values[-1])
            assert await page.locator(f'[data-chart="{chart}"] polyline, [data-chart="{chart}"] polygon').count()
        # Spend against budget per team, as the budget API gives it (the plan moves on; the caps do not).
        assert hub.evaluator.planner.budget_use["ml"].gpus.get("*", 0) >= 1
        legend = page.locator('[data-chart="cost"] [data-budget="ml"]')
        spend = re.compile(r"^budget ml-platform: [0-9.]+ of 1000 \$/h, [1-9][0-9]* of 100 GPUs$")
        await expect(legend).to_have_text(spend)
        stacked = page.locator('[data-chart="replicas"] polygon[data-series]')
        assert await stacked.count() >= 1
        # Decision markers on the time axis, and the explain view of a real decision.
        await expect(page.locator('[data-chart="replicas"] .marker-hit').first).to_be_attached()
        up = next(d for d in hub.decisions.recent(workload=KEY) if d.action == "scale_up")
        await page.locator(f'li.decision[data-decision="{up.id}"] button.explain-link').click()
        explain = page.locator("#explain")
        await expect(explain).to_have_attribute("data-explained", up.id)
        await expect(explain).to_contain_text("Each signal's proposal")
        await expect(explain).to_contain_text("queue_per_replica")
        await expect(explain).to_contain_text("Commands and results")
        await page.locator('[data-chart="replicas"] .marker-hit').last.click()
        await expect(explain).to_contain_text("Placement (cluster/GPU type")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.stat().st_size > 10_000
    assert browser.errors == []
