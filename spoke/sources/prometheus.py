"""Samples from PromQL: one configured query per field, per workload, against Prometheus or Thanos.

For clusters where engine pods cannot be scraped directly, or where the operator already has
recording rules. Each query is a template; ``{namespace}`` and ``{name}`` are replaced with the
workload's (PromQL's own braces are left alone). Keys are scalar ``Samples`` field names
(``requests_waiting``) or a percentile of a latency group (``ttft.p95_s``).

Semantics follow KEDA's Prometheus scaler: a query must return exactly one series (or a scalar).
No series means "not measured" (the field is missing with that reason); several series is a
configuration error (aggregate with ``sum``/``avg``), also reported per field. A NaN (e.g.
``histogram_quantile`` over an empty window) is missing too. Transport failures make the whole
source unavailable for this read.

Auth is a bearer token read from a file (a projected service-account token on OpenShift/RHOAI
Thanos querier). Tokens rotate, so the file is re-read whenever its mtime or size changes.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shared.messages import Percentiles
from spoke.sources.base import (
    PERCENTILE_FIELDS,
    SCALAR_FIELDS,
    PartialSample,
    SourceMisconfigured,
    SourceReading,
    SourceTarget,
    SourceUnavailable,
)
from spoke.sources.exposition import HttpClient

_PLACEHOLDER = re.compile(r"\{(namespace|name)\}")
_PERCENTILE_KEYS = ("p50_s", "p95_s", "p99_s")
MAX_ERROR_BODY = 200


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    url: str
    """Base URL, e.g. ``https://thanos-querier.openshift-monitoring.svc:9091``; ``/api/v1/query``
    is appended."""
    queries: Mapping[str, str] = field(default_factory=dict)
    """Field key -> PromQL template with ``{namespace}``/``{name}``."""
    token_file: Path | None = None
    """Bearer token file, re-read when it changes; None sends no Authorization header."""
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    timeout_s: float = 5.0
    """Per query, seconds."""

    def __post_init__(self) -> None:
        for key in self.queries:
            group, _, sub = key.partition(".")
            ok = key in SCALAR_FIELDS or (group in PERCENTILE_FIELDS and sub in _PERCENTILE_KEYS)
            if not ok:
                raise SourceMisconfigured(f"prometheus query key {key!r} is not a Samples field")


def render(template: str, target: SourceTarget) -> str:
    """Fill ``{namespace}``/``{name}``; values are escaped for use inside PromQL string literals."""
    values = {"namespace": target.namespace, "name": target.name}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)].replace("\\", "\\\\").replace('"', '\\"'), template)


class _TokenFile:
    """A bearer token that follows rotation of the file it lives in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def read(self) -> str:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._token = self.path.read_text().strip()
                self._stamp = stamp
        except OSError as e:
            raise SourceMisconfigured(f"cannot read bearer token file {self.path}: {e.strerror}") from e
        return self._token


class _QueryFailed(Exception):
    """This one query has no usable answer; the reason goes into missing_reasons."""


class PrometheusSource:
    name = "prometheus"

    def __init__(self, settings: PrometheusSettings, *, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.capabilities = frozenset(k.partition(".")[0] for k in settings.queries)
        self._http = HttpClient(session)
        self._token = _TokenFile(settings.token_file) if settings.token_file else None
        self._ssl = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        s = self.settings
        if s.insecure_skip_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if s.ca_file is not None:
            try:
                return ssl.create_default_context(cafile=str(s.ca_file))
            except OSError as e:
                raise SourceMisconfigured(f"cannot read CA file {s.ca_file}: {e.strerror}") from e
        return True

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        jobs = [(t, key, render(q, t)) for t in targets for key, q in self.settings.queries.items()]
        results = await asyncio.gather(*(self.query(promql) for _, _, promql in jobs), return_exceptions=True)
        values: dict[str, dict[str, float | str]] = {t.key: {} for t in targets}
        for (t, key, _), result in zip(jobs, results, strict=True):
            if isinstance(result, _QueryFailed):
                values[t.key][key] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                values[t.key][key] = result
        return SourceReading(self.name, {key: _partial(v) for key, v in values.items()})

    async def query(self, promql: str) -> float:
        """One instant query. Raises ``_QueryFailed`` (per-field), ``SourceUnavailable`` (transport,
        5xx) or ``SourceMisconfigured`` (401/403, token file)."""
        headers = {"Authorization": f"Bearer {self._token.read()}"} if self._token else {}
        url = self.settings.url.rstrip("/") + "/api/v1/query"
        try:
            async with self._http.session().post(
                url,
                data={"query": promql},
                headers=headers,
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            ) as resp:
                text = await resp.text()
                status = resp.status
                body: Any = await resp.json(content_type=None) if text.startswith("{") else None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SourceUnavailable(f"{url}: {type(e).__name__}: {e}".rstrip(": ")) from e
        if status in (401, 403):
            raise SourceMisconfigured(f"{url}: HTTP {status}: {text[:MAX_ERROR_BODY]}")
        if status >= 500 or body is None:
            raise SourceUnavailable(f"{url}: HTTP {status}: {text[:MAX_ERROR_BODY]}")
        if body.get("status") != "success":
            raise _QueryFailed(f"query {promql!r} failed: {body.get('errorType')}: {body.get('error')}")
        return _single_value(promql, body["data"])

    async def aclose(self) -> None:
        await self._http.aclose()


def _single_value(promql: str, data: Mapping[str, Any]) -> float:
    kind, raw = data.get("resultType"), data.get("result")
    result: list[Any] = raw if isinstance(raw, list) else []
    if kind == "scalar":
        if len(result) != 2:
            raise _QueryFailed(f"query {promql!r} returned a scalar without a value")
        value = float(result[1])
    elif kind == "vector":
        if not result:
            raise _QueryFailed(f"query {promql!r} returned no series")
        if len(result) > 1:
            raise _QueryFailed(
                f"query {promql!r} returned {len(result)} series; it must return one (aggregate it)"
            )
        value = float(result[0]["value"][1])
    else:
        raise _QueryFailed(f"query {promql!r} returned a {kind}; an instant vector or scalar is needed")
    if math.isnan(value) or math.isinf(value):
        raise _QueryFailed(f"query {promql!r} returned {value}")
    return value


def _checked(key: str, value: float | str) -> float | str:
    """A query can compute anything; keep only values the wire model accepts."""
    if isinstance(value, str):
        return value
    if value < 0:
        return f"query for {key} returned {value}, which is negative"
    if key == "kv_cache_usage_ratio" and value > 1:
        return f"query for {key} returned {value}, outside [0, 1]"
    return value


def _partial(values: Mapping[str, float | str]) -> PartialSample:
    """Per-key answers (a number, or the reason it is missing) -> a partial sample."""
    partial = PartialSample()
    values = {k: _checked(k, v) for k, v in values.items()}
    for key, value in values.items():
        if "." not in key:
            if isinstance(value, float):
                partial.measured(key, value)
            else:
                partial.missing(key, value)
    for group in PERCENTILE_FIELDS:
        keys = {k.partition(".")[2]: v for k, v in values.items() if k.partition(".")[0] == group}
        measured = {k: v for k, v in keys.items() if isinstance(v, float)}
        if measured:
            partial.measured(group, Percentiles(**measured))
        elif keys:
            partial.missing(group, "; ".join(str(v) for v in keys.values()))
    return partial
