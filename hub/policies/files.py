"""Policy files: ``HUB_POLICY_FILE`` and every ``*.yaml``/``*.yml`` in ``HUB_POLICY_DIR``, as one source.

The files are the FILE source of the policy store: their union is synced with
``PolicyStore.sync(source=FILE)``, so adding, changing or removing a file adds, changes or removes
its policies, and a policy another source owns is refused (and logged), never overwritten.

**Polling, not inotify or SIGHUP.** A ConfigMap volume is updated by an atomic swap of its ``..data``
symlink, and git-sync swaps a symlinked worktree; an inotify watch on the directory would miss a
swap one level down, and SIGHUP needs someone to send it. Every ``HUB_POLICY_POLL_S`` (2 s) the
files' contents are hashed (``shared.filewatch``, as for tokens and certificates: contents, not
mtimes, so two writes within one mtime tick are not missed); policy files are small.

**A bad file never deletes policies.** A file that does not parse (or repeats an id another file
has) is reported, naming the file, the policy and the field, and the others still apply. Its
policies stay as they were last read from it; if it was never read well in this process (a hub
restarted with a broken ConfigMap) nothing is removed at all until it parses, since the store cannot
tell which of its stored policies came from that file. The same holds for a directory that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

from hub.policies.store import (
    BudgetStore,
    M,
    ObjectStore,
    PolicyError,
    PolicyStore,
    Source,
    parse_budget_file,
    parse_policy_file,
)
from hub.policy.budget import Budget
from hub.policy.model import Policy
from shared import filewatch
from shared.errors import ConfigurationError

logger = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Reading(Generic[M]):
    """What the files say right now: the policies to sync, and what was wrong, by file."""

    policies: tuple[M, ...]
    origin: dict[str, Path]
    """Policy id → the file it came from."""
    errors: dict[Path, list[str]] = field(default_factory=dict)
    complete: bool = True
    """False when some file's policies are unknown: then nothing may be removed from the store."""


