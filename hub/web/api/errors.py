"""API errors: every error is a JSON body ``{"error", "details"}`` that names the field at fault.

Handlers raise ``ApiError`` (or let a ``PolicyError`` from the store through: it carries its own
HTTP status); the ``json_errors`` middleware answers both, aiohttp's own errors (404, 405, 413) and
anything unexpected (500, logged) in the same shape, so a client never has to parse HTML.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.policies.store import PolicyError

logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    """Dotted path into the body (``bounds.max_replicas``), a query parameter or a header name."""
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[FieldError] | FieldError | dict[str, Any] | str | None = None


def json_body(data: Any) -> bytes:
    """A model by its own serialiser (``model_dump_json``: the schema OpenAPI shows), anything else by orjson."""
    return data.model_dump_json().encode() if isinstance(data, BaseModel) else orjson.dumps(data)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json_body(data), status=status, content_type="application/json", headers=headers)


class ApiError(Exception):
    """Raised by handlers; the middleware answers it as ``{"error", "details"}`` with its status."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error(status: int, message: str, details: Any = None) -> ApiError:
    return ApiError(status, message, details)


def bad_field(field: str, message: str, *, status: int = 400, error_text: str = "invalid request") -> ApiError:
    return ApiError(status, error_text, {"field": field, "message": message})


_LEADING_FIELD = re.compile(r"^([a-z_][a-z0-9_|]*(?:\.[A-Za-z0-9_*-]+)*): ")


def _join(location: str, lead: str) -> str:
    if not location or location == lead or location.endswith("." + lead):
        return location or lead
    return f"{location}.{lead}"


_SUBJECT_FIELD = re.compile(r"^([a-z][a-z0-9]*_[a-z0-9_]*) (?:must|should) ")


def field_errors(e: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as ``[{field, message}]``.

    Cross-field rules raise at the enclosing model, so their location stops there; their message
    starts with the field (``bounds.min_replicas: 0 needs ...`` or ``max_replicas must be ...``),
    which completes the path.
    """
    out = []
    for err in e.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        field = ".".join(str(p) for p in err["loc"])
        if m := _LEADING_FIELD.match(message):
            field = _join(field, m.group(1))
            message = message[m.end():]
        elif m := _SUBJECT_FIELD.match(message):
            field = _join(field, m.group(1))
        out.append({"field": field or "body", "message": message})
    return out


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return json_response({"error": e.message, "details": e.details}, status=e.status)
    except PolicyError as e:
        return json_response({"error": str(e), "details": e.details}, status=e.status)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return json_response({"error": e.reason, "details": {"path": request.path}}, status=e.status)
    except (nats.errors.Error, TimeoutError) as e:
        # The policy bucket did not answer: nothing was written, the same request may be retried.
        logger.warning("%s %s: policy store unavailable: %r", request.method, request.path, e)
        return json_response({"error": "policy store unavailable; retry", "details": {"reason": type(e).__name__}},
                             status=503, headers={"Retry-After": "1"})
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return json_response({"error": "internal error", "details": {"path": request.path}}, status=500)
