"""``python -m hub`` / ``fleetscale hub``: read settings once, configure logs, run until a signal."""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from hub.service import run_hub
from hub.settings import HubSettings
from shared import logs
from shared.errors import ConfigurationError
from shared.lifecycle import failure_status, install_signal_handlers, run


async def _main(settings: HubSettings) -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await run_hub(settings, stop=stop)


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print("usage: fleetscale hub\n\nSettings come from HUB_* environment variables; see README.md.")
        return 0
    try:
        settings = HubSettings()
    except ValidationError as e:
        print(f"fleetscale hub: invalid settings:\n{e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        run(_main(settings))
    except ConfigurationError as e:
        print(f"fleetscale hub: {e}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as failed:  # a root task failed or ended: the process stopped
        return failure_status("fleetscale hub", failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
