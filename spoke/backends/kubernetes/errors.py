"""Kubernetes API failures, classified by what the caller should do about them.

kubernetes-asyncio raises one ``ApiException`` for every HTTP status and lets aiohttp's errors
through for transport failures. This module is the only place that looks at those: each call in
``client.py`` runs inside ``translating(access)``, which re-raises an ``ApplyError`` whose
``temporary`` flag tells the executor whether re-delivery can help:

* 404 → permanent ``not_found`` (``NotFoundError``, so discovery can skip vanished objects);
* 409 → temporary ``backend_error`` (``ConflictError``, so the scaler can redo its read-modify-write);
* 403 → permanent ``forbidden`` with the exact RBAC rule to grant (verb, resource, subresource);
* 401 → temporary: a rotated service-account token is re-read by the client on the next call;
* 429 and 5xx → temporary, delayed by ``Retry-After`` when the server sent one;
* 400/422 → permanent ``invalid`` (the object we built was refused);
* connection errors and timeouts → temporary.

Reads (inventory, discovery) raise the same errors; they are ``TemporaryError``/``PermanentError``
subclasses, so the reporter can treat them like any other source failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from shared.messages import ResultReason
from spoke.backend import ApplyError, PermanentApplyError, TemporaryApplyError

MAX_DETAIL_CHARS = 300
"""API error bodies can carry whole objects; only this much of the server's message is kept."""


@dataclass(frozen=True, slots=True)
class Access:
    """What a request tried to do, in RBAC terms, so a 403 can say which rule is missing."""

    verb: str
    resource: str
    group: str = ""
    subresource: str | None = None
    namespace: str | None = None

    @property
    def rule(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = self.group or "core"
        return f'"{self.verb}" on "{resource}" (apiGroup {group!r})'

    @property
    def scope(self) -> str:
        return f"namespace {self.namespace!r}" if self.namespace else "the cluster"


class NotFoundError(PermanentApplyError):
    """The object (or the resource type itself) does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(ResultReason.NOT_FOUND, message)


class ConflictError(TemporaryApplyError):
    """A write lost a race (stale resourceVersion, or the object already exists)."""

    def __init__(self, message: str, *, delay_s: float) -> None:
        super().__init__(ResultReason.BACKEND_ERROR, message, delay_s=delay_s)


class ForbiddenError(PermanentApplyError):
    def __init__(self, message: str) -> None:
        super().__init__(ResultReason.FORBIDDEN, message)


def classify(exc: BaseException, access: Access, *, target: str = "", backoff_s: float = 2.0) -> ApplyError:
    """The ``ApplyError`` that tells the caller what to do about ``exc``."""
    what = f"{access.verb} {target or access.resource}"
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        detail = _server_message(exc)
        if status == 404:
            return NotFoundError(f"{what}: not found ({detail})")
        if status == 409:
            return ConflictError(f"{what}: conflict ({detail}); will retry", delay_s=backoff_s)
        if status == 403:
            return ForbiddenError(
                f"{what}: forbidden; the spoke's service account needs {access.rule} in {access.scope}. "
                f"Grant it in the spoke's (Cluster)Role ({detail})"
            )
        if status == 401:
            return TemporaryApplyError(
                ResultReason.BACKEND_ERROR, f"{what}: unauthorized ({detail}); will retry", delay_s=backoff_s
            )
        if status == 429 or status >= 500:
            delay = _retry_after(exc.headers) or backoff_s
            return TemporaryApplyError(
                ResultReason.BACKEND_ERROR,
                f"{what}: API server answered {status} ({detail}); retry in {delay:g}s",
                delay_s=delay,
            )
        if status in (400, 422):
            return PermanentApplyError(ResultReason.INVALID, f"{what}: refused as invalid ({detail})")
        return PermanentApplyError(
            ResultReason.BACKEND_ERROR, f"{what}: API server answered {status} ({detail})"
        )
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return TemporaryApplyError(
            ResultReason.BACKEND_ERROR,
            f"{what}: API server unreachable ({type(exc).__name__}: {exc}); will retry",
            delay_s=backoff_s,
        )
    raise TypeError(f"not a Kubernetes API failure: {exc!r}")


@contextlib.contextmanager
def translating(access: Access, *, target: str = "", backoff_s: float = 2.0) -> Iterator[None]:
    """Re-raise API and transport failures inside the block as classified ``ApplyError``s."""
    try:
        yield
    except (TimeoutError, ApiException, aiohttp.ClientError, OSError) as exc:
        raise classify(exc, access, target=target, backoff_s=backoff_s) from exc


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    # NB: only the delta-seconds form; API servers never send the HTTP-date form.
    raw = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _server_message(exc: ApiException) -> str:
    body: Any = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    message = f"HTTP {exc.status} {exc.reason or ''}".strip()
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            message = parsed["message"]
        elif parsed is None:
            message = body
    return message[:MAX_DETAIL_CHARS]
