"""``/api/v1/advisor``: the LLM advisor's latest exchange per workload (docs/advisor.md).

Each exchange is what the audit keeps: the summary sent, the model's answer as received, the
parsed advice or why it was unusable, and how long it took. Nothing here applies anything.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from hub.web.api.errors import json_response
from hub.web.api.http import query_str
from hub.web.api.keys import ADVISOR

routes = web.RouteTableDef()


class Exchange(BaseModel):
    workload: str
    policy_id: str
    mode: str = Field(description="advisory (recorded only) or bounded (applied within the guard rails)")
    at: str
    summary: dict[str, Any] = Field(description="What the model was sent (docs/advisor.md)")
    answer: str | None = Field(description="The model's answer as received; null when none came")
    advice: dict[str, Any] | None = Field(description="The parsed advice; null when the answer was unusable")
    error: str | None
    latency_s: float


class ExchangeList(BaseModel):
    exchanges: list[Exchange]


@routes.get("/api/v1/advisor")
async def exchanges(request: web.Request) -> web.Response:
    """Newest exchange per workload; ``workload`` (namespace/name) for one."""
    latest = request.app[ADVISOR].latest
    only = query_str(request, "workload")
    items = [e.to_json() for key, e in sorted(latest.items()) if only is None or key == only]
    return json_response({"exchanges": items})
