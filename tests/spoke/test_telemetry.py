from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.messages import WorkloadRef
from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.sources import EngineSource, PodTarget, SourceTarget
from spoke.sources.exposition import Exposition
from spoke.telemetry import Sampler, build_sources

FIXTURE = (Path(__file__).parents[1] / "fixtures" / "vllm_v0_opt125m_datadog.prom").read_text()


@dataclass
class Pod:
    name: str


def busy(text: str, waiting: float, running: float) -> str:
    return (text.replace('vllm:num_requests_waiting{model_name="facebook/opt-125m"} 0.0',
                         f'vllm:num_requests_waiting{{model_name="facebook/opt-125m"}} {waiting}')
                .replace('vllm:num_requests_running{model_name="facebook/opt-125m"} 0.0',
                         f'vllm:num_requests_running{{model_name="facebook/opt-125m"}} {running}'))


def test_sources_are_built_only_for_what_is_configured() -> None:
    plain = build_sources(SpokeSettings(cluster_id="c", metrics_api_enabled=False))
    assert [s.name for s in plain] == ["engines"]
    assert [s.name for s in build_sources(SpokeSettings(cluster_id="c"))] == ["engines", "metrics-api"]
    full = build_sources(SpokeSettings(cluster_id="c", dcgm_endpoints=["http://127.0.0.1:1/metrics"],
                                       prometheus_url="http://127.0.0.1:2"))
    assert [s.name for s in full] == ["engines", "dcgm", "metrics-api", "prometheus"]


async def test_pod_loads_come_from_the_engines_last_scrape_and_unknown_stays_unknown() -> None:
    settings = SpokeSettings(cluster_id="c")
    engine = EngineSource()
    sampler = Sampler(settings, SpokeMetrics(), [engine])
    pods = [PodTarget("llm", p, metrics_url=f"http://{p}:8000/metrics") for p in ("a", "b")]
    target = SourceTarget("llm", "chat", tuple(pods))
    engine.observe(target, {
        f"llm/a@{pods[0].metrics_url}": Exposition.parse(busy(FIXTURE, 3, 5)),
        f"llm/b@{pods[1].metrics_url}": Exposition.parse(busy(FIXTURE, 0, 1)),
    }, now=1.0)
    loads = await sampler.pod_loads(WorkloadRef(namespace="llm", name="chat"), [Pod("a"), Pod("b"), Pod("c")])
    assert loads == {"a": 8.0, "b": 1.0}  # c was never scraped: absent, not 0
    await engine.aclose()


def test_simulated_backend_settings_are_validated_and_name_the_field() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sim_nodes"):
        SpokeSettings(cluster_id="c", sim_nodes="H100:2")
    with pytest.raises(ValidationError, match="sim_workload"):
        SpokeSettings(cluster_id="c", sim_workload="llama")
    assert SpokeSettings(cluster_id="c", sim_nodes="H100:2x8,L4:4x4").sim_nodes == "H100:2x8,L4:4x4"


@dataclass
class _PodInfo:
    name: str
    namespace: str = "llm"
    ip: str | None = "127.0.0.1"
    node: str | None = "n"
    container_ids: tuple[str, ...] = ()
    ready: bool = True
    gpu_type: str = "H100"
    containers: tuple[Any, ...] = ()


class _Lister:
    def __init__(self, pods: list[_PodInfo]) -> None:
        self._pods = pods

    async def pods(self, ref: WorkloadRef) -> list[_PodInfo]:
        return self._pods


async def test_unknown_engine_is_counted_in_a_metric_and_named_in_readyz_detail() -> None:
    from aiohttp import web
    from prometheus_client import generate_latest

    from spoke.backend import WorkloadState

    async def llamacpp(_: web.Request) -> web.Response:
        return web.Response(text="llamacpp:requests_processing 3\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", llamacpp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        metrics = SpokeMetrics()
        sampler = Sampler(SpokeSettings(cluster_id="c", engine_metrics_port=port), metrics,
                          build_sources(SpokeSettings(cluster_id="c")))
        sampler.attach(_Lister([_PodInfo("chat-0")]))  # type: ignore[arg-type]
        ref = WorkloadRef(namespace="llm", name="chat")
        samples = await sampler([WorkloadState(ref, 1, 1, labels={"fleetscale.dev/model": "m"})])
        assert samples["llm/chat"].requests_waiting is None
        assert "unknown engine" in samples["llm/chat"].missing_reasons["requests_waiting"]
        assert b"fleetscale_spoke_unknown_engine_pods 1.0" in generate_latest(metrics.registry)
        detail = sampler.readiness_detail()
        assert list(detail["unknown_engine_pods"]) == ["llm/chat-0"]  # type: ignore[call-overload]
        await sampler.aclose()
    finally:
        await runner.cleanup()


def test_dcgm_discovery_alone_builds_the_dcgm_source() -> None:
    sources = build_sources(SpokeSettings(cluster_id="c", dcgm_discover=True))
    assert [s.name for s in sources] == ["engines", "dcgm", "metrics-api"]
