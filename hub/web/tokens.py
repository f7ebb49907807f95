"""API bearer tokens: where they come from, how they are held, how a presented token is looked up.

Two sources, usable together:

* a YAML file (``HUB_AUTH_TOKENS_FILE``): a list of ``{name, role, token}`` (or ``token_sha256``, the
  hex SHA-256 of the token, so the file need not hold the secret itself), or ``{tokens: [...]}``;
* a directory (``HUB_AUTH_TOKENS_DIR``), which is how a Kubernetes Secret is mounted: each key is a
  file. A key named ``<name>.<role>`` holds one token (``grafana.viewer``); a key named
  ``tokens.yaml`` holds the file format above. Hidden entries (the volume's ``..data``) are skipped.

Only the SHA-256 of each token is kept in memory. A presented token is hashed and compared, in
constant time, with every known digest; the loop never stops early, so the time taken does not say
which entry (if any) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from hub.metrics import HubMetrics
from hub.web.auth import Principal, Role
from shared.errors import ConfigurationError
from shared.filewatch import fingerprint, visible_files, watch_files

logger = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
"""Shorter tokens are refused: a bearer token is a password that never expires, so it must not be guessable."""

TOKENS_FILE_KEYS = ("tokens.yaml", "tokens.yml")


@dataclass(frozen=True, slots=True)
class Credential:
    principal: Principal
    digest: bytes
    source: str
    """Where it was read from (file and entry), for error messages; never the token."""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenEntry(BaseModel):
    """One entry of a tokens file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9_@.-]{0,126}[A-Za-z0-9])?$")
    role: Role
    token: SecretStr | None = Field(default=None, min_length=MIN_TOKEN_LENGTH)
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token and token_sha256")
        return self

    def digest(self) -> bytes:
        if self.token is not None:
            return token_digest(self.token.get_secret_value())
        return bytes.fromhex(self.token_sha256 or "")


