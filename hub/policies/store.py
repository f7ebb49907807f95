"""The policy store: policies in a JetStream key-value bucket, mirrored in memory (and budgets alike).

The bucket is the truth, so a hub restart loses nothing and every change has a revision (the KV
sequence) and history. Policies from a YAML file are written into the bucket at start, so files
(GitOps) and the bucket stay one store. The in-memory mirror is kept current by a watcher task and
is what the evaluator reads each tick, without a round trip.

Budgets (``hub.policy.budget``) are kept the same way in a bucket of their own: ``ObjectStore`` is
the store for either model, ``PolicyStore`` and ``BudgetStore`` its two uses, with the same sources,
ownership and revisions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import nats.errors
import nats.js.errors
import orjson
import yaml
from nats.js.kv import KeyValue
from pydantic import ValidationError

from hub.policy.budget import Budget
from hub.policy.model import Policy
from shared.errors import ConfigurationError

logger = logging.getLogger(__name__)


M = TypeVar("M", Policy, Budget)


def parse_policy_file(path: Path) -> list[Policy]:
    """Read a YAML file holding a list of policies (or ``{policies: [...]}``); name the bad field."""
    return _parse_file(path, Policy, "policy", "policies")


def parse_budget_file(path: Path) -> list[Budget]:
    """Read a YAML file holding a list of budgets (or ``{budgets: [...]}``); name the bad field."""
    return _parse_file(path, Budget, "budget", "budgets")


def _parse_file(path: Path, model: type[M], kind: str, plural: str) -> list[M]:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigurationError(f"cannot read {kind} file {path}: {e}") from e
    items = raw.get(plural, raw) if isinstance(raw, dict) else raw
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigurationError(f"{path}: expected a list of {plural} or a mapping with '{plural}'")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigurationError(f"{path}: {kind} #{i}: {loc}: {err['msg']}") from e
    return out


class Source(StrEnum):
    """Where a policy comes from. The source that created a policy owns it; the others may not edit it."""

    REST = "rest"
    CRD = "crd"
    FILE = "file"


class PolicyError(Exception):
    """A policy write that the caller must change before retrying; ``status`` is its HTTP status."""

    status = 409

    def __init__(self, policy_id: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.policy_id = policy_id
        self.details = {"id": policy_id, **details}


class PolicyNotFound(PolicyError):
    status = 404


class PolicyExists(PolicyError):
    """Create of an id that exists."""


class PolicyUnstorable(PolicyError):
    """The policy would not read back as written (a value JSON cannot hold): refused, never half-stored."""

    status = 400


class RevisionConflict(PolicyError):
    """The caller's revision is not the current one: someone changed the policy since it read it."""


class OwnershipConflict(PolicyError):
    """The policy belongs to another source (a CRD or a file): edit it there."""


@dataclass(frozen=True, slots=True)
class Stored(Generic[M]):
    policy: M
    """The stored object (a policy, or a budget in the budget store)."""
    source: Source
    updated_by: str | None = None
    created_at: datetime | None = None
    """When the policy was created (None for entries written before the store kept it)."""
    updated_at: datetime | None = None


def _storable(policy: Policy | Budget) -> dict[str, Any]:
    """The policy as stored, checked to read back as the same policy.

    NB: a policy the store wrote but could not read back (NaN stored as null) answered 201, then
    vanished from the hub, and after a restart its id answered 404 to GET and 409 to POST.
    """
    body = policy.model_dump(mode="json", exclude={"revision"})
    try:
        same = type(policy).model_validate(orjson.loads(orjson.dumps(body))).model_dump(exclude={"revision"}) == \
            policy.model_dump(exclude={"revision"})
    except (ValidationError, orjson.JSONEncodeError) as e:
        raise PolicyUnstorable(policy.id, f"policy cannot be stored: {e}", field="body") from None
    if not same:
        raise PolicyUnstorable(policy.id, "policy cannot be stored: it would not read back as written",
                               field="body")
    return body


