"""A WAN link the tests can cut: a TCP relay between a spoke cluster's leaf node and the hub side.

One listener per hub-side server; the leaf's remote names the listeners instead of the servers.
``cut`` drops every connection through the link and refuses new ones (the leaf keeps dialling, as
it would across a dead WAN), ``restore`` lets them through again. Nothing in the leaf or the
servers knows about it, so what the test sees is what the processes do when the link dies.
"""

from __future__ import annotations

import asyncio
import contextlib


class WanLink:
    def __init__(self, targets: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.targets = targets
        self.host = host
        self.is_cut = False
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.ports: list[int] = []

    @property
    def leafnode_urls(self) -> list[str]:
        return [f"nats-leaf://{self.host}:{p}" for p in self.ports]

    async def start(self) -> None:
        for target in self.targets:
            server = await asyncio.start_server(lambda r, w, t=target: self._accept(r, w, t), self.host, 0)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      target: tuple[str, int]) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.transport.abort()  # that hub-side server is down: as a refused connection
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(dst)
            dst.transport.abort()

    def cut(self) -> None:
        """The WAN fails: every connection through it dies, and none gets through until ``restore``."""
        self.is_cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        self.cut()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pipes, return_exceptions=True)