def parse_tokens_yaml(text: str, source: str) -> list[Credential]:
    """Parse the tokens file format; errors name the source, the entry and the field, never the token."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        # NB: not str(e): PyYAML quotes the lines around the error, which can be a token.
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigurationError(f"{source}: not valid YAML{where}: {getattr(e, 'problem', None) or 'parse error'}") \
            from None
    items = raw.get("tokens", raw) if isinstance(raw, dict) else raw
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigurationError(f"{source}: expected a list of {{name, role, token}} or a mapping with 'tokens'")
    out = []
    for i, item in enumerate(items):
        try:
            entry = TokenEntry.model_validate(item)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "<entry>"
            # NB: err["input"] is left out on purpose: it can be the token itself.
            raise ConfigurationError(f"{source}: token #{i}: {loc}: {err['msg']}") from None
        out.append(Credential(Principal(entry.name, entry.role), entry.digest(), f"{source}#{i} ({entry.name})"))
    return out


def read_tokens_file(path: Path) -> list[Credential]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigurationError(f"cannot read tokens file {path}: {e.strerror}") from None
    return parse_tokens_yaml(text, str(path))


_KEY = re.compile(r"^(?P<name>[A-Za-z0-9]([A-Za-z0-9_@.-]{0,126}[A-Za-z0-9])?)\.(?P<role>[a-z]+)$")


def read_tokens_dir(directory: Path) -> list[Credential]:
    """Read a mounted Secret: ``<name>.<role>`` files hold one token each, ``tokens.yaml`` a list."""
    try:
        files = visible_files(directory)
    except OSError as e:
        raise ConfigurationError(f"cannot read tokens directory {directory}: {e.strerror}") from None
    out: list[Credential] = []
    for f in files:
        try:
            text = f.read_text()
        except OSError as e:
            raise ConfigurationError(f"cannot read {f}: {e.strerror}") from None
        if f.name in TOKENS_FILE_KEYS:
            out += parse_tokens_yaml(text, str(f))
            continue
        m = _KEY.match(f.name)
        if m is None or m["role"] not in {r.value for r in Role}:
            roles = ", ".join(r.value for r in Role)
            raise ConfigurationError(
                f"{f}: a key of the tokens Secret is `<name>.<role>` (role one of {roles}) or tokens.yaml"
            )
        token = text.strip()  # `kubectl create secret --from-file` keeps a trailing newline
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(f"{f}: the token is shorter than {MIN_TOKEN_LENGTH} characters")
        out.append(Credential(Principal(m["name"], Role(m["role"])), token_digest(token), str(f)))
    return out


@dataclass(frozen=True, slots=True)
class TokenSource:
    """The configured token sources; ``load`` reads them all, checked, or raises ``ConfigurationError``."""

    file: Path | None = None
    directory: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.file, self.directory) if p is not None]

    def load(self) -> list[Credential]:
        creds: list[Credential] = []
        if self.file is not None:
            creds += read_tokens_file(self.file)
        if self.directory is not None:
            creds += read_tokens_dir(self.directory)
        seen: dict[bytes, Credential] = {}
        for c in creds:
            if c.digest in seen:
                raise ConfigurationError(f"the same token is given twice: {seen[c.digest].source} and {c.source}")
            seen[c.digest] = c
        return creds


class TokenTable:
    """The tokens in force; ``replace`` swaps them all at once (rotation), ``lookup`` checks one.

    Built from a ``TokenSource``, it can ``watch`` the source and reload on change. A changed source
    that does not load (a half-written file, a bad entry) is logged and counted, and the tokens in
    force stay; the next change is tried again.
    """

    def __init__(
        self,
        credentials: Sequence[Credential] = (),
        *,
        source: TokenSource | None = None,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self._credentials: tuple[Credential, ...] = ()
        self._loaded_from: bytes | None = None
        self.replace(credentials)

    @classmethod
    def load(cls, source: TokenSource, *, metrics: HubMetrics | None = None) -> TokenTable:
        """Read the source now; raise ``ConfigurationError`` if it is wrong (the hub must not start)."""
        loaded_from = fingerprint(source.paths)  # before reading: a change after it is seen by watch
        table = cls(source.load(), source=source, metrics=metrics)
        table._loaded_from = loaded_from
        if not table:
            logger.warning("no API tokens in %s: every API request except open paths will be refused",
                           ", ".join(map(str, source.paths)))
        return table

    def replace(self, credentials: Sequence[Credential]) -> None:
        self._credentials = tuple(credentials)
        if self.metrics is not None:
            self.metrics.auth_tokens.set(len(self._credentials))

    def reload(self) -> bool:
        if self.source is None:
            return False
        try:
            credentials = self.source.load()
        except ConfigurationError as e:
            if self.metrics is not None:
                self.metrics.reload_failures.labels("tokens").inc()
            logger.error("API tokens not reloaded, the %d in force stay: %s", len(self), e)
            return False
        self.replace(credentials)
        logger.info("API tokens reloaded: %d (%s)", len(credentials),
                    ", ".join(sorted({f"{c.principal.name}/{c.principal.role.value}" for c in credentials})))
        return True

    async def watch(self, *, interval_s: float) -> None:
        """Reload whenever the source's files change. Runs forever (a root task of the hub)."""
        if self.source is None:
            raise ValueError("a token table without a source has nothing to watch")
        await watch_files(self.source.paths, self.reload, interval_s=interval_s, since=self._loaded_from)

    def __len__(self) -> int:
        return len(self._credentials)

    def lookup(self, token: str) -> Principal | None:
        """The principal whose token this is, or None, in time independent of which entry matches."""
        digest = token_digest(token)
        found: Principal | None = None
        for c in self._credentials:  # NB: no early exit, see the module docstring
            if hmac.compare_digest(digest, c.digest) and found is None:
                found = c.principal
        return found
