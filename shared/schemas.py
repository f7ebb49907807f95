"""``python -m shared.schemas``: write the JSON Schema of every wire message to docs/protocol/."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from .messages import json_schemas


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or ["docs/protocol"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for stem, schema in json_schemas().items():
        (out / f"{stem}.schema.json").write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n")
        print(out / f"{stem}.schema.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
