"""Reading requests: JSON bodies into pydantic models, query parameters, preconditions, the actor.

Each helper raises ``ApiError`` 400 naming the field, so handlers stay free of parsing branches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.web.api.errors import ApiError, bad_field, field_errors
from hub.web.api.keys import PRINCIPAL

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/") and
                                                  content_type.endswith("+json"))


async def read_json(request: web.Request, *, error_text: str = "invalid body") -> object:
    """The body as JSON; 415 when it is declared as anything but JSON, 400 when it is not JSON."""
    if not _is_json(request.content_type):
        raise ApiError(415, "unsupported media type", [{
            "field": "Content-Type", "message": f"must be application/json, not {request.content_type!r}"}])
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, error_text, [{"field": "body", "message": "a JSON body is required"}])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, "malformed JSON", [{"field": "body", "message": str(e)}]) from None


async def read_model(request: web.Request, model: type[M], *, error_text: str = "invalid body") -> M:
    """The body validated as ``model`` (which forbids unknown fields); 400 naming every bad field."""
    data = await read_json(request, error_text=error_text)
    if not isinstance(data, dict):
        raise ApiError(400, error_text, [{"field": "body", "message": "must be a JSON object"}])
    return validate(model, data, error_text=error_text)


def validate(model: type[M], data: Mapping[str, object], *, error_text: str = "invalid body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ApiError(400, error_text, field_errors(e)) from None


def query_int(request: web.Request, name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_field(name, "must be an integer", error_text="invalid query parameter") from None
    if not lo <= value <= hi:
        raise bad_field(name, f"must be in [{lo}, {hi}]", error_text="invalid query parameter")
    return value


def query_str(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise bad_field(name, "give it at most once", error_text="invalid query parameter")
    return values[0] if values else None


_ETAG = re.compile(r'^(?:"([0-9]{1,19})"|([0-9]{1,19}))$')
"""A strong entity tag holding a revision; the bare number is accepted too (curl users forget quotes)."""


def if_match(request: web.Request) -> int | None:
    """The revision an ``If-Match: "<revision>"`` header asks for; None when absent or ``*`` (any)."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    m = _ETAG.match(raw.strip())
    if m is None:
        raise bad_field("If-Match", 'must be a policy revision as an entity tag, e.g. "12", or *',
                        error_text="invalid header")
    return int(m.group(1) or m.group(2))


def update_precondition(request: web.Request, body_revision: int) -> int | None:
    """The revision a PUT must replace (compare-and-set): ``If-Match`` wins over the body's
    revision, as in HTTP (``*``: overwrite whatever is there, None); without either, 428."""
    header = if_match(request)
    if "If-Match" in request.headers:
        if header is not None and body_revision and body_revision != header:
            raise ApiError(400, "invalid body", [{"field": "revision",
                                                  "message": f"says {body_revision}, If-Match says {header}"}])
        return header
    if body_revision:
        return body_revision
    raise bad_field("revision", 'give the revision you read: If-Match: "<revision>" or the body\'s revision '
                    '(If-Match: * overwrites whatever is there)', status=428, error_text="precondition required")


def etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


def actor(request: web.Request) -> str | None:
    """The authenticated principal's name, when an auth middleware put one on the request."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        return None
    if isinstance(principal, Mapping):
        name = principal.get("name")
    else:
        name = getattr(principal, "name", None)
    return str(name) if name is not None else None
