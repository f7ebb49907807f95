"""Helpers shared by the policy source tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hub.policies.crd_schema import GROUP, KIND, PLURAL, VERSION

RESOURCE = f"{GROUP}/{VERSION}/{PLURAL}"


def policy_object(name: str, spec: dict[str, Any], *, namespace: str = "inference", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": spec,
    }


async def until(check: Callable[[], Any], *, timeout_s: float = 3.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (the watch is asynchronous by nature)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
