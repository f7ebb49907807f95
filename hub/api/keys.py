"""The typed app keys through which handlers reach the hub's parts (never module globals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from hub.decisions import DecisionLog
from hub.metrics import HubMetrics
from hub.policies import PolicyStore
from hub.state import FleetState

STATE = web.AppKey("state", FleetState)
DECISIONS = web.AppKey("decisions", DecisionLog)
POLICIES = web.AppKey("policies", PolicyStore)
METRICS = web.AppKey("metrics", HubMetrics)
READY = web.AppKey("ready", Callable[[], bool])

PRINCIPAL: web.RequestKey[Any] = web.RequestKey("principal")
"""Who made the request (an object or mapping with a ``name``), put there by the auth middleware;
absent while no authentication runs. Store writes record its name as ``updated_by``."""
