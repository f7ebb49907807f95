"""PromQL per workload against a real Prometheus: one series per query, templating, bearer tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from source_helpers import TTFT_BUCKET_RATES

from shared.messages import Percentiles
from spoke.sources import histograms
from spoke.sources.base import SourceMisconfigured, SourceTarget, SourceUnavailable
from spoke.sources.prometheus import PrometheusSettings, PrometheusSource, render

CHAT = SourceTarget("llm", "chat")
QUANTILE = (
    "histogram_quantile({q}, sum by (le) "
    '(rate(fleet_ttft_seconds_bucket{{namespace="{{namespace}}",workload="{{name}}"}}[1m])))'
)
QUERIES = {
    "requests_waiting": 'sum(fleet_waiting{namespace="{namespace}",workload="{name}"})',
    "kv_cache_usage_ratio": 'fleet_kv{namespace="{namespace}",workload="{name}"}',
    "ttft.p50_s": QUANTILE.format(q=0.5),
    "ttft.p99_s": QUANTILE.format(q=0.99),
}


def test_render_fills_placeholders_and_keeps_promql_braces() -> None:
    assert (
        render('sum(x{namespace="{namespace}",app="{name}"})', CHAT) == 'sum(x{namespace="llm",app="chat"})'
    )
    assert render('x{a="{name}"}', SourceTarget("n", 'we"ird')) == 'x{a="we\\"ird"}'


def test_unknown_query_key_is_a_configuration_error() -> None:
    with pytest.raises(SourceMisconfigured, match="not a Samples field"):
        PrometheusSettings(url="http://x", queries={"ttft.p90_s": "x"})


async def test_queries_fill_fields_and_window_quantile_matches_our_histogram_math(
    prometheus_url: str,
) -> None:
    source = PrometheusSource(PrometheusSettings(url=prometheus_url, queries=QUERIES))
    try:
        reading = await source.read([CHAT])
    finally:
        await source.aclose()
    partial = reading.samples["llm/chat"]
    assert partial.values["requests_waiting"] == 7.0
    assert partial.values["kv_cache_usage_ratio"] == 0.5
    ttft = partial.values["ttft"]
    assert isinstance(ttft, Percentiles)
    # Real Prometheus and spoke.sources.histograms agree on the same per-second bucket increases.
    ours = {float(le): v for le, v in TTFT_BUCKET_RATES.items()}
    assert ttft.p50_s == pytest.approx(histograms.quantile(0.5, ours))
    assert ttft.p99_s == pytest.approx(histograms.quantile(0.99, ours))
    assert ttft.p95_s is None
    assert source.capabilities == {"requests_waiting", "kv_cache_usage_ratio", "ttft"}


async def test_no_series_is_missing_and_several_series_is_an_error_per_field(prometheus_url: str) -> None:
    queries = {
        "requests_running": 'fleet_running{namespace="{namespace}"}',
        "requests_waiting": 'fleet_waiting{namespace="{namespace}",workload="{name}"}',
        "kv_cache_usage_ratio": 'fleet_kv{namespace="{namespace}",workload="{name}"}',
        "request_rate_per_s": "this is not promql",
    }
    source = PrometheusSource(PrometheusSettings(url=prometheus_url, queries=queries))
    try:
        reading = await source.read([CHAT, SourceTarget("llm", "other")])
    finally:
        await source.aclose()
    chat = reading.samples["llm/chat"]
    assert "returned no series" in chat.missing_reasons["requests_running"]
    assert "returned 2 series" in chat.missing_reasons["requests_waiting"]
    assert "bad_data" in chat.missing_reasons["request_rate_per_s"]
    assert reading.samples["llm/other"].values["kv_cache_usage_ratio"] == 0.25


async def test_unreachable_prometheus_makes_the_source_unavailable() -> None:
    source = PrometheusSource(PrometheusSettings(url="http://127.0.0.1:9", queries=QUERIES, timeout_s=2))
    try:
        with pytest.raises(SourceUnavailable):
            await source.read([CHAT])
    finally:
        await source.aclose()


@pytest.fixture
async def guarded_prometheus(prometheus_url: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A reverse proxy in front of the real Prometheus that demands ``Bearer <accepted[0]>``, as
    the OpenShift Thanos querier's oauth proxy does. Tests change ``accepted`` to rotate the token."""
    accepted: list[str] = ["first-token"]
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {accepted[0]}":
            return web.Response(status=401, text="Unauthorized")
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{prometheus_url}{request.path}", data=await request.post()) as upstream,
        ):
            return web.Response(
                status=upstream.status, body=await upstream.read(), content_type="application/json"
            )

    app = web.Application()
    app.router.add_post("/api/v1/query", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", accepted
    finally:
        await runner.cleanup()
    assert seen, "the proxy was never called"


async def test_bearer_token_is_sent_and_reread_after_rotation(
    guarded_prometheus: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, accepted = guarded_prometheus
    token = tmp_path / "token"
    token.write_text("first-token\n")
    queries = {"requests_waiting": QUERIES["requests_waiting"]}
    source = PrometheusSource(PrometheusSettings(url=url, queries=queries, token_file=token))
    try:
        assert (await source.read([CHAT])).samples["llm/chat"].values["requests_waiting"] == 7.0
        accepted[0] = "rotated-token-2"
        with pytest.raises(SourceMisconfigured, match="HTTP 401"):
            await source.read([CHAT])
        token.write_text("rotated-token-2\n")
        assert (await source.read([CHAT])).samples["llm/chat"].values["requests_waiting"] == 7.0
    finally:
        await source.aclose()


async def test_missing_token_file_is_a_configuration_error(tmp_path: Path) -> None:
    settings = PrometheusSettings(
        url="http://127.0.0.1:9", queries={"requests_waiting": "x"}, token_file=tmp_path / "absent"
    )
    source = PrometheusSource(settings)
    try:
        with pytest.raises(SourceMisconfigured, match="bearer token file"):
            await source.read([CHAT])
    finally:
        await source.aclose()


def test_tls_options_build_the_ssl_context(tmp_path: Path) -> None:
    insecure = PrometheusSource(PrometheusSettings(url="https://x", insecure_skip_verify=True))
    ctx = insecure._ssl
    assert not isinstance(ctx, bool) and ctx.check_hostname is False
    with pytest.raises(SourceMisconfigured, match="CA file"):
        PrometheusSource(PrometheusSettings(url="https://x", ca_file=tmp_path / "absent.pem"))