def _encode(policy: Policy | Budget, source: Source, actor: str | None, created_at: datetime | None,
            now: datetime) -> bytes:
    # The times travel in the value because KV history is bounded: the first revision may be gone.
    return orjson.dumps({"source": source.value, "updated_by": actor,
                         "created_at": None if created_at is None else created_at.isoformat(),
                         "updated_at": now.isoformat(),
                         "policy": _storable(policy)})


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class ObjectStore(Generic[M]):
    """Policies or budgets (``model``) in one bucket; ``kind`` names them in errors and logs."""

    def __init__(self, kv: KeyValue, model: type[M], kind: str) -> None:
        self.kv = kv
        self.model: type[M] = model
        self.kind = kind
        self._entries: dict[str, Stored[M]] = {}
        self._sorted: list[M] | None = None

    def all(self) -> list[M]:
        """By id, so placement of competing workloads is stable; cached, since every tick asks."""
        if self._sorted is None:
            self._sorted = [e.policy for _, e in sorted(self._entries.items())]
        return self._sorted

    def get(self, policy_id: str) -> M | None:
        entry = self._entries.get(policy_id)
        return None if entry is None else entry.policy

    def entry(self, policy_id: str) -> Stored[M] | None:
        return self._entries.get(policy_id)

    async def load(self) -> None:
        """Fill the mirror from the bucket (used at start, before the watcher runs)."""
        try:
            keys = await self.kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
        for key in keys:
            entry = await self.kv.get(key)
            self._apply(key, entry.value, entry.revision)

    # --- writes -------------------------------------------------------------------------------
    # Each write is a compare-and-set on the KV revision, so two writers (two hubs, a REST call
    # racing a CRD change) never overwrite each other unseen.

    async def create(self, policy: M, *, source: Source, actor: str | None = None) -> M:
        if policy.id in self._entries:
            raise PolicyExists(policy.id, f"{self.kind} exists", owner=self._entries[policy.id].source.value)
        now = datetime.now(UTC)
        try:
            revision = await self.kv.create(policy.id, _encode(policy, source, actor, now, now))
        except nats.js.errors.KeyWrongLastSequenceError:
            raise PolicyExists(policy.id, f"{self.kind} exists") from None
        return self._stored(policy, source, actor, revision, now, now)

    async def update(
        self, policy: M, *, source: Source, expected_revision: int | None = None, actor: str | None = None
    ) -> M:
        current = self._owned(policy.id, source)
        if expected_revision is not None and expected_revision != current.policy.revision:
            raise RevisionConflict(policy.id, "stale revision", expected=expected_revision,
                                   current=current.policy.revision)
        now = datetime.now(UTC)
        value = _encode(policy, source, actor, current.created_at, now)
        try:
            revision = await self.kv.update(policy.id, value, last=current.policy.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RevisionConflict(policy.id, "changed concurrently", expected=current.policy.revision) from None
        return self._stored(policy, source, actor, revision, current.created_at, now)

    async def delete(self, policy_id: str, *, source: Source, expected_revision: int | None = None) -> None:
        current = self._owned(policy_id, source)
        if expected_revision is not None and expected_revision != current.policy.revision:
            raise RevisionConflict(policy_id, "stale revision", expected=expected_revision,
                                   current=current.policy.revision)
        await self.kv.delete(policy_id, last=current.policy.revision)
        self._entries.pop(policy_id, None)
        self._sorted = None

    async def put(self, policy: M, *, source: Source, actor: str | None = None) -> M:
        """Create or update regardless of revision (still refusing another source's policy)."""
        if policy.id not in self._entries:
            return await self.create(policy, source=source, actor=actor)
        return await self.update(policy, source=source, actor=actor)

    async def sync(self, policies: list[M], *, source: Source) -> list[PolicyError]:
        """Make ``source``'s policies in the store exactly ``policies`` (a file or the CRDs).

        Unchanged policies are not rewritten (no revision bump on every restart). A policy that
        another source owns is left alone and reported.
        """
        refused: list[PolicyError] = []
        wanted = {p.id: p for p in policies}
        for policy in policies:
            if self._holds(policy, source):
                continue
            try:
                await self.put(policy, source=source)
            except PolicyError as e:
                if isinstance(e, PolicyExists | RevisionConflict) and await self._reread(policy.id) \
                        and self._holds(policy, source):
                    continue  # another hub synced the same file first (sharded hubs share one store)
                logger.error("%s %r from %s refused: %s %s", self.kind, policy.id, source.value, e, e.details)
                refused.append(e)
        for policy_id, entry in list(self._entries.items()):
            if entry.source is source and policy_id not in wanted:
                await self.delete(policy_id, source=source)
        return refused

    def _holds(self, policy: M, source: Source) -> bool:
        """Whether the store already has ``policy`` (any revision) from ``source``."""
        current = self._entries.get(policy.id)
        return current is not None and current.source is source and current.policy.model_dump(
            exclude={"revision"}) == policy.model_dump(exclude={"revision"})

    async def _reread(self, policy_id: str) -> bool:
        """Read one key again after a write lost a race (the watch may not have brought it yet)."""
        try:
            entry = await self.kv.get(policy_id)
        except (nats.js.errors.KeyNotFoundError, nats.errors.Error):
            return False
        self._apply(policy_id, entry.value, entry.revision)
        return True

    def _owned(self, policy_id: str, source: Source) -> Stored[M]:
        current = self._entries.get(policy_id)
        if current is None:
            raise PolicyNotFound(policy_id, f"{self.kind} not found")
        if current.source is not source:
            raise OwnershipConflict(policy_id, f"{self.kind} is owned by its {current.source.value} source; "
                                    "change it there",
                                    owner=current.source.value)
        return current

    def _stored(self, policy: M, source: Source, actor: str | None, revision: int,
                created_at: datetime | None, updated_at: datetime) -> M:
        stored = policy.with_revision(revision)
        self._entries[policy.id] = Stored(stored, source, actor, created_at, updated_at)
        self._sorted = None
        return stored

    def _apply(self, key: str, value: bytes | None, revision: int | None) -> None:
        current = self._entries.get(key)
        if value and current is not None and revision is not None and current.policy.revision == revision:
            # Our own write coming back through the watch (or one already applied): the same revision
            # of a key is the same value. NB: replaced anyway, every one of 10,000 policies loaded at
            # start made a new list, which each evaluation compared with the last one, policy by policy.
            return
        self._sorted = None
        if not value:
            self._entries.pop(key, None)
            return
        if revision is None:  # nats-py types it Optional; an entry read from the stream has its sequence
            logger.error("%s %r in the bucket came without a revision and is ignored", self.kind, key)
            return
        try:
            raw = orjson.loads(value)
            self._entries[key] = Stored(self.model.model_validate(raw["policy"]).with_revision(revision),
                                        Source(raw["source"]), raw.get("updated_by"),
                                        _time(raw.get("created_at")), _time(raw.get("updated_at")))
        except (ValidationError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            logger.error("%s %r in the bucket is invalid and is ignored: %s", self.kind, key, e)

    async def watcher(self, changes: AsyncIterator[KeyValue.Entry]) -> None:
        """Keep the mirror current with changes made by other writers (another hub, a restore).

        ``changes`` is ``Bus.kv_changes(store.kv)``, which outlives NATS outages.
        """
        async for entry in changes:
            deleted = entry.operation in ("DEL", "PURGE")
            self._apply(entry.key, None if deleted else entry.value, entry.revision)


class PolicyStore(ObjectStore[Policy]):
    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv, Policy, "policy")


class BudgetStore(ObjectStore[Budget]):
    """Budgets, stored as policies are (the value's ``policy`` key holds the budget)."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv, Budget, "budget")
