"""Decision records: the audit trail of what the hub decided, why, and what came of it.

The bodies are ``hub.decisions.model.Decision`` itself, serialised by the model.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from hub.decisions.model import Decision
from hub.web.api.errors import bad_field, error, json_response
from hub.web.api.http import query_int, query_str
from hub.web.api.keys import DECISIONS
from shared.messages import CLUSTER_ID_PATTERN

routes = web.RouteTableDef()


class DecisionList(BaseModel):
    decisions: list[Decision]


def time_query(request: web.Request, field: str) -> datetime | None:
    raw = query_str(request, field)
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        # NB: a literal '+' in a query string reads as a space; say how to write an offset.
        raise bad_field(field, "must be an RFC 3339 time such as 2026-11-22T12:00:00Z (write +01:00 as %2B01:00)",
                        error_text="invalid query parameter") from None
    if at.tzinfo is None:
        raise bad_field(field, "must have a time zone (Z or an offset)", error_text="invalid query parameter")
    return at


@routes.get("/api/v1/decisions")
async def decisions(request: web.Request) -> web.Response:
    """Newest first; filters: ``workload`` (namespace/name), ``cluster``, ``since`` (inclusive) and
    ``until`` (exclusive) as RFC 3339 times, ``limit``."""
    limit = query_int(request, "limit", 100, lo=1, hi=10000)
    cluster = query_str(request, "cluster")
    if cluster is not None and not CLUSTER_ID_PATTERN.match(cluster):
        raise bad_field("cluster", f"must match {CLUSTER_ID_PATTERN.pattern}", error_text="invalid query parameter")
    since, until = time_query(request, "since"), time_query(request, "until")
    if since is not None and until is not None and until < since:
        raise bad_field("until", "must not be before since", error_text="invalid query parameter")
    items = request.app[DECISIONS].recent(
        workload=query_str(request, "workload"), cluster=cluster, since=since, until=until, limit=limit
    )
    return json_response(DecisionList(decisions=items))


@routes.get("/api/v1/decisions/{id}")
async def decision(request: web.Request) -> web.Response:
    d = request.app[DECISIONS].get(request.match_info["id"])
    if d is None:
        raise error(404, "decision not found", {"id": request.match_info["id"]})
    return json_response(d)
