"""``fleetscale keda render POLICY_FILE``: write a policy's KEDA objects (``hub/policies/scaledobjects.py``).

Offline: it reads a policy file (the same YAML the hub's file source reads) and prints
multi-document YAML (or a JSON list) to apply with kubectl. Exit 1 names the policy field KEDA
cannot express; exit 2 is a usage or file error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
import yaml

from hub.policies.scaledobjects import THANOS, Untranslatable, render
from hub.policies.store import parse_policy_file
from shared.errors import ConfigurationError


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fleetscale keda", description="render a policy as KEDA objects")
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("render", help="ScaledObject, TriggerAuthentication, ServiceAccount and RBAC per policy")
    r.add_argument("policy_file", type=Path)
    r.add_argument("--id", help="only this policy of the file")
    r.add_argument("--prometheus", default=THANOS, help=f"Prometheus or Thanos querier URL (default {THANOS})")
    r.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    args = p.parse_args(argv)
    try:
        policies = parse_policy_file(args.policy_file)
    except ConfigurationError as e:
        print(f"fleetscale keda: {e}", file=sys.stderr)
        return 2
    if args.id is not None:
        policies = [x for x in policies if x.id == args.id]
        if not policies:
            print(f"fleetscale keda: no policy {args.id!r} in {args.policy_file}", file=sys.stderr)
            return 2
    objects = []
    for policy in policies:
        try:
            objects += render(policy, args.prometheus)
        except Untranslatable as e:
            print(f"fleetscale keda: policy {policy.id}: {e}", file=sys.stderr)
            return 1
    if args.output == "json":
        print(orjson.dumps(objects, option=orjson.OPT_INDENT_2).decode())
    else:
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
    return 0
