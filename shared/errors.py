"""Errors, classified by what the caller should do about them.

``TemporaryError`` means: retry later (it carries a suggested delay). ``PermanentError`` means:
retrying the same thing will fail the same way; report it and move on. Third-party exceptions are
wrapped with ``raise ... from`` at the boundary that knows what they mean.
"""

from __future__ import annotations


class FleetscaleError(Exception):
    """Base of every error this project raises on purpose."""


class TemporaryError(FleetscaleError):
    def __init__(self, message: str, *, delay_s: float = 1.0) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentError(FleetscaleError):
    pass


class InvalidMessage(PermanentError):
    """A message on the bus did not validate against its model. Count it, drop it."""

    def __init__(self, message: str, *, subject: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.subject = subject
        self.field = field


class BusUnavailable(TemporaryError):
    """NATS could not be reached or did not answer in time."""


class ConfigurationError(PermanentError):
    """Settings or a policy file are wrong; the process should not start."""


class MissingDependency(PermanentError):
    """An external program the command needs is not installed; the message says how to get it."""
