from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.feed import HEARTBEAT, Feed, Subscription, frame
from hub.web.overview import fleet_json
from hub.web.page import add_page
from shared.messages import CommandResult, ResultReason, ResultStatus, WorkloadRef
from tests.hub.factories import FixedPolicies, node, report, workload

POLICIES = FixedPolicies(
    Policy.model_validate({"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                           "signals": [{"metric": "ttft", "target": 0.5}], "mode": "dry-run"}),
    Policy.model_validate({"id": "other", "targets": {"workloads": [{"namespace": "x", "name": "y"}]},
                           "signals": [{"metric": "queue_per_replica", "target": 2}]}),
)


def decision(id: str, commands: tuple[str, ...] = ()) -> Decision:
    return Decision(workload="inference/llama", policy_id="llama", policy_revision=1, mode="enforce",
                    current_replicas=2, desired_replicas=3, reason="ttft_p95=0.8 vs target 0.5",
                    inputs={"ttft_p95": 0.8}, placement_before={"a/H100": 2}, placement_after={"a/H100": 3},
                    commands=list(commands), id=id)


class Hub:
    def __init__(self) -> None:
        self.state = FleetState()
        self.state.ingest(report("a", [workload(waiting=3, ttft_p95=0.8)], [node("H100", 6)]))
        self.decisions = DecisionLog()
        self.metrics = HubMetrics()
        self.feed = Feed(self.metrics, fleet=lambda: fleet_json(self.state.snapshot(), self.decisions, POLICIES),
                         heartbeat_s=0.05)
        self.decisions.listeners.append(self.feed.on_decision)


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient]:
    app = make_app(state=hub.state, decisions=hub.decisions, policies=POLICIES,  # type: ignore[arg-type]
                   metrics=hub.metrics, ready=lambda: {})
    add_page(app, hub.feed)
    async with TestClient(TestServer(app)) as c:
        yield c


async def next_event(resp: ClientResponse, *, skip_comments: bool = True) -> tuple[str, Any]:
    """The next SSE block as (event, parsed data), ("retry", ms) or ("comment", text)."""
    async with asyncio.timeout(5):  # heartbeats keep coming: bound the whole wait, not each read
        while True:
            block = (await resp.content.readuntil(b"\n\n")).decode()
            fields = dict(line.split(": ", 1) if ": " in line else (line, "") for line in block.strip().split("\n"))
            if "event" in fields:
                return fields["event"], orjson.loads(fields["data"])
            if "retry" in fields:
                return "retry", int(fields["retry"])
            if not skip_comments:
                return "comment", block.strip()


async def test_the_page_and_its_assets_are_served_with_their_types(client: TestClient) -> None:
    r = await client.get("/")
    assert r.status == 200 and r.content_type == "text/html" and r.charset == "utf-8"
    html = await r.text()
    assert '<script src="/page/app.js" defer></script>' in html and "/page/style.css" in html
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]  # no inline script may run
    for path, ctype, name in (("/page/app.js", "text/javascript", "app.js"),
                              ("/page/style.css", "text/css", "style.css")):
        r = await client.get(path)
        assert r.status == 200 and r.content_type == ctype
        assert await r.read() == (files("hub.web.page") / name).read_bytes()
    r = await client.get("/page/__init__.py")
    assert r.status == 404  # only the three assets, not the package directory


async def test_events_stream_a_decision_once_recorded_and_again_with_its_result(client: TestClient, hub: Hub) -> None:
    resp = await client.get("/api/v1/events")
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    assert await next_event(resp) == ("retry", 2000)
    event, fleet = await next_event(resp)
    assert event == "fleet" and fleet["clusters"][0]["free_gpus"] == {"H100": 6}
    assert fleet["workloads"][0]["clusters"]["a"]["samples"]["ttft"]["p95_s"] == 0.8
    assert [p["id"] for p in fleet["policies"]] == ["llama", "other"]
    bound = fleet["workloads"][0]["policy"]  # the binding, so the page needs no selector logic
    assert bound["id"] == "llama" and bound["mode"] == "dry-run" and bound["overridden"] == []
    assert bound["signals"][0] == {"name": "ttft_p95", "metric": "ttft", "target": 0.5, "percentile": "p95",
                                        "headroom_percent": 10.0, "capacity_per_replica": {}}

    hub.decisions.add(decision("d1", commands=("c1",)))
    event, data = await next_event(resp)
    assert event == "decision" and data["id"] == "d1" and data["action"] == "scale_up" and data["results"] == {}

    hub.decisions.attach_result(CommandResult(
        command_id="c1", cluster_id="a", workload=WorkloadRef(namespace="inference", name="llama"),
        status=ResultStatus.APPLIED, reason=ResultReason.APPLIED, observed_replicas_by_gpu_type={"H100": 3}))
    event, data = await next_event(resp)
    assert event == "decision" and data["id"] == "d1" and data["results"]["c1"]["status"] == "applied"
    resp.close()


