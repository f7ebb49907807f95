"""The OpenAPI document: it lists exactly the routes the app serves, and the served API conforms to it.

The conformance run is schemathesis's stateless property test over every operation, against the
real app with a real policy store on a real nats-server, served from a thread (schemathesis calls
the API synchronously, so the server needs its own event loop).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.control.approvals import Approvals
from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from hub.policies.store import BudgetStore, PolicyStore, Source
from hub.policy.budget import Budget
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.api.openapi import OPERATIONS, POLICY_EXAMPLE, SEED_EXAMPLE, document
from hub.web.api.seed import AutoscalingRequest
from shared.bus import Bus, BusOptions
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from shared.natsserver import NatsServer
from tests.hub.factories import node, report, workload

pytestmark = pytest.mark.nats


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    return {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None}


def test_the_document_lists_exactly_the_routes_the_app_serves() -> None:
    app = make_app(state=FleetState(), decisions=DecisionLog(), policies=None,  # type: ignore[arg-type]
                   metrics=HubMetrics(), ready=lambda: {}, budgets=BudgetStore(None))  # type: ignore[arg-type]
    documented = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert documented == _app_routes(app)
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_the_document_is_openapi_3_1_with_every_reference_resolved_and_valid_examples() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    text = orjson.dumps(doc).decode()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert refs == set(doc["components"]["schemas"])  # every reference resolves, nothing unused
    assert doc["components"]["schemas"]["AIInferenceAutoscalerPolicy"]["additionalProperties"] is False
    assert "min_replicas" in doc["components"]["schemas"]["Bounds"]["properties"]  # snake_case, as served
    Policy.model_validate(POLICY_EXAMPLE)
    AutoscalingRequest.model_validate(SEED_EXAMPLE)


class ServedHub:
    """The API on a real port, in a thread with its own loop, over a real policy store."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.port = 0
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="served-hub", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(15) or self._failed is not None:
            raise RuntimeError("the hub API did not start") from self._failed
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # surfaced to the test by __enter__
            self._failed = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with Bus.connect(BusOptions(url=self.nats_url, name="schemathesis")) as bus:
            await bus.ensure_topology()
            store = PolicyStore(await bus.policies_bucket())
            # Something in every list, so the response schemas are checked against real items.
            await store.create(Policy.model_validate({
                "id": "llama", "signals": [{"metric": "gpu_utilization", "target": 70}],
                "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]}}), source=Source.FILE)
            state = FleetState(stale_after_intervals=1e9)
            state.ingest(report("a", [workload(waiting=3, gpu_util=0.9)], [node("H100", 6)], sent_at=datetime.now(UTC)))
            decisions = DecisionLog()
            decisions.add(Decision(workload="inference/llama", policy_id="llama", policy_revision=1, mode="enforce",
                                   current_replicas=2, desired_replicas=4, reason="r", inputs={"ttft": None},
                                   placement_before={"a/H100": 2}, placement_after={"a/H100": 4}, commands=["c"],
                                   results={"c": CommandResult(
                                       command_id="c", cluster_id="a", status=ResultStatus.APPLIED,
                                       reason=ResultReason.APPLIED,
                                       workload=WorkloadRef(namespace="inference", name="llama"))}))
            budgets = BudgetStore(await bus.budgets_bucket())
            await budgets.create(Budget.model_validate({
                "id": "search", "workloads": {"namespaces": ["inference"]}, "caps": {"gpus": {"H100": 4}}}),
                source=Source.FILE)
            metrics = HubMetrics()
            approvals = Approvals(state=state, policies=store, dispatcher=None, decisions=decisions, metrics=metrics)
            waiting = approvals.propose(Decision(
                workload="inference/llama", policy_id="llama", policy_revision=1, mode="approval", current_replicas=2,
                desired_replicas=3, reason="r", inputs={}, placement_before={"a/H100": 2},
                placement_after={"a/H100": 3}), Policy.model_validate({
                    "id": "llama", "signals": [{"metric": "gpu_utilization", "target": 70}], "mode": "approval",
                    "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]}}))
            assert waiting is not None
            decisions.add(waiting)
            app = make_app(state=state, decisions=decisions, policies=store, metrics=metrics, ready=lambda: {},
                           budgets=budgets, approvals=approvals)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()


@pytest.fixture(scope="module")
def served_hub() -> Iterator[str]:
    """One served hub for every operation's run (its own nats-server, as the fixture's is per test)."""
    with NatsServer() as nats, ServedHub(nats.url) as base_url:
        yield base_url


def test_the_served_document_is_the_generated_one(served_hub: str) -> None:
    assert requests.get(f"{served_hub}/api/v1/openapi.json", timeout=5).json() == document()


schema = schemathesis.openapi.from_dict(document())
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_served_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, served_hub: str, schemathesis_cases: Counter[str]
) -> None:
    schemathesis_cases[case.operation.label] += 1
    case.call_and_validate(base_url=served_hub, checks=CHECKS)
