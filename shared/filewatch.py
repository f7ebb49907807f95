"""Watching small credential files (tokens, certificates) so they can rotate without a restart.

Change is detected by content, not by mtime: a Kubernetes Secret volume swaps a ``..data`` symlink
atomically (file mtimes there say little), and two writes within one mtime tick would look like
none. The files are small, so reading them every few seconds costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def visible_files(directory: Path) -> list[Path]:
    """The regular files of a directory, by name, without hidden ones (a Secret volume's ``..data``)."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.is_file())


def fingerprint(paths: Sequence[Path]) -> bytes:
    """A digest of the contents of ``paths`` (a directory counts as its visible files); missing counts too."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path).encode() + b"\0")
        try:
            files = visible_files(path) if path.is_dir() else [path]
            for f in files:
                h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        except OSError as e:
            h.update(f"unreadable: {e.errno}".encode())
    return h.digest()


async def watch_files(
    paths: Sequence[Path], on_change: Callable[[], object], *, interval_s: float, since: bytes | None = None
) -> None:
    """Call ``on_change`` each time the contents of ``paths`` differ from the last check. Runs forever.

    ``since`` is the fingerprint taken just *before* the caller loaded the files, so a change made
    between that load and the start of this watch is not missed. ``on_change`` loads the files itself
    and must not raise for bad content (it keeps what it had); if it does raise, the error is logged
    and the watch goes on.
    """
    last = since if since is not None else await asyncio.to_thread(fingerprint, paths)
    while True:
        await asyncio.sleep(interval_s)
        now = await asyncio.to_thread(fingerprint, paths)
        if now == last:
            continue
        last = now
        try:
            on_change()
        except Exception:
            logger.exception("reloading %s failed; the previous contents stay in use", ", ".join(map(str, paths)))
