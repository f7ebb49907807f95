"""Scraping and indexing Prometheus text expositions (``/metrics`` of exporters and engines).

Parsing is ``prometheus_client``'s own parser; this module only flattens its families into samples
keyed by *sample* name (``vllm:request_success_total``, ``x_bucket``). Sample names are what the
exporters actually print: family names depend on ``# TYPE`` lines, which some scrapes lack (a
``grep`` of dcgm-exporter output has none) and which strip ``_total`` from counters. One
exception: after a ``# TYPE x counter`` line the parser names a sample ``x`` as ``x_total``
(Triton prints its counters without the suffix); ``engine_metrics.resolve`` accepts both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from spoke.sources.base import SourceUnavailable

MAX_ERROR_BODY = 200
"""Characters of an error response body kept in the message (bodies can be whole HTML pages)."""


class ScrapeError(SourceUnavailable):
    """One endpoint could not be scraped or parsed."""


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    value: float


class Exposition:
    """One scrape, indexed by sample name."""

    def __init__(
        self, samples: Mapping[str, list[Series]], *, rejected: int = 0, rejected_example: str = ""
    ) -> None:
        self._samples = samples
        self.rejected = rejected
        """Sample lines that could not be parsed and were dropped (each costs only its value)."""
        self.rejected_example = rejected_example

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Parse a whole exposition; when it does not parse (dcgm-exporter prints
        ``ERROR - FAILED TO CONVERT TO STRING`` as a value), parse it line by line so that a bad
        line costs its own value only. Raises ``ScrapeError`` only when no line parses."""
        samples: dict[str, list[Series]] = {}
        try:
            _add(samples, text)
        except ValueError:
            return cls._parse_lines(text)
        return cls(samples)

    @classmethod
    def _parse_lines(cls, text: str) -> Exposition:
        samples: dict[str, list[Series]] = {}
        rejected, example, seen = 0, "", 0
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            seen += 1
            try:
                _add(samples, line + "\n")
            except ValueError as e:
                rejected += 1
                example = example or f"{_shorten(line)!r}: {e}"
        if seen and not samples:
            raise ScrapeError(f"malformed exposition: no sample line parses ({example})")
        return cls(samples, rejected=rejected, rejected_example=example)

    @property
    def names(self) -> Iterable[str]:
        return self._samples.keys()

    def has(self, name: str) -> bool:
        return name in self._samples

    def series(self, name: str) -> list[Series]:
        return self._samples.get(name, [])

    def first_present(self, candidates: Iterable[str]) -> str | None:
        """The first of ``candidates`` (preferred names first) that this scrape has."""
        return next((c for c in candidates if c in self._samples), None)

    def total(self, name: str) -> float | None:
        """Sum of every series of ``name`` (across engines, models, finish reasons); None if absent."""
        series = self._samples.get(name)
        return sum(s.value for s in series) if series else None


def _shorten(line: str, keep: int = 60) -> str:
    """A long sample line's name and value, which say what went wrong, without its labels' middle."""
    return line if len(line) <= 2 * keep else f"{line[:keep]}...{line[-keep:]}"


def _add(samples: dict[str, list[Series]], text: str) -> None:
    found: dict[str, list[Series]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            value = float(s.value)
            if math.isfinite(value):  # NaN/Inf are "no value" (e.g. a histogram with no data)
                found.setdefault(s.name, []).append(Series(s.labels, value))
    for name, series in found.items():
        samples.setdefault(name, []).extend(series)


async def scrape(session: aiohttp.ClientSession, url: str, *, timeout_s: float) -> Exposition:
    """GET ``url`` and parse it. Raises ``ScrapeError`` for any network, HTTP or format trouble."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise ScrapeError(f"{url}: HTTP {resp.status}: {body[:MAX_ERROR_BODY]}")
    except (aiohttp.ClientError, TimeoutError) as e:
        raise ScrapeError(f"{url}: {type(e).__name__}: {e}".rstrip(": ")) from e
    try:
        return Exposition.parse(body)
    except ScrapeError as e:
        raise ScrapeError(f"{url}: {e}") from e


class HttpClient:
    """The aiohttp session a source uses: the caller's when given (tests, sharing), else its own,
    created lazily inside the running loop and closed by ``aclose`` only when it is ours."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._owned:
            await self._session.close()
        self._session = None
