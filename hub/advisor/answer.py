"""What the model may answer, and how an answer is read: strictly, whatever the model sends.

The model is asked for JSON matching ``ANSWER_SCHEMA`` (the OpenAI ``json_schema`` response format).
Small local models and some servers ignore it, so ``read_answer`` also accepts the object inside a
Markdown code fence or surrounded by prose; anything else, or any field of the wrong type or out of
bounds, is an ``AnswerError`` that names the field. An answer is never partially trusted: one bad
field rejects the whole answer, and the engine's own count stands.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_REPLICAS = 10_000
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"

Quantity = Annotated[str, StringConstraints(pattern=QUANTITY, max_length=32)]


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: Quantity | None = None
    memory: Quantity | None = None


class ContainerResources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: Resources = Resources()
    limits: Resources = Resources()


ContainerName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


class Advice(BaseModel):
    """One parsed answer. Strict: no coercion of strings to numbers, no extra fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    replicas: int = Field(ge=0, le=MAX_REPLICAS, description="Total replicas the model recommends")
    resources: dict[ContainerName, ContainerResources] = Field(default_factory=dict, max_length=16)
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    rationale: Annotated[str, StringConstraints(max_length=2000)] = ""


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["replicas", "confidence", "rationale"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 0, "maximum": MAX_REPLICAS},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string", "maxLength": 2000},
        "resources": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    k: {"type": "object", "additionalProperties": False,
                        "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}}}
                    for k in ("requests", "limits")
                },
            },
        },
    },
}


class AnswerError(ValueError):
    """The answer could not be used; ``field`` names what was wrong ("answer" for the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
MAX_ANSWER_CHARS = 20_000


def _json_object(text: str) -> Any:
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerError("answer", f"longer than {MAX_ANSWER_CHARS} characters")
    candidates = [text.strip()]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            # NB: parse_constant refuses NaN/Infinity, which Python's json accepts by default.
            return json.loads(candidate, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            continue
    raise AnswerError("answer", "no JSON object found in the model's answer")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_answer(text: str) -> Advice:
    data = _json_object(text)
    if not isinstance(data, dict):
        raise AnswerError("answer", f"expected a JSON object, got {type(data).__name__}")
    try:
        return Advice.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "answer"
        raise AnswerError(field, err["msg"]) from None
