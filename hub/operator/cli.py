"""Argument parsing and exit codes for the operator verbs (``fleetscale status|policies|...``).

Flags follow kubectl's habits: ``-o json|yaml|table``, ``--hub`` (or ``FLEETSCALE_HUB``), a token
from ``--token-file`` / ``FLEETSCALE_TOKEN_FILE`` or ``FLEETSCALE_TOKEN`` (never a ``--token``
flag: it would land in shell history and ``ps``). Exit codes are ``client.ExitCode``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hub.operator import verbs
from hub.operator.client import Connection, ExitCode, HubClient, OperatorError
from hub.operator.output import Format

Verb = Callable[[argparse.Namespace, HubClient], Awaitable[str]]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", help="hub URL (default: $FLEETSCALE_HUB or http://127.0.0.1:8080)")
    parser.add_argument("--token-file", help="file holding the API bearer token ($FLEETSCALE_TOKEN_FILE; "
                                             "or the token itself in $FLEETSCALE_TOKEN)")
    parser.add_argument("--ca-file", help="CA bundle for an HTTPS hub ($FLEETSCALE_CA_FILE)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    parser.add_argument("-o", "--output", type=Format, choices=list(Format), default=Format.TABLE)


def _stored_objects(p: argparse.ArgumentParser, one: str, many: str, get_help: str) -> Any:
    """``get [ID]``, ``apply -f FILE`` and ``delete ID`` for objects the hub stores (policies, budgets);
    the subparsers, for verbs of their own."""
    sub = p.add_subparsers(dest="action", required=True)
    get = sub.add_parser("get", help=get_help)
    get.add_argument("id", nargs="?")
    apply = sub.add_parser("apply", help=f"create or update the {many} in a YAML/JSON file (- for stdin)")
    apply.add_argument("-f", "--file", required=True)
    delete = sub.add_parser("delete", help=f"delete a {one}")
    delete.add_argument("id")
    for s in (get, apply, delete):
        _common(s)
    return sub


def parser_for(verb: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"fleetscale {verb}", description=DESCRIPTIONS[verb])
    _common(p)
    if verb == "policies":
        sub = _stored_objects(p, "policy", "policies", "list policies, or show one")
        dry = sub.add_parser("dry-run", help="put a policy in dry-run (record, send nothing); --off to enforce")
        dry.add_argument("id")
        dry.add_argument("--off", action="store_true")
        _common(dry)
    elif verb == "budgets":
        _stored_objects(p, "budget", "budgets", "list budgets with their use against their caps, or show one")
    elif verb == "decisions":
        sub = p.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="newest decisions first")
        ls.add_argument("--workload", help="namespace/name")
        ls.add_argument("--cluster")
        ls.add_argument("--since", help="RFC 3339 time")
        ls.add_argument("--limit", type=int, default=20)
        _common(ls)
    elif verb == "approvals":
        sub = p.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="decisions waiting for approval, oldest first")
        ls.add_argument("--workload", help="namespace/name")
        _common(ls)
        for action in ("approve", "reject"):
            settle = sub.add_parser(action, help=f"{action} a waiting decision (its id from approvals list)")
            settle.add_argument("id")
            settle.add_argument("-m", "--comment", help="kept on the decision record with your name")
            _common(settle)
    elif verb == "explain":
        p.add_argument("id", help="a decision id (fleetscale decisions list)")
    elif verb == "top":
        p.add_argument("--interval", type=float, default=2.0, help="seconds between frames (default 2)")
        p.add_argument("--iterations", type=int, help="stop after this many frames (default: until Ctrl-C)")
        p.add_argument("--decisions", type=int, default=8, help="how many recent decisions to show")
    return p


DESCRIPTIONS = {
    "status": "the hub's readiness, its clusters and its workloads",
    "policies": "get, apply, delete or dry-run AIInferenceAutoscalerPolicy objects",
    "budgets": "get, apply or delete AIInferenceBudget objects (docs/budgets.md); writes need the admin role",
    "decisions": "list the hub's recent decisions",
    "approvals": "list, approve or reject the decisions of approval-mode policies",
    "explain": "one decision in words and numbers: inputs, proposals, stages, placement, commands",
    "top": "a live terminal view of the fleet",
}


def _verb(verb: str, args: argparse.Namespace) -> Verb:
    if verb == "policies":
        return {"get": verbs.policies_get, "apply": verbs.policies_apply, "delete": verbs.policies_delete,
                "dry-run": verbs.policies_dry_run}[args.action]
    if verb == "budgets":
        return {"get": verbs.budgets_get, "apply": verbs.budgets_apply, "delete": verbs.budgets_delete}[args.action]
    if verb == "approvals":
        return {"list": verbs.approvals_list, "approve": verbs.approvals_settle,
                "reject": verbs.approvals_settle}[args.action]
    if verb == "top":
        from hub.operator.top import top

        return top
    return {"status": verbs.status, "decisions": verbs.decisions_list, "explain": verbs.explain_decision}[verb]


async def _run(verb: Verb, args: argparse.Namespace) -> str:
    connection = Connection.resolve(args.hub, None, args.token_file, args.ca_file, args.timeout)
    async with HubClient(connection) as hub:
        return await verb(args, hub)


def run(verb_name: str, argv: list[str]) -> int:
    args = parser_for(verb_name).parse_args(argv)
    try:
        out = asyncio.run(_run(_verb(verb_name, args), args))
    except OperatorError as e:
        if args.output is Format.JSON:
            print(orjson.dumps({"error": e.message, "details": e.details}).decode(), file=sys.stderr)
        else:
            print(f"fleetscale {verb_name}: {e.message}", file=sys.stderr)
            if e.details:
                print(f"  details: {e.details}", file=sys.stderr)
        return int(e.code)
    except KeyboardInterrupt:
        return int(ExitCode.OK)
    if out:
        print(out)
    return int(ExitCode.OK)


def entry(verb_name: str) -> Callable[[list[str]], int]:
    return lambda argv: run(verb_name, argv)
