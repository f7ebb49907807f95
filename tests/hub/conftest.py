"""Hub test fixtures: a real policy store on a real nats-server, and the schemathesis case count."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from hub.policies.store import PolicyStore
from shared.natsserver import NatsServer

SCHEMATHESIS_CASES = pytest.StashKey[Counter[str]]()


@pytest.fixture
async def policy_store(nats_server: NatsServer) -> AsyncIterator[PolicyStore]:
    from shared.bus import Bus, BusOptions

    async with Bus.connect(BusOptions(url=nats_server.url, name="test")) as bus:
        await bus.ensure_topology()
        yield PolicyStore(await bus.policies_bucket())


@pytest.fixture
def schemathesis_cases(request: pytest.FixtureRequest) -> Counter[str]:
    """Generated cases per operation, summed over the session and reported at its end."""
    return request.config.stash.setdefault(SCHEMATHESIS_CASES, Counter())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    cases = config.stash.get(SCHEMATHESIS_CASES, None)
    if cases:
        terminalreporter.write_line(
            f"schemathesis: {sum(cases.values())} generated cases over {len(cases)} operations")
