"""API authentication and roles, through the real app: 401 before 403 before routing; open paths."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.service import api_guard
from hub.settings import HubSettings
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.auth import ANONYMOUS, PRINCIPAL, AccessPolicy, Role, principal_of, required_role
from tests.hub.factories import FixedPolicies as Policies

VIEWER = "viewer-token-0123456789"
OPERATOR = "operator-token-0123456789"
ADMIN = "admin-token-0123456789abc"

TOKENS = [
    {"name": "grafana", "role": "viewer", "token": VIEWER},
    {"name": "ci", "role": "operator", "token": OPERATOR},
    {"name": "alice", "role": "admin", "token": ADMIN},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def echo(request: web.Request) -> web.Response:
    p = principal_of(request)
    return web.json_response({"name": p.name, "role": p.role.value} if p else None)


def write_tokens(path: Path, entries: list[dict[str, str]]) -> Path:
    path.write_text(yaml.safe_dump(entries))
    return path


def app_for(settings: HubSettings, metrics: HubMetrics) -> web.Application:
    access, _ = api_guard(settings, metrics)
    app = make_app(state=FleetState(), decisions=DecisionLog(), policies=Policies(), metrics=metrics,  # type: ignore[arg-type]
                   ready=lambda: {}, access=access)
    # Write routes that no endpoint uses yet, to see the principal that reached the handler.
    app.router.add_route("*", "/api/v1/policies/{id}/auth-echo", echo)
    app.router.add_route("*", "/api/v1/autoscaling/auth-echo", echo)
    app.router.add_route("*", "/api/v1/admin-only/auth-echo", echo)
    return app


@pytest.fixture
def metrics() -> HubMetrics:
    return HubMetrics()


@pytest.fixture
async def client(tmp_path: Path, metrics: HubMetrics) -> AsyncIterator[TestClient]:
    settings = HubSettings(auth_tokens_file=write_tokens(tmp_path / "tokens.yaml", TOKENS))
    async with TestClient(TestServer(app_for(settings, metrics))) as c:
        yield c


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(
    client: TestClient, metrics: HubMetrics
) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {"Authorization": "Bearer "}):
        r = await client.get("/api/v1/clusters", headers=headers)
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="fleetscale"'
        body = await r.json()
        assert body["error"] == "unauthorized" and "missing bearer token" in body["details"]["reason"]
    assert metrics.api_denied.labels("missing_token")._value.get() == 3


async def test_an_unknown_token_is_401_invalid_token(client: TestClient, metrics: HubMetrics) -> None:
    for token in (VIEWER + "x", VIEWER[:-1], "nope"):
        r = await client.get("/api/v1/clusters", headers=bearer(token))
        assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert (await r.json())["details"] == {"reason": "unknown token"}
    # Before routing: an unknown path does not answer 404 to a caller who is not authenticated.
    assert (await client.get("/api/v1/nowhere")).status == 401
    assert metrics.api_denied.labels("invalid_token")._value.get() == 3


async def test_a_viewer_reads_everything(client: TestClient) -> None:
    for path in ("/api/v1/clusters", "/api/v1/workloads", "/api/v1/decisions", "/api/v1/policies"):
        r = await client.get(path, headers=bearer(VIEWER))
        assert r.status == 200, path
    # The scheme is case-insensitive (RFC 7235).
    assert (await client.get("/api/v1/clusters", headers={"Authorization": f"bearer {VIEWER}"})).status == 200
    r = await client.get("/api/v1/policies/p/auth-echo", headers=bearer(VIEWER))
    assert await r.json() == {"name": "grafana", "role": "viewer"}


async def test_a_viewer_write_is_403_naming_the_role_even_where_no_route_exists(
    client: TestClient, metrics: HubMetrics
) -> None:
    for method, path in [("POST", "/api/v1/policies"), ("DELETE", "/api/v1/policies/llama"),
                         ("PUT", "/api/v1/autoscaling/llama/dry-run")]:
        r = await client.request(method, path, headers=bearer(VIEWER), json={})
        assert r.status == 403, (method, path)
        body = await r.json()
        assert body["error"] == "forbidden"
        assert body["details"] == {"required_role": "operator", "role": "viewer", "principal": "grafana"}
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert metrics.api_denied.labels("forbidden")._value.get() == 3


async def test_an_operator_writes_policies_and_autoscaling_but_nothing_else(client: TestClient) -> None:
    for path in ("/api/v1/policies/llama/auth-echo", "/api/v1/autoscaling/auth-echo"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = await client.request(method, path, headers=bearer(OPERATOR))
            assert r.status == 200 and await r.json() == {"name": "ci", "role": "operator"}, (method, path)
    # Let through to routing: whatever the policy endpoints answer, it is not an auth refusal.
    r = await client.post("/api/v1/policies", headers=bearer(OPERATOR), json={})
    assert r.status not in (401, 403)
    r = await client.post("/api/v1/admin-only/auth-echo", headers=bearer(OPERATOR))
    assert r.status == 403 and (await r.json())["details"]["required_role"] == "admin"
    # A prefix that only looks like the policies path is not under it.
    r = await client.post("/api/v1/policiesx", headers=bearer(OPERATOR))
    assert r.status == 403


async def test_an_admin_does_everything(client: TestClient) -> None:
    for path in ("/api/v1/policies/llama/auth-echo", "/api/v1/autoscaling/auth-echo", "/api/v1/admin-only/auth-echo"):
        r = await client.post(path, headers=bearer(ADMIN))
        assert r.status == 200 and await r.json() == {"name": "alice", "role": "admin"}
    assert (await client.get("/api/v1/clusters", headers=bearer(ADMIN))).status == 200
    # Authenticated and authorized, then routed: now an unknown path is an honest 404.
    assert (await client.get("/api/v1/nowhere", headers=bearer(ADMIN))).status == 404


async def test_health_and_metrics_are_open_and_the_page_shell_is_open_for_reading(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    r = await client.get("/metrics")
    assert r.status == 200 and "fleetscale_hub_api_denied_requests_total" in await r.text()
    # The page (when a route serves it) needs no token to load; writing there still does.
    assert (await client.get("/")).status != 401
    assert (await client.get("/page/app.js")).status != 401
    assert (await client.post("/")).status == 401
    assert (await client.get("/static/app.js")).status == 401


async def test_open_paths_and_the_page_are_configurable(tmp_path: Path, metrics: HubMetrics) -> None:
    settings = HubSettings(auth_tokens_file=write_tokens(tmp_path / "t.yaml", TOKENS),
                           auth_open_paths=["/healthz", "/api/v1/clusters*"], auth_open_page=False)
    async with TestClient(TestServer(app_for(settings, metrics))) as c:
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/api/v1/clusters")).status == 200
        assert (await c.get("/metrics")).status == 401
        assert (await c.get("/")).status == 401


async def test_without_a_token_source_auth_is_off_and_the_hub_says_so_loudly(
    caplog: pytest.LogCaptureFixture, metrics: HubMetrics
) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.service"):
        access, tokens = api_guard(HubSettings(), metrics)
    assert access.lookup is None and tokens is None
    assert "API AUTHENTICATION IS OFF" in caplog.text
    async with TestClient(TestServer(app_for(HubSettings(), metrics))) as c:
        r = await c.post("/api/v1/admin-only/auth-echo")
        assert r.status == 200 and await r.json() == {"name": ANONYMOUS.name, "role": "admin"}


def test_the_rule_by_method_and_path() -> None:
    assert required_role("GET", "/api/v1/anything") is Role.VIEWER
    assert required_role("head", "/api/v1/policies") is Role.VIEWER
    assert required_role("POST", "/api/v1/policies") is Role.OPERATOR
    assert required_role("DELETE", "/api/v1/policies/a/b") is Role.OPERATOR
    assert required_role("PATCH", "/api/v1/autoscaling") is Role.OPERATOR
    assert required_role("POST", "/api/v1/policies/../admin") is Role.ADMIN
    assert required_role("POST", "/api/v1/policies%2F..%2Fadmin") is Role.ADMIN
    assert required_role("POST", "/api/v1/policiesx") is Role.ADMIN
    assert required_role("POST", "/api/v1/clusters/a/drain") is Role.ADMIN
    assert Role.ADMIN.allows(Role.OPERATOR) and not Role.VIEWER.allows(Role.OPERATOR)


async def test_the_event_stream_alone_takes_the_token_from_the_query(client: TestClient) -> None:
    # EventSource cannot set headers; the stream (when a route serves it) takes ?access_token=.
    assert (await client.get("/api/v1/events", params={"access_token": VIEWER})).status not in (401, 403)
    assert (await client.get("/api/v1/events", params={"access_token": "nope"})).status == 401
    assert (await client.get("/api/v1/events")).status == 401
    assert (await client.get("/api/v1/clusters", params={"access_token": VIEWER})).status == 401
    assert (await client.post("/api/v1/events", params={"access_token": ADMIN})).status == 401


def test_the_principal_request_key_is_public() -> None:
    # Write endpoints record who changed what through this key (or principal_of).
    assert isinstance(PRINCIPAL, web.RequestKey)
    policy = AccessPolicy(lookup=None, open_paths=["/x*"], open_page=False)
    assert policy.is_open("POST", "/x/y") and not policy.is_open("GET", "/x/../y") and not policy.is_open("GET", "/")
    page = AccessPolicy(lookup=None)
    assert page.is_open("GET", "/page/app.js") and not page.is_open("POST", "/page/app.js")
    assert not page.is_open("GET", "/page/../api/v1/clusters")