async def test_a_silent_stream_gets_heartbeats_and_the_periodic_fleet_summary(client: TestClient, hub: Hub) -> None:
    hub.feed.fleet_interval_s = 0.05
    runner = asyncio.create_task(hub.feed.run())
    try:
        resp = await client.get("/api/v1/events")
        seen = [(await next_event(resp, skip_comments=False))[0] for _ in range(8)]
        assert seen[:2] == ["retry", "fleet"]
        assert "comment" in seen and seen.count("fleet") >= 2
        resp.close()
    finally:
        runner.cancel()


async def test_a_slow_subscriber_loses_events_counted_without_holding_back_others(hub: Hub) -> None:
    with hub.feed.subscribe(queue_size=2) as slow, hub.feed.subscribe(queue_size=10) as fast:
        for i in range(5):
            hub.decisions.add(decision(f"d{i}"))  # synchronous: nothing here can wait on a subscriber
        assert slow.dropped == 3 and fast.dropped == 0
        assert hub.feed.dropped == 3
        assert hub.metrics.feed_dropped.labels("decision")._value.get() == 3
        got = [await fast.next(1.0) for _ in range(5)]
        assert all(g is not None and b"event: decision" in g for g in got)
        # The slow one gets what fitted, with a notice of the loss first so the page re-reads.
        first = await slow.next(1.0)
        assert first is not None and first.startswith(b'event: gap\ndata: {"dropped":3}\n\n')
        assert b'"id":"d0"' in first
        second = await slow.next(1.0)
        assert second is not None and b'"id":"d1"' in second and b"gap" not in second
        assert await slow.next(0.01) == HEARTBEAT
    assert hub.feed.subscribers == 0


async def test_a_subscriber_queue_is_bounded_in_bytes_too_but_always_takes_one_frame() -> None:
    sub = Subscription(size=100, max_bytes=1000)
    assert sub.offer(b"x" * 5000)  # alone in an empty queue: an oversized summary still goes out
    assert not sub.offer(b"y" * 10) and sub.dropped == 1
    assert await sub.next(1.0) == frame("gap", {"dropped": 1}) + b"x" * 5000
    assert sub.offer(b"a" * 600) and not sub.offer(b"b" * 600) and sub.offer(b"c" * 400)
    assert sub.dropped == 2


def unencodable(id: str) -> Decision:
    return decision(id).model_copy(update={"inputs": {"x": object()}})  # no JSON serialiser takes this


async def test_nothing_is_encoded_while_nobody_listens_and_a_bad_record_never_breaks_recording(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.decisions.add(unencodable("d1"))
    assert "not published" not in caplog.text  # not even tried
    with hub.feed.subscribe() as sub:
        hub.decisions.add(unencodable("d2"))  # the listener fails; the evaluator must not
        hub.decisions.add(decision("d3"))
        assert "decision d2 not published" in caplog.text
        data = await sub.next(1.0)
        assert data is not None and b'"id":"d3"' in data
    assert [d.id for d in hub.decisions.recent()] == ["d3", "d2", "d1"]


async def test_a_client_that_goes_away_is_unsubscribed(client: TestClient, hub: Hub) -> None:
    resp = await client.get("/api/v1/events")
    await next_event(resp)
    assert hub.feed.subscribers == 1
    resp.close()
    async with asyncio.timeout(5):
        while hub.feed.subscribers:  # noticed at the next write: a heartbeat at the latest
            await asyncio.sleep(0.01)
    assert hub.metrics.feed_subscribers._value.get() == 0


async def test_closing_the_feed_ends_open_streams(client: TestClient, hub: Hub) -> None:
    resp = await client.get("/api/v1/events")
    assert [(await next_event(resp))[0] for _ in range(2)] == ["retry", "fleet"]
    hub.feed.close()
    async with asyncio.timeout(5):
        rest = await resp.content.read()
    assert rest.replace(HEARTBEAT, b"") == b""  # nothing pending is flushed after the close
    assert resp.content.at_eof() and hub.feed.subscribers == 0


async def test_the_feed_and_the_api_serve_the_same_views_and_records(client: TestClient, hub: Hub) -> None:
    """One model per view: the feed's ``fleet`` event and the list endpoints are the same objects."""
    hub.decisions.add(decision("d1", commands=("c1",)))
    hub.decisions.attach_result(CommandResult(command_id="c1", cluster_id="a", workload=WorkloadRef(
        namespace="inference", name="llama"), status=ResultStatus.APPLIED, reason=ResultReason.APPLIED))
    resp = await client.get("/api/v1/events")
    await next_event(resp)  # retry
    event, fleet = await next_event(resp)
    resp.close()
    clusters = (await (await client.get("/api/v1/clusters")).json())["clusters"]
    workloads = (await (await client.get("/api/v1/workloads")).json())["workloads"]
    record = await (await client.get("/api/v1/decisions/d1")).json()
    for served in (clusters, fleet["clusters"]):
        for c in served:
            c.pop("age_s")  # the one field that moves between two reads
    for served in (workloads, fleet["workloads"]):
        for w in served:
            for c in w["clusters"].values():
                c.pop("age_s")
    assert event == "fleet" and fleet["clusters"] == clusters and fleet["workloads"] == workloads
    assert workloads[0]["last_decision"] == record and record["results"]["c1"]["status"] == "applied"
