"""The policy store: policies in a JetStream key-value bucket, mirrored in memory.

The bucket is the truth, so a hub restart loses nothing and every change has a revision (the KV
sequence) and history. Policies from a YAML file are written into the bucket at start, so files
(GitOps) and the bucket stay one store. The in-memory mirror is kept current by a watcher task and
is what the evaluator reads each tick, without a round trip.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nats.js.errors
import orjson
import yaml
from nats.js.kv import KeyValue
from pydantic import ValidationError

from hub.policy.model import Policy
from shared.errors import ConfigurationError

logger = logging.getLogger(__name__)


def parse_policy_file(path: Path) -> list[Policy]:
    """Read a YAML file holding a list of policies (or ``{policies: [...]}``); name the bad field."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigurationError(f"cannot read policy file {path}: {e}") from e
    items = raw.get("policies", raw) if isinstance(raw, dict) else raw
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigurationError(f"{path}: expected a list of policies or a mapping with 'policies'")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Policy.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigurationError(f"{path}: policy #{i}: {loc}: {err['msg']}") from e
    return out


class PolicyStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self._policies: dict[str, Policy] = {}
        self._sorted: list[Policy] | None = None

    def all(self) -> list[Policy]:
        """By id, so placement of competing workloads is stable; cached, since every tick asks."""
        if self._sorted is None:
            self._sorted = sorted(self._policies.values(), key=lambda p: p.id)
        return self._sorted

    def get(self, policy_id: str) -> Policy | None:
        return self._policies.get(policy_id)

    async def load(self) -> None:
        """Fill the mirror from the bucket (used at start, before the watcher runs)."""
        try:
            keys = await self.kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
        for key in keys:
            entry = await self.kv.get(key)
            self._apply(key, entry.value, entry.revision)

    async def put(self, policy: Policy) -> Policy:
        data = orjson.dumps(policy.model_dump(mode="json", exclude={"revision"}))
        revision = await self.kv.put(policy.id, data)  # ids are valid KV keys by construction
        stored = policy.with_revision(revision)
        self._policies[policy.id] = stored
        self._sorted = None
        return stored

    async def delete(self, policy_id: str) -> None:
        await self.kv.delete(policy_id)
        self._policies.pop(policy_id, None)
        self._sorted = None

    async def import_file(self, path: Path) -> list[Policy]:
        policies = parse_policy_file(path)
        stored = []
        for policy in policies:
            current = self._policies.get(policy.id)
            if current is not None and current.model_dump(exclude={"revision"}) == policy.model_dump(
                exclude={"revision"}
            ):
                stored.append(current)  # unchanged: do not bump the revision on every restart
                continue
            stored.append(await self.put(policy))
        logger.info("loaded %d policies from %s", len(policies), path)
        return stored

    def _apply(self, key: str, value: bytes | None, revision: int) -> None:
        self._sorted = None
        if not value:
            self._policies.pop(key, None)
            return
        try:
            self._policies[key] = Policy.model_validate_json(value).with_revision(revision)
        except ValidationError as e:
            logger.error("policy %r in the bucket is invalid and is ignored: %s", key, e)

    async def watcher(self) -> None:
        """Keep the mirror current with changes made by other writers (another hub, a restore)."""
        watch = await self.kv.watchall()
        try:
            async for entry in watch:
                if entry is None:
                    continue  # end of the initial values
                deleted = entry.operation in ("DEL", "PURGE")
                self._apply(entry.key, None if deleted else entry.value, entry.revision)
        finally:
            await watch.stop()
