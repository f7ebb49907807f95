"""The running hub's API behind tokens from a mounted Secret and TLS, as the chart deploys it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import running_hub
from tests.hub.credentials import OPENSSL, secret_volume, self_signed

pytestmark = [pytest.mark.nats, pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI")]

VIEWER = "viewer-token-0123456789"
ROTATED = "rotated-token-0123456789"


async def test_the_hub_serves_https_to_token_holders_and_picks_up_a_rotated_secret(
    nats_url: str, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "hub")
    secret = secret_volume(tmp_path / "tokens", {"grafana.viewer": VIEWER})
    trust = ssl.create_default_context(cafile=str(cert))
    async with (
        running_hub(nats_url, auth_tokens_dir=secret, auth_reload_interval_s=0.05,
                    tls_cert_file=cert, tls_key_file=key) as hub,
        aiohttp.ClientSession() as s,
    ):
        assert hub.api_scheme == "https"
        base = f"https://127.0.0.1:{hub.api_port}"

        async def status(path: str, token: str | None = None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with s.get(base + path, ssl=trust, headers=headers) as r:
                return r.status

        assert await status("/healthz") == 200
        assert await status("/api/v1/clusters") == 401
        assert await status("/api/v1/clusters", VIEWER) == 200
        secret_volume(secret, {"grafana.viewer": ROTATED}, version="v2")  # the kubelet's update
        async with asyncio.timeout(5):
            while await status("/api/v1/clusters", ROTATED) != 200:
                await asyncio.sleep(0.05)
        assert await status("/api/v1/clusters", VIEWER) == 401
        assert hub.metrics.auth_tokens._value.get() == 1
