"""The hub's web API. ``make_app`` builds it; the app keys give handlers the hub's parts."""

from hub.web.api.app import make_app
from hub.web.api.errors import ApiError, error, json_response
from hub.web.api.keys import DECISIONS, METRICS, POLICIES, READY, STATE

__all__ = ["DECISIONS", "METRICS", "POLICIES", "READY", "STATE", "ApiError", "error", "json_response", "make_app"]
