"""The hub's web API: one aiohttp app over the hub's parts, with JSON errors everywhere.

Routes live in one module per concept (health, fleet, decisions, policies, seed, openapi); each has
its own ``RouteTableDef`` and reaches the hub's parts through the typed app keys, never globals.
"""

from __future__ import annotations

from aiohttp import web

from hub.advisor.advisor import Advisor
from hub.control.approvals import Approvals
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.store import BudgetStore, PolicyStore
from hub.policy.vertical import ResourceHistory
from hub.state import FleetState
from hub.web.api import advisor, approvals, decisions, fleet, health, history, openapi, policies, resources, seed
from hub.web.api import budgets as budgets_api
from hub.web.api.errors import json_errors
from hub.web.api.keys import (
    ADVISOR,
    APPROVALS,
    BUDGET_USE,
    BUDGETS,
    DECISIONS,
    HISTORY,
    METRICS,
    POLICIES,
    READY,
    RESOURCES,
    STATE,
    BudgetUses,
    Readiness,
)
from hub.web.auth import AccessPolicy, auth_middleware
from hub.web.history import FleetHistory

ROUTES = (health.routes, openapi.routes, fleet.routes, decisions.routes, policies.routes, seed.routes,
          history.routes, advisor.routes, resources.routes, approvals.routes)


def make_app(
    *,
    state: FleetState,
    decisions: DecisionLog,
    policies: PolicyStore,
    metrics: HubMetrics,
    ready: Readiness,
    access: AccessPolicy | None = None,
    history: FleetHistory | None = None,
    advisor: Advisor | None = None,
    budgets: BudgetStore | None = None,
    budget_use: BudgetUses | None = None,
    resources: ResourceHistory | None = None,
    approvals: Approvals | None = None,
) -> web.Application:
    """The API app. ``ready`` says what keeps the hub from being ready (``/readyz``); ``access`` None (or without
    a lookup) means no authentication: everyone is admin."""
    guard = auth_middleware(access or AccessPolicy(lookup=None), on_denied=lambda r: metrics.api_denied.labels(r).inc())
    # json_errors outermost, so an error raised anywhere below (the guard included) is still JSON.
    app = web.Application(middlewares=[json_errors, guard])
    app[STATE] = state
    app[DECISIONS] = decisions
    app[POLICIES] = policies
    app[METRICS] = metrics
    app[READY] = ready
    app[HISTORY] = history or FleetHistory()
    app[ADVISOR] = advisor or Advisor(metrics, decisions)
    app[BUDGET_USE] = budget_use or dict
    app[RESOURCES] = resources if resources is not None else ResourceHistory()
    # Without an evaluator (tests of the API alone) nothing is ever proposed: an empty book.
    app[APPROVALS] = approvals or Approvals(state=state, policies=policies, dispatcher=None, decisions=decisions,
                                            metrics=metrics)
    for table in ROUTES:
        app.add_routes(table)
    if budgets is not None:  # (a hub always has them; some tests build the API without)
        app[BUDGETS] = budgets
        app.add_routes(budgets_api.routes)
    return app
