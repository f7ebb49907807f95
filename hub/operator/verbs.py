"""The verbs: ``status``, ``policies``, ``budgets``, ``decisions``, ``approvals``, ``explain`` and ``top``, each
one async call.

Each verb takes the parsed arguments and a ``HubClient`` and returns what to print; ``__main__``
(``hub/operator/cli.py``) turns errors into messages on stderr and exit codes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from hub.operator.client import ExitCode, HubClient, OperatorError
from hub.operator.explanation import explain
from hub.operator.output import Column, Format, render

CLUSTER_COLUMNS: list[Column] = [
    ("cluster", lambda c: c.get("cluster_id")),
    ("state", lambda c: "stale" if c.get("stale") else "fresh"),
    ("age_s", lambda c: c.get("age_s")),
    ("free_gpus", lambda c: c.get("free_gpus")),
    ("replicas", lambda c: c.get("replicas_by_gpu_type")),
    ("workloads", lambda c: len(c.get("workloads") or [])),
]
WORKLOAD_COLUMNS: list[Column] = [
    ("workload", lambda w: w.get("workload")),
    ("desired", lambda w: w.get("desired_replicas")),
    ("ready", lambda w: w.get("ready_replicas")),
    ("by_gpu_type", lambda w: w.get("replicas_by_gpu_type")),
    ("policy", lambda w: (w.get("policy") or {}).get("id")),
    ("mode", lambda w: (w.get("policy") or {}).get("mode")),
    ("last_action", lambda w: (w.get("last_decision") or {}).get("action")),
]
POLICY_COLUMNS: list[Column] = [
    ("id", lambda p: p.get("id")),
    ("revision", lambda p: p.get("revision")),
    ("mode", lambda p: p.get("mode")),
    ("source", lambda p: p.get("source")),
    ("bounds", lambda p: p.get("bounds")),
    ("signals", lambda p: [s.get("name") or s.get("metric") for s in p.get("signals") or []]),
]
DECISION_COLUMNS: list[Column] = [
    ("id", lambda d: d.get("id")),
    ("at", lambda d: (d.get("at") or "")[:19]),
    ("workload", lambda d: d.get("workload")),
    ("action", lambda d: d.get("action")),
    ("replicas", lambda d: f"{d.get('current_replicas')}→{d.get('desired_replicas')}"),
    ("cause", lambda d: d.get("cause")),
    ("mode", lambda d: d.get("mode")),
    ("reason", lambda d: (d.get("reason") or "")[:60]),
]


async def status(args: argparse.Namespace, hub: HubClient) -> str:
    ready, is_ready = await _readiness(hub)
    clusters = (await hub.get("/api/v1/clusters"))["clusters"]
    workloads = (await hub.get("/api/v1/workloads"))["workloads"]
    data = {"hub": hub.connection.url, "ready": is_ready, "readiness": ready, "clusters": clusters,
            "workloads": workloads}
    if args.output is not Format.TABLE:
        return render(data, args.output)
    state = "ready" if is_ready else f"NOT READY ({ready.get('details')})"
    return "\n".join([
        f"hub {hub.connection.url}: {state}", "",
        render(None, Format.TABLE, clusters, CLUSTER_COLUMNS), "",
        render(None, Format.TABLE, workloads, WORKLOAD_COLUMNS),
    ])


async def _readiness(hub: HubClient) -> tuple[dict[str, Any], bool]:
    try:
        body = await hub.get("/readyz")
        return (body if isinstance(body, dict) else {"status": body}), True
    except OperatorError as e:
        if e.code is ExitCode.UNREACHABLE:
            raise
        return {"status": "not ready", "details": e.details or e.message}, False


BUDGET_COLUMNS: list[Column] = [
    ("id", lambda b: b.get("id")),
    ("team", lambda b: b.get("team") or b.get("id")),
    ("revision", lambda b: b.get("revision")),
    ("source", lambda b: b.get("source")),
    ("caps", lambda b: b.get("caps")),
    ("gpus", lambda b: (b.get("use") or {}).get("gpus")),
    ("usd_per_hour", lambda b: (b.get("use") or {}).get("cost_per_hour")),
    ("at_cap", lambda b: (b.get("use") or {}).get("at_cap")),
]


async def policies_get(args: argparse.Namespace, hub: HubClient) -> str:
    return await _get(args, hub, "policies", POLICY_COLUMNS)


async def budgets_get(args: argparse.Namespace, hub: HubClient) -> str:
    return await _get(args, hub, "budgets", BUDGET_COLUMNS)


async def _get(args: argparse.Namespace, hub: HubClient, plural: str, columns: list[Column]) -> str:
    if args.id:
        one = await hub.get(f"/api/v1/{plural}/{args.id}")
        return render(one, args.output, [one], columns)
    items = (await hub.get(f"/api/v1/{plural}"))[plural]
    return render({plural: items}, args.output, items, columns)


def read_policy_file(path: str, kind: str = "policy") -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text() if path != "-" else sys.stdin.read()
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise OperatorError(f"cannot read {path}: {e}", ExitCode.USAGE) from e
    if isinstance(data, dict) and isinstance(data.get(_PLURAL[kind]), list):
        data = data[_PLURAL[kind]]
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in items):
        raise OperatorError(f"{path}: expected a {kind} or a list of {_PLURAL[kind]}, each with an id", ExitCode.USAGE)
    return items


_PLURAL = {"policy": "policies", "budget": "budgets"}


async def policies_apply(args: argparse.Namespace, hub: HubClient) -> str:
    return await _apply(args, hub, "policy")


async def budgets_apply(args: argparse.Namespace, hub: HubClient) -> str:
    return await _apply(args, hub, "budget")


async def _apply(args: argparse.Namespace, hub: HubClient, kind: str) -> str:
    """Create what is new, update what exists (compare-and-set on the revision just read)."""
    lines = []
    base = f"/api/v1/{_PLURAL[kind]}"
    for item in read_policy_file(args.file, kind):
        pid = item["id"]
        try:
            current = await hub.get(f"{base}/{pid}")
        except OperatorError as e:
            if e.code is not ExitCode.NOT_FOUND:
                raise
            current = None
        body = {k: v for k, v in item.items() if k != "revision"}
        if current is None:
            await hub.request("POST", base, body=body)
            lines.append(f"{kind} {pid} created")
        else:
            answer, _ = await hub.request("PUT", f"{base}/{pid}", body=body,
                                          headers={"If-Match": f'"{current["revision"]}"'})
            same = answer.get("revision") == current["revision"]
            lines.append(f"{kind} {pid} {'unchanged' if same else 'configured'} (revision {answer.get('revision')})")
    return "\n".join(lines)


async def policies_delete(args: argparse.Namespace, hub: HubClient) -> str:
    answer, _ = await hub.request("DELETE", f"/api/v1/policies/{args.id}")
    return render(answer, args.output) if args.output is not Format.TABLE else f"policy {args.id} deleted"


async def budgets_delete(args: argparse.Namespace, hub: HubClient) -> str:
    answer, _ = await hub.request("DELETE", f"/api/v1/budgets/{args.id}")
    return render(answer, args.output) if args.output is not Format.TABLE else f"budget {args.id} deleted"


async def policies_dry_run(args: argparse.Namespace, hub: HubClient) -> str:
    mode = "enforce" if args.off else "dry-run"
    answer, _ = await hub.request("PATCH", f"/api/v1/policies/{args.id}", body={"mode": mode})
    if args.output is not Format.TABLE:
        return render(answer, args.output)
    return f"policy {args.id} mode {answer.get('mode', mode)} (revision {answer.get('revision')})"


async def decisions_list(args: argparse.Namespace, hub: HubClient) -> str:
    items = (await hub.get("/api/v1/decisions", workload=args.workload, cluster=args.cluster, since=args.since,
                           limit=str(args.limit)))["decisions"]
    return render({"decisions": items}, args.output, items, DECISION_COLUMNS)


APPROVAL_COLUMNS: list[Column] = [
    ("id", lambda d: d.get("id")),
    ("at", lambda d: (d.get("at") or "")[:19]),
    ("workload", lambda d: d.get("workload")),
    ("replicas", lambda d: f"{d.get('current_replicas')}→{d.get('desired_replicas')}"),
    ("placement", lambda d: d.get("placement_after")),
    ("expires", lambda d: ((d.get("approval") or {}).get("expires_at") or "")[:19]),
    ("reason", lambda d: (d.get("reason") or "")[:60]),
]


async def approvals_list(args: argparse.Namespace, hub: HubClient) -> str:
    items = (await hub.get("/api/v1/approvals", workload=args.workload))["approvals"]
    return render({"approvals": items}, args.output, items, APPROVAL_COLUMNS)


async def approvals_settle(args: argparse.Namespace, hub: HubClient) -> str:
    """``approve`` or ``reject`` one decision; a stale one exits 5 (conflict) naming why."""
    body = {"comment": args.comment} if args.comment else None
    answer, _ = await hub.request("POST", f"/api/v1/approvals/{args.id}/{args.action}", body=body)
    if args.output is not Format.TABLE:
        return render(answer, args.output)
    approval = answer.get("approval") or {}
    sent = answer.get("commands") or []
    tail = f", {len(sent)} commands sent" if args.action == "approve" else ""
    return f"decision {args.id} ({answer.get('workload')}) {approval.get('state')} by {approval.get('by')}{tail}"


async def explain_decision(args: argparse.Namespace, hub: HubClient) -> str:
    decision = await hub.get(f"/api/v1/decisions/{args.id}")
    return explain(decision) if args.output is Format.TABLE else render(decision, args.output)
