"""The hub API over TLS and mTLS, with certificates made by the real openssl CLI; and their rotation."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.state import FleetState
from hub.web.api import make_app
from shared.errors import ConfigurationError
from shared.web import ServerTLS, serve
from tests.hub.credentials import OPENSSL, self_signed
from tests.hub.factories import FixedPolicies as Policies

Certs = dict[str, tuple[Path, Path]]
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI to make test certificates")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    return {name: self_signed(d, name) for name in ("server", "server2", "client")}


@asynccontextmanager
async def https_api(ctx: ssl.SSLContext) -> AsyncIterator[str]:
    app = make_app(state=FleetState(), decisions=DecisionLog(), policies=Policies(), metrics=HubMetrics(),  # type: ignore[arg-type]
                   ready=lambda: {})
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, "127.0.0.1", 0, ssl_context=ctx, on_bound=bound.set_result))
    try:
        yield f"https://127.0.0.1:{await asyncio.wait_for(bound, 5)}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def trusting(cert: Path, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    if client is not None:
        ctx.load_cert_chain(*client)
    return ctx


async def get(url: str, ctx: ssl.SSLContext) -> int:
    async with aiohttp.ClientSession() as s, s.get(url, ssl=ctx) as r:
        return r.status


async def test_the_api_serves_https_to_a_client_that_trusts_its_certificate(certs: Certs) -> None:
    cert, key = certs["server"]
    async with https_api(ServerTLS(cert, key).context()) as base:
        assert await get(f"{base}/healthz", trusting(cert)) == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(f"{base}/healthz", trusting(certs["server2"][0]))  # trusts another certificate
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as s, s.get(base.replace("https", "http") + "/healthz"):
                pass


async def test_with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in(certs: Certs) -> None:
    cert, key = certs["server"]
    client_cert, client_key = certs["client"]
    async with https_api(ServerTLS(cert, key, client_ca_file=client_cert).context()) as base:
        assert await get(f"{base}/healthz", trusting(cert, (client_cert, client_key))) == 200
        with pytest.raises(aiohttp.ClientError):
            await get(f"{base}/healthz", trusting(cert))  # no client certificate
        with pytest.raises(aiohttp.ClientError):
            await get(f"{base}/healthz", trusting(cert, certs["server2"]))  # one the CA did not sign


async def test_a_rotated_certificate_is_served_without_a_restart_and_a_mismatched_pair_is_refused(
    certs: Certs, tmp_path: Path
) -> None:
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(certs["server"][0], live_cert)
    shutil.copy(certs["server"][1], live_key)
    tls = ServerTLS(live_cert, live_key)
    ctx = tls.context()
    async with https_api(ctx) as base:
        shutil.copy(certs["server2"][0], live_cert)  # the new certificate, but the old key still there
        assert tls.reload(ctx) is False
        assert await get(f"{base}/healthz", trusting(certs["server"][0])) == 200  # the old pair stays
        shutil.copy(certs["server2"][1], live_key)
        assert tls.reload(ctx) is True
        assert await get(f"{base}/healthz", trusting(certs["server2"][0])) == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(f"{base}/healthz", trusting(certs["server"][0]))


async def test_the_watch_reloads_a_changed_certificate(certs: Certs, tmp_path: Path) -> None:
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(certs["server"][0], live_cert)
    shutil.copy(certs["server"][1], live_key)
    tls = ServerTLS(live_cert, live_key)
    since = tls.fingerprint()
    ctx = tls.context()
    # Rotated after loading and before the watch starts: still picked up.
    shutil.copy(certs["server2"][0], live_cert)
    shutil.copy(certs["server2"][1], live_key)
    watcher = asyncio.create_task(tls.watch(ctx, interval_s=0.01, since=since))
    try:
        async with https_api(ctx) as base:
            async with asyncio.timeout(5):
                while True:
                    try:
                        assert await get(f"{base}/healthz", trusting(certs["server2"][0])) == 200
                        break
                    except aiohttp.ClientConnectorCertificateError:
                        await asyncio.sleep(0.02)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def test_bad_tls_files_stop_the_start_naming_the_file(certs: Certs, tmp_path: Path) -> None:
    cert, _ = certs["server"]
    with pytest.raises(ConfigurationError, match=r"cannot load .*server\.crt with key .*server2\.key"):
        ServerTLS(cert, certs["server2"][1]).context()
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"cannot load client CA .*ca\.pem"):
        ServerTLS(cert, certs["server"][1], client_ca_file=garbage).context()
