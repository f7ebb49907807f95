"""``/api/v1/history``: the fleet and each workload over time, for the page's charts.

From the hub's in-memory history (``hub/web/history.py``): a window of 15 min to 24 h, points at
10 s (up to an hour) or 2 min resolution, ``null`` where the hub had no value, and the window's
decisions as markers that link to ``/api/v1/decisions/{id}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from hub.web.api.errors import error, json_response
from hub.web.api.http import query_int, query_str
from hub.web.api.keys import DECISIONS, HISTORY
from hub.web.history import FIELDS, markers

routes = web.RouteTableDef()

MIN_WINDOW_S, MAX_WINDOW_S = 60, 24 * 3600


class Marker(BaseModel):
    t: float = Field(description="Unix time of the decision")
    id: str
    action: str
    to: int
    cause: str | None = None


class History(BaseModel):
    workload: str | None = Field(description="namespace/name; null for the whole fleet")
    window_s: int
    resolution_s: float
    t: list[float] = Field(description="Unix times of the points, oldest first")
    values: dict[str, list[float | None]] = Field(description=f"Per field ({', '.join(FIELDS)}): one value per point")
    replicas: dict[str, list[float | None]] = Field(
        description="Replicas per cluster/GPU type (a workload) or per GPU type (the fleet): one value per point"
    )
    markers: list[Marker]
    workloads: list[str] = Field(description="Workloads with a history")


@routes.get("/api/v1/history")
async def history(request: web.Request) -> web.Response:
    """``workload`` (namespace/name; absent: the fleet) and ``window_s`` (60 s to 24 h, default 1 h)."""
    store = request.app[HISTORY]
    window_s = query_int(request, "window_s", 3600, lo=MIN_WINDOW_S, hi=MAX_WINDOW_S)
    workload = query_str(request, "workload")
    data = store.window(workload, window_s)
    if data is None:
        raise error(404, "no history for this workload", {"field": "workload", "message": f"{workload!r} unknown"})
    since = datetime.fromtimestamp(store.clock() - window_s, UTC)
    recent = request.app[DECISIONS].recent(workload=workload, since=since, limit=500) if workload else []
    body: dict[str, Any] = {"workload": workload, "window_s": window_s, **data, "markers": markers(recent),
                            "workloads": store.workloads()}
    return json_response(body)
