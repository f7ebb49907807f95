"""One decision in words and numbers: ``fleetscale explain DECISION_ID``.

It reads the decision as the engine worked (see ``hub/policy/audit.py``): the inputs against
their targets, what each signal proposed and how, each stage that changed the count, where the
replicas went, and what the spokes answered. Anything the record lacks is said to be missing, not
guessed; fields this client does not know are still printed under "other", so a newer hub's audit
is never hidden.
"""

from __future__ import annotations

from typing import Any

from hub.operator.output import cell

KNOWN_AUDIT = {"workload", "policy_id", "policy_revision", "current_replicas", "ready_replicas", "inputs", "load",
               "capacity", "correction", "proposals", "merged", "clamps", "panic", "desired_replicas", "reason",
               "starts"}


def explain(decision: dict[str, Any]) -> str:
    out: list[str] = []
    out += _header(decision)
    audit = decision.get("audit")
    if not isinstance(audit, dict):
        out.append("\nNo engine audit was recorded for this decision (a decision from an older hub, or a hold).")
    else:
        out += _inputs(audit)
        out += _proposals(audit)
        out += _clamps(audit)
        out += _capacity(audit)
        out += _starts(audit)
        other = {k: v for k, v in audit.items() if k not in KNOWN_AUDIT and v not in (None, {}, [])}
        if other:
            out.append("\nOther audit fields:")
            out += [f"  {k}: {cell(v)}" for k, v in other.items()]
    out += _placement(decision)
    out += _commands(decision)
    return "\n".join(out)


def _header(d: dict[str, Any]) -> list[str]:
    lines = [
        f"Decision {d.get('id')} at {d.get('at')}",
        f"  workload  {d.get('workload')}   policy {d.get('policy_id')} (revision {d.get('policy_revision')}, "
        f"mode {d.get('mode')})",
        f"  action    {d.get('action')}: {d.get('current_replicas')} → {d.get('desired_replicas')} replicas",
    ]
    for key in ("cause", "deciding_signal"):
        if d.get(key):
            lines.append(f"  {key.replace('_', ' '):<9} {d[key]}")
    lines.append(f"  why       {d.get('reason')}")
    return lines


def _inputs(audit: dict[str, Any]) -> list[str]:
    rows = audit.get("inputs") or []
    if not rows:
        return ["\nInputs: none (no signal had a value)."]
    lines = ["\nInputs (value against target):"]
    for i in rows:
        value = "missing" if i.get("value") is None else f"{cell(i['value'])} {i.get('unit', '')}".rstrip()
        line = f"  {i.get('signal')}: {value} (target {cell(i.get('target'))} {i.get('unit', '')})".rstrip()
        if i.get("partial"):
            line += " — partial: " + ", ".join(f"{c} {why}" for c, why in (i.get("missing") or {}).items())
        if i.get("note"):
            line += f" — {i['note']}"
        lines.append(line)
    load = audit.get("load") or {}
    if load:
        lines.append("  load: " + cell(load))
    return lines


def _proposals(audit: dict[str, Any]) -> list[str]:
    lines = ["\nProposals (the largest wins, as the HPA merges metrics):"]
    for p in audit.get("proposals") or []:
        replicas = "no proposal" if p.get("replicas") is None else f"{p['replicas']} replicas"
        detail = cell(p.get("detail") or {})
        suffix = f" ({detail})" if detail != "—" else ""
        lines.append(f"  {p.get('source')} by {p.get('method')}: {replicas}{suffix}")
    if len(lines) == 1:
        lines.append("  none")
    lines.append(f"  merged: {cell(audit.get('merged'))}")
    return lines


def _clamps(audit: dict[str, Any]) -> list[str]:
    clamps = audit.get("clamps") or []
    if not clamps:
        return ["\nNo stage changed the merged count."]
    lines = ["\nStages that changed the count:"]
    for c in clamps:
        msg = f" — {c['message']}" if c.get("message") else ""
        lines.append(f"  {c.get('stage')}: {c.get('before')} → {c.get('after')} ({c.get('reason')}){msg}")
    return lines


def _capacity(audit: dict[str, Any]) -> list[str]:
    capacity = audit.get("capacity") or {}
    if not capacity:
        return []
    lines = ["\nCapacity per replica by GPU type (tokens/s, prompt + generated, at the SLO):"]
    for gpu, signals in capacity.items():
        lines.append(f"  {gpu}: {cell(signals)}")
    for signal, c in (audit.get("correction") or {}).items():
        lines.append(f"  learned correction for {signal}: {cell(c)}")
    return lines


def _starts(audit: dict[str, Any]) -> list[str]:
    starts = audit.get("starts") or {}
    if not starts:
        return []
    lines = ["\nMeasured start of a new replica (90th percentile of recent cold and cached starts):"]
    for where, e in starts.items():
        tiers = ", ".join(f"{t} {cell(s)} s" for t, s in (e.get("tiers") or {}).items())
        lines.append(f"  {where}: {cell(e.get('start_s'))} s over {e.get('starts')} starts ({tiers})")
    return lines


def _placement(d: dict[str, Any]) -> list[str]:
    before, after = d.get("placement_before") or {}, d.get("placement_after") or {}
    lines = ["\nPlacement (cluster/GPU type: before → after):"]
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key, 0), after.get(key, 0)
        mark = "" if a == b else f"  ({a - b:+d})"
        lines.append(f"  {key}: {b} → {a}{mark}")
    if len(lines) == 1:
        lines.append("  nothing placed")
    if d.get("unplaced"):
        lines.append(f"  unplaced: {d['unplaced']} replicas (no free capacity where the policy allows)")
    for note in d.get("notes") or []:
        lines.append(f"  note: {note}")
    return lines


def _approval(d: dict[str, Any]) -> list[str]:
    approval = d.get("approval")
    if not isinstance(approval, dict):
        return []
    state = approval.get("state")
    if state == "pending":
        return [f"\nApproval: waiting for an operator until {approval.get('expires_at')} "
                f"(fleetscale approvals approve {d.get('id')})."]
    who = f" by {approval['by']}" if approval.get("by") else ""
    line = f"\nApproval: {state}{who} at {approval.get('at')}"
    if approval.get("superseded_by"):
        line += f", by decision {approval['superseded_by']}"
    if approval.get("comment"):
        line += f" ({approval['comment']})"
    return [line + "."]


def _commands(d: dict[str, Any]) -> list[str]:
    commands, results = d.get("commands") or [], d.get("results") or {}
    lines = _approval(d)
    if not commands:
        approval = d.get("approval")
        reason = ("dry-run" if d.get("mode") == "dry-run" else
                  str(approval.get("state")) if isinstance(approval, dict) else "nothing to change")
        return [*lines, f"\nNo command sent ({reason})."]
    lines.append("\nCommands and their results:")
    for cid in commands:
        r = results.get(cid)
        if r is None:
            lines.append(f"  {cid}: no result yet")
            continue
        extra = f" — {r['error']}" if r.get("error") else ""
        lines.append(f"  {cid}: {r.get('status')} on {r.get('cluster_id', '?')}{extra}")
    return lines
