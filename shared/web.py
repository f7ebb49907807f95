"""Embedding an aiohttp app as one root task: bind, serve until cancelled, always clean up; and its TLS.

TLS certificates rotate (cert-manager renews a Secret well before expiry), so ``ServerTLS`` can watch
its files and load a new certificate into the *same* ``SSLContext``: the listening socket keeps it,
and every handshake after the reload uses the new certificate. A new pair is loaded into a scratch
context first, so a half-updated pair (new certificate, old key) is refused and the old pair stays.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .errors import ConfigurationError
from .filewatch import fingerprint, watch_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """A server's certificate and key, and optionally the CA its clients' certificates must chain to."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.cert_file, self.key_file, self.client_ca_file) if p is not None]

    def context(self) -> ssl.SSLContext:
        """A server context with these files loaded; ``ConfigurationError`` naming the file at fault."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load(ctx)
        return ctx

    def _load(self, ctx: ssl.SSLContext) -> None:
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigurationError(f"TLS: cannot load {self.cert_file} with key {self.key_file}: {e}") from None
        if self.client_ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (ssl.SSLError, OSError) as e:
                raise ConfigurationError(f"TLS: cannot load client CA {self.client_ca_file}: {e}") from None
            ctx.verify_mode = ssl.CERT_REQUIRED

    def reload(self, ctx: ssl.SSLContext) -> bool:
        """Load the files again into ``ctx``; on any error keep what ``ctx`` has and return False.

        NB: a client CA can be added this way but not removed (OpenSSL's store only grows); dropping
        a CA from the trusted set takes a restart.
        """
        try:
            self.context()  # the whole set must load on its own before the live context is touched
            self._load(ctx)
        except ConfigurationError as e:
            logger.error("TLS files not reloaded, the previous certificate stays in use: %s", e)
            return False
        logger.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    def fingerprint(self) -> bytes:
        """Take it before ``context()`` and hand it to ``watch``, so no change in between is missed."""
        return fingerprint(self.paths)

    async def watch(
        self,
        ctx: ssl.SSLContext,
        *,
        interval_s: float,
        since: bytes | None = None,
        on_failed: Callable[[], None] | None = None,
    ) -> None:
        """Reload into ``ctx`` whenever the files change. Runs forever."""

        def reload() -> None:
            if not self.reload(ctx) and on_failed is not None:
                on_failed()

        await watch_files(self.paths, reload, interval_s=interval_s, since=since)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    on_bound: Callable[[int], None] | None = None,
) -> None:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        if on_bound is not None:
            server = site._server  # aiohttp has no public accessor for the bound port (port 0)
            sockets = getattr(server, "sockets", None) or []
            on_bound(sockets[0].getsockname()[1] if sockets else port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
