"""The typed app keys through which handlers reach the hub's parts (never module globals)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hub.auth import PRINCIPAL  # re-exported: store writes record who made them
from hub.decisions import DecisionLog
from hub.metrics import HubMetrics
from hub.policies import PolicyStore
from hub.state import FleetState

STATE = web.AppKey("state", FleetState)
DECISIONS = web.AppKey("decisions", DecisionLog)
POLICIES = web.AppKey("policies", PolicyStore)
METRICS = web.AppKey("metrics", HubMetrics)
READY = web.AppKey("ready", Callable[[], bool])


__all__ = ["DECISIONS", "METRICS", "POLICIES", "PRINCIPAL", "READY", "STATE"]
