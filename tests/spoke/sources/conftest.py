"""Fixtures for the telemetry-source tests: a real local HTTP server and a client session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from source_helpers import backfill_openmetrics


class MetricsServer:
    """A real local HTTP server whose ``/metrics`` body (and status) each test sets."""

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}
        self.status = 200
        self.base_url = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path not in self.bodies:
            raise web.HTTPNotFound()
        return web.Response(text=self.bodies[request.path], status=self.status, content_type="text/plain")


@pytest.fixture
async def metrics_server() -> AsyncIterator[MetricsServer]:
    server = MetricsServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server._handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


PROMETHEUS_START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus (the ``prometheus`` Debian package) serving backfilled series.

    The series are written as OpenMetrics with timestamps over the last two minutes and turned into
    TSDB blocks by ``promtool tsdb create-blocks-from openmetrics``: queryable at once and
    deterministic, unlike a live scrape (whose first sample lands ~6 s after start).
    """
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("needs the prometheus and promtool binaries (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("prometheus")
    (root / "data.om").write_text(backfill_openmetrics(int(time.time())))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "tsdb")],
        check=True,
        capture_output=True,
    )
    (root / "prometheus.yml").write_text("scrape_configs: []\n")
    port = _free_port()
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROMETHEUS_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(root / 'prometheus.log').read_text()}")
            time.sleep(0.05)  # a real Prometheus process starting: it has no event to await but its /-/ready
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
