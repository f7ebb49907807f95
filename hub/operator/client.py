"""The HTTP client: where the hub is, who we are, and what an answer means for the caller.

Errors are classified by what a script should do with them, and each maps to one exit code
(``ExitCode``), the way kubectl and curl give scripts something to branch on: a bad token is not a
missing object, and neither is a hub that cannot be reached.
"""

from __future__ import annotations

import enum
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

DEFAULT_HUB = "http://127.0.0.1:8080"


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    """The hub refused the request (4xx other than below) or failed (5xx)."""
    USAGE = 2
    AUTH = 3
    """No token, a wrong token (401) or a role too low for the verb (403)."""
    NOT_FOUND = 4
    CONFLICT = 5
    """A stale revision, another owner (409), a missing precondition (428)."""
    UNREACHABLE = 6
    """No answer: connection refused, DNS, TLS or a time-out."""


class OperatorError(Exception):
    def __init__(self, message: str, code: ExitCode, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details


def _code_of(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (409, 412, 428):
        return ExitCode.CONFLICT
    return ExitCode.ERROR


@dataclass(frozen=True)
class Connection:
    """Where the hub is and how to authenticate; flags win over the environment."""

    url: str = DEFAULT_HUB
    token: str | None = None
    ca_file: Path | None = None
    timeout_s: float = 10.0

    @classmethod
    def resolve(
        cls, url: str | None, token: str | None, token_file: str | None, ca_file: str | None, timeout_s: float
    ) -> Connection:
        env = os.environ
        url = url or env.get("FLEETSCALE_HUB") or DEFAULT_HUB
        token_file = token_file or env.get("FLEETSCALE_TOKEN_FILE")
        if token is None and token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as e:
                raise OperatorError(f"cannot read the token file {token_file}: {e.strerror}", ExitCode.USAGE) from e
        token = token or env.get("FLEETSCALE_TOKEN") or None
        ca = ca_file or env.get("FLEETSCALE_CA_FILE")
        return cls(url=url.rstrip("/"), token=token, ca_file=Path(ca) if ca else None, timeout_s=timeout_s)


class HubClient:
    """One aiohttp session; ``request`` returns the decoded JSON body or raises ``OperatorError``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubClient:
        headers = {"Accept": "application/json"}
        if self.connection.token:
            headers["Authorization"] = f"Bearer {self.connection.token}"
        ssl_ctx = ssl.create_default_context(cafile=str(self.connection.ca_file)) if self.connection.ca_file else None
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.connection.timeout_s),
            connector=aiohttp.TCPConnector(ssl=ssl_ctx) if ssl_ctx else None,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        assert self._session is not None, "use HubClient as an async context manager"
        url = self.connection.url + path
        data = None
        send_headers = dict(headers or {})
        if body is not None:
            data = orjson.dumps(body)
            send_headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(method, url, data=data, params=params, headers=send_headers) as resp:
                raw = await resp.read()
                payload = _decode(raw)
                if resp.status >= 400:
                    raise _api_error(resp.status, payload, self.connection)
                return payload, dict(resp.headers)
        except aiohttp.ClientError as e:
            raise OperatorError(f"cannot reach the hub at {self.connection.url}: {e}", ExitCode.UNREACHABLE) from e
        except TimeoutError as e:
            raise OperatorError(
                f"the hub at {self.connection.url} did not answer within {self.connection.timeout_s:g} s",
                ExitCode.UNREACHABLE,
            ) from e

    async def get(self, path: str, **params: str | None) -> Any:
        body, _ = await self.request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return body


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


def _api_error(status: int, payload: Any, connection: Connection) -> OperatorError:
    message = payload.get("error") if isinstance(payload, dict) else None
    details = payload.get("details") if isinstance(payload, dict) else payload
    text = f"HTTP {status}: {message or 'error'}"
    if status == 401:
        hint = "no token given" if not connection.token else "the token was refused"
        text += f" ({hint}; set FLEETSCALE_TOKEN, FLEETSCALE_TOKEN_FILE or --token-file)"
    elif status == 403:
        text += " (the token's role may not do this)"
    return OperatorError(text, _code_of(status), details)
