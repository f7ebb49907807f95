"""The page's Approve button in a real browser (Debian's Chromium): a pending decision of an approval
policy shows its state and buttons; a viewer's click is refused and says why; an operator's click
approves it, the record says who, and the spoke applies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoke.backends.simulated import SimulatedBackend
from tests.e2e.conftest import eventually, running_hub, running_spoke
from tests.e2e.test_approvals import approval_policy, sent
from tests.e2e.test_page import Browser, browser  # noqa: F401  (the fixture)
from tests.e2e.world import driven, two_cluster_world
from tests.hub.web.test_auth import OPERATOR, TOKENS, VIEWER
from tests.hub.web.test_auth import write_tokens as write_token_file

pytestmark = pytest.mark.nats


async def test_the_approve_button_sends_the_decision_and_shows_who_approved_it(
    nats_server, tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    from playwright.async_api import expect

    page = browser.page
    world = two_cluster_world(low=0.5, high=0.5)
    tokens = write_token_file(tmp_path / "tokens.yaml", TOKENS)
    async with (
        running_hub(nats_server.url, policy_file=approval_policy(tmp_path), auth_tokens_file=tokens) as hub,
        driven(world, time_scale=4.0),
        running_spoke(nats_server.url, "alpha", SimulatedBackend(world, "alpha")),
    ):
        (waiting,) = await eventually(lambda: hub.evaluator.approvals.pending(), timeout_s=10)
        await page.goto(f"http://127.0.0.1:{hub.api_port}/#token={VIEWER}")
        row = page.locator(f'li.decision[data-decision="{waiting.id}"]')
        await expect(row.locator('[data-approval="pending"]')).to_contain_text("awaiting approval until")
        await expect(row).to_contain_text("no command sent (pending)")
        await expect(page.locator("#approvals-pending")).to_have_text("1 awaiting approval")
        await page.screenshot(path=tmp_path / "pending.png", full_page=True)

        await row.locator(f'[data-approve="{waiting.id}"]').click()  # a viewer may not
        await expect(page.locator("#banner")).to_contain_text("forbidden (needs the operator role)")
        assert sent(hub) == 0 and hub.evaluator.approvals.pending() == [waiting]

        await page.goto(f"http://127.0.0.1:{hub.api_port}/#token={OPERATOR}")
        await page.reload()
        row = page.locator(f'li.decision[data-decision="{waiting.id}"]')
        await row.locator(f'[data-approve="{waiting.id}"]').click()
        await expect(row.locator('[data-approval="approved"]')).to_have_text("approved by ci")
        await expect(row.locator("[data-approve]")).to_have_count(0)
        await expect(page.locator("#approvals-pending")).to_be_hidden()
        await expect(row.locator('[data-result="applied"]')).to_have_count(1)  # the result, pushed later
        await expect(page.locator("#banner")).to_be_hidden()
        await eventually(lambda: world.workload_states("alpha")[0].desired_replicas == 2, timeout_s=10)
        record = hub.decisions.get(waiting.id)
        assert record is not None and record.approval is not None and record.approval.by == "ci"
        assert sent(hub) == len(record.commands) == 1
        await row.locator(f'[data-explain="{waiting.id}"]').click()  # the explain view says so too
        await expect(page.locator("#explain [data-approval]")).to_have_text("approved by ci")
        await page.screenshot(path=tmp_path / "approval.png", full_page=True)
        assert browser.errors == [] or all("403" in e for e in browser.errors), browser.errors
