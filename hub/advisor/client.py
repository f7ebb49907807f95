"""An OpenAI-compatible chat-completions client: vLLM, llama.cpp's server, hosted APIs, Gemini's
OpenAI-compatible endpoint. One POST per question, with a JSON Schema response format.

Failures are classified for the caller: ``AdvisorUnavailable`` (timeout, connection, 5xx, 429:
ask again next interval) and ``AnswerError`` (the endpoint answered, but not with a usable
object). Either way the engine's count stands; nothing here retries in a loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.advisor.answer import ANSWER_SCHEMA, AnswerError


class AdvisorUnavailable(Exception):
    """No answer this time: the model could not be reached or did not answer in time."""


def read_api_key(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as e:
        raise AdvisorUnavailable(f"cannot read the API key file {path}: {e.strerror}") from e


JSON_SCHEMA_FORMAT = {"type": "json_schema",
                      "json_schema": {"name": "replica_advice", "schema": ANSWER_SCHEMA, "strict": True}}
JSON_OBJECT_FORMAT = {"type": "json_object", "schema": {
    "type": "object", "required": ["replicas", "confidence", "rationale"],
    "properties": {"replicas": {"type": "integer"}, "confidence": {"type": "number"}, "rationale": {"type": "string"}}}}
"""The fallback for servers that know only ``json_object`` (llama-cpp-python's server, which takes a
schema beside it and constrains decoding with a grammar built from it). NB: plain types only, without
``resources`` and bounds: from the nested maps and from ``maxLength`` llama-cpp-python 0.3.36 builds a
grammar it cannot parse, and its server dies. ``read_answer`` checks the bounds either way."""


async def chat(
    session: aiohttp.ClientSession,
    endpoint: str,
    model: str,
    system: str,
    user: str,
    *,
    timeout_s: float,
    api_key: str | None = None,
) -> str:
    """The assistant message's text. Asks with OpenAI's ``json_schema`` response format; a server that
    refuses that format by name is asked once more with ``json_object`` and the schema."""
    body: dict[str, Any] = {
        "model": model,
        "temperature": 0,
        "max_tokens": 400,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "response_format": JSON_SCHEMA_FORMAT,
    }
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = endpoint.rstrip("/") + "/chat/completions"
    try:
        async with asyncio.timeout(timeout_s):
            status, raw = await _post(session, url, body, headers)
            if status >= 400 and b"response_format" in raw:
                status, raw = await _post(session, url, body | {"response_format": JSON_OBJECT_FORMAT}, headers)
    except TimeoutError as e:
        raise AdvisorUnavailable(f"no answer from {url} within {timeout_s:g} s") from e
    except aiohttp.ClientError as e:
        raise AdvisorUnavailable(f"cannot reach {url}: {e}") from e
    if status == 429 or status >= 500:
        raise AdvisorUnavailable(f"HTTP {status} from {url}")
    if status >= 400:
        raise AnswerError("answer", f"HTTP {status} from {url}: {raw[:200]!r}")
    return _content(raw)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                headers: dict[str, str]) -> tuple[int, bytes]:
    async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
        return resp.status, await resp.read()


def _content(raw: bytes) -> str:
    try:
        data: Any = orjson.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as e:
        raise AnswerError("answer", "not a chat-completions response (choices[0].message.content)") from e
    if not isinstance(content, str):
        raise AnswerError("answer", "choices[0].message.content is not a string")
    return content