class ObjectFiles(Generic[M]):
    """Reads the policy file and directory; keeps the store's FILE policies equal to them.

    ``PolicyFiles`` for policies, ``BudgetFiles`` for budgets: the same rules for both."""

    setting = "HUB_POLICY"
    """The settings' prefix, for errors (``HUB_POLICY_FILE``, ``HUB_POLICY_DIR``)."""

    def __init__(
        self,
        store: ObjectStore[M],
        *,
        file: Path | None = None,
        directory: Path | None = None,
        poll_s: float = 2.0,
        resync_s: float = 60.0,
    ) -> None:
        self.store: ObjectStore[M] = store
        self.file = file
        self.directory = directory
        self.poll_s = poll_s
        self.resync_s = resync_s
        self.errors: dict[Path, list[str]] = {}
        """The last reading's problems by file, for operators (empty when every file is good)."""
        self.refused: list[PolicyError] = []
        """Policies of the last sync that the store refused (owned by another source)."""
        self._last_good: dict[Path, list[M]] = {}
        self._reading: Reading[M] | None = None
        self._seen = b""

    def check(self) -> None:
        """Fail fast on a configured path that does not exist (a typo), before the hub starts."""
        if self.file is not None and not self.file.is_file():
            raise ConfigurationError(f"{self.setting}_FILE {self.file}: no such file")
        if self.directory is not None and not self.directory.is_dir():
            raise ConfigurationError(f"{self.setting}_DIR {self.directory}: no such directory")

    # --- reading --------------------------------------------------------------------------------

    def paths(self) -> list[Path]:
        """The policy file, then the directory's YAML files by name; each file once."""
        out: list[Path] = [] if self.file is None else [self.file]
        if self.directory is not None:
            # Hidden entries are skipped: a ConfigMap volume holds ..data and ..<timestamp> links.
            out += [p for p in filewatch.visible_files(self.directory) if p.suffix in SUFFIXES]
        seen: set[Path] = set()
        unique = []
        for p in out:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                unique.append(p)
        return unique

    def fingerprint(self) -> bytes:
        """A digest of the files' contents: what changes when any is added, removed or rewritten."""
        roots = [p for p in (self.file, self.directory) if p is not None]
        return filewatch.fingerprint(roots)

    def parse(self, path: Path) -> list[M]:
        raise NotImplementedError

    def read(self) -> Reading[M]:
        """Parse every file; a bad one is reported and stands in with its last good policies."""
        errors: dict[Path, list[str]] = {}
        complete = True
        try:
            paths = self.paths()
        except OSError as e:
            assert self.directory is not None  # only the directory listing can fail here
            errors[self.directory] = [f"{self.directory}: cannot list the {self.store.kind} directory: {e}"]
            paths = [self.file] if self.file is not None else []
            complete = False
        policies: dict[str, M] = {}
        origin: dict[str, Path] = {}
        for path in paths:
            try:
                found = self.parse(path)
                _check_unique_in_file(path, found)
            except ConfigurationError as e:
                errors.setdefault(path, []).append(str(e))
                if path not in self._last_good:
                    complete = False
                    continue
                found = self._last_good[path]
            else:
                self._last_good[path] = found
            for policy in found:
                if policy.id in origin:
                    errors.setdefault(path, []).append(
                        f"{path}: {self.store.kind} {policy.id!r} is also in {origin[policy.id]}; the copy in "
                        f"{origin[policy.id]} applies"
                    )
                    continue
                policies[policy.id] = policy
                origin[policy.id] = path
        for gone in set(self._last_good) - set(paths):
            del self._last_good[gone]
        return Reading(tuple(policies.values()), origin, errors, complete)

    # --- syncing --------------------------------------------------------------------------------

    async def apply(self, reading: Reading[M] | None = None) -> Reading[M]:
        """Sync the store to ``reading`` (default: read the files now)."""
        seen = self._seen
        if reading is None:
            seen, read = await asyncio.to_thread(self._fingerprint_and_read)
            reading = read
            for messages in reading.errors.values():
                for message in messages:  # each names its file
                    logger.error("%s file refused: %s", self.store.kind, message)
        wanted = list(reading.policies)
        if not reading.complete:
            # Keep every FILE policy the files no longer vouch for: we cannot tell whose it was.
            known = {p.id for p in wanted}
            wanted += [p for p in self.store.all() if p.id not in known and self._is_file_policy(p.id)]
        self.refused = await self.store.sync(wanted, source=Source.FILE)
        self.errors = reading.errors
        self._reading, self._seen = reading, seen
        return reading

    def _fingerprint_and_read(self) -> tuple[bytes, Reading[M]]:
        return self.fingerprint(), self.read()

    def _is_file_policy(self, policy_id: str) -> bool:
        entry = self.store.entry(policy_id)
        return entry is not None and entry.source is Source.FILE

    async def watcher(self) -> None:
        """Re-read when a file changes; re-apply every ``resync_s`` so a refused policy can take over."""
        if self._reading is None:
            await self.apply()
        synced_at = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            changed = await asyncio.to_thread(self.fingerprint) != self._seen
            if not changed and time.monotonic() - synced_at < self.resync_s:
                continue
            try:
                await self.apply(None if changed else self._reading)
            except Exception as e:  # a store or bus failure: the next poll retries
                logger.warning("syncing %s files failed (%s: %s); will retry in %gs", self.store.kind,
                               type(e).__name__, e, self.poll_s)
                continue
            synced_at = time.monotonic()


def _check_unique_in_file(path: Path, policies: Sequence[Policy | Budget]) -> None:
    ids = [p.id for p in policies]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigurationError(f"{path}: id {', '.join(map(repr, dupes))} given more than once")


class PolicyFiles(ObjectFiles[Policy]):
    def __init__(self, store: PolicyStore, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)

    def parse(self, path: Path) -> list[Policy]:
        return parse_policy_file(path)


class BudgetFiles(ObjectFiles[Budget]):
    """``HUB_BUDGET_FILE`` and ``HUB_BUDGET_DIR``: budgets as files, with the rules of policy files."""

    setting = "HUB_BUDGET"

    def __init__(self, store: BudgetStore, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)

    def parse(self, path: Path) -> list[Budget]:
        return parse_budget_file(path)
