"""The ``fleetscale`` command: a thin dispatcher to each process's own entry point.

Subcommands are imported lazily by name, so ``shared`` (the contract package) never imports ``hub``
or ``spoke`` at import time, and ``fleetscale hub`` does not pay for the spoke's imports.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "hub": ("hub.__main__", "run the hub (settings from HUB_* environment variables)"),
    "spoke": ("spoke.__main__", "run a spoke agent (settings from SPOKE_* environment variables)"),
    "demo": ("spoke.demo", "run NATS, the hub and three simulated GPU clusters on this machine"),
    "simulate": ("hub.backtest.cli", "replay a trace: Fleetscale vs swept baselines and a hindsight plan"),
    "status": ("hub.operator.cli", "a hub's readiness, clusters and workloads (over its web API)"),
    "policies": ("hub.operator.cli", "get | apply -f | delete | dry-run policies (over the hub's web API)"),
    "budgets": ("hub.operator.cli", "get | apply -f | delete fleet GPU budgets (over the hub's web API)"),
    "decisions": ("hub.operator.cli", "list a hub's recent decisions"),
    "approvals": ("hub.operator.cli", "list | approve | reject decisions waiting for approval"),
    "explain": ("hub.operator.cli", "explain one decision: inputs, proposals, stages, placement, commands"),
    "top": ("hub.operator.cli", "a live terminal view of the fleet"),
    "keda": ("hub.operator.keda", "render a policy as KEDA ScaledObjects for teams who want KEDA alone"),
    "nats-auth": ("shared.natsauth", "issue per-spoke NATS identities and the nats-server authorization file"),
    "nats-topology": ("shared.natstopology", "write nats-server configs: a hub-side cluster and a leaf per spoke"),
}
"""Each module has ``main(argv)``, except the operator verbs, which share one with ``run(verb, argv)``."""
VERBS_MODULE = "hub.operator.cli"


def usage() -> str:
    lines = ["usage: fleetscale COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `fleetscale COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"fleetscale: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    if COMMANDS[name][0] == VERBS_MODULE:
        return int(module.run(name, rest))
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
