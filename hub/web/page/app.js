// Fleetscale fleet page: first render from the JSON API, live updates from /api/v1/events (SSE).
//
// Every value from the hub reaches the DOM as text (textContent / text nodes) or as an attribute
// value set through the DOM, never as HTML. A value the hub reports as null is shown as "—":
// the page never fills a gap with a guess.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "fleetscale.token";
const MAX_DECISIONS = 200;
const DASH = "—";

const state = {
  token: readToken(),
  clusters: [],
  workloads: [],
  policies: [],
  decisions: new Map(), // id -> {data, node}
  source: null,
  everOpened: false,
};

// --- authentication ------------------------------------------------------------------------------

// An optional bearer token comes as #token=... once, is kept in localStorage, and is then removed
// from the address bar so it is not left on screen or in bookmarks.
function readToken() {
  let token = "";
  try {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      token = decodeURIComponent(match[1]);
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      token = localStorage.getItem(TOKEN_KEY) || "";
    }
  } catch (e) {
    // Storage may be disabled; a token from the hash still works for this page view.
  }
  return token;
}

async function getJson(path) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(API + path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    showBanner("Not authorised. Open this page as /#token=<your API token>.");
    throw new Error("unauthorised");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

// A write (approve or reject): the API's JSON answer, or an Error carrying its message and reason.
async function postJson(path, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(API + path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const details = (answer && answer.details) || {};
    const why = details.reason || details.required_role && "needs the " + details.required_role + " role" || "";
    throw new Error(((answer && answer.error) || "HTTP " + response.status) + (why ? " (" + why + ")" : ""));
  }
  return answer;
}

// --- small DOM helpers ---------------------------------------------------------------------------

// el("span", {class: "pill"}, "text", childNode): strings become text nodes, never markup.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "title") node.title = String(value);
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else throw new Error("el: unsupported property " + key);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function pill(text, kind) {
  return el("span", { class: "pill " + kind }, text);
}

function dryRunBadge() {
  return el("span", { class: "badge dry-run", title: "evaluated and recorded; no command is sent" }, "dry-run");
}

function modeBadge(mode) {
  if (mode === "dry-run") return dryRunBadge();
  if (mode !== "approval") return null;
  return el("span", { class: "badge approval-mode", title: "each change waits for an operator's approval" },
    "approval");
}

function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text;
  banner.hidden = !text;
}

// --- formatting ----------------------------------------------------------------------------------

function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

function fmtNumber(v) {
  if (!isNum(v)) return DASH;
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(3)));
}

function fmtLatency(s) {
  if (!isNum(s)) return DASH;
  return s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s";
}

function fmtAge(s) {
  if (!isNum(s)) return DASH;
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

function fmtTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleTimeString();
}

function fmtValue(v) {
  if (v === null || v === undefined) return DASH;
  if (typeof v === "number") return fmtNumber(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

const ACTIONS = {
  scale_up: "↑ scale up",
  scale_down: "↓ scale down",
  rebalance: "⇄ rebalance",
  hold: "= hold",
};

function actionPill(action) {
  const known = Object.hasOwn(ACTIONS, action);
  return pill(known ? ACTIONS[action] : String(action), "action " + (known ? "action-" + action : ""));
}

// --- clusters ------------------------------------------------------------------------------------

function gpuTypes(inventory) {
  const byType = new Map();
  for (const node of inventory || []) {
    const t = byType.get(node.gpu_type) || { free: 0, total: 0, capacity: 0 };
    t.free += node.free_gpus;
    t.total += node.allocatable_gpus;
    t.capacity += node.capacity_gpus;
    byType.set(node.gpu_type, t);
  }
  return [...byType.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

function renderCluster(c) {
  const health = c.stale
    ? pill("stale", "bad")
    : pill("fresh", "good");
  const rows = gpuTypes(c.inventory).map(([type, t]) => {
    const bar = el("div", { class: "bar" }, el("div", { class: "bar-used" }));
    const used = t.total > 0 ? (t.total - t.free) / t.total : 0;
    bar.firstChild.style.width = Math.round(Math.min(Math.max(used, 0), 1) * 100) + "%";
    return el("div", { class: "gpu-row", "data-gpu-type": type },
      el("span", { class: "gpu-type" }, type),
      bar,
      el("span", { class: "gpu-count", title: t.capacity + " GPUs installed, " + t.total + " allocatable" },
        t.free + " / " + t.total + " free"));
  });
  return el("article", { class: "card" + (c.stale ? " stale" : ""), "data-cluster": c.cluster_id },
    el("div", { class: "card-head" },
      el("h3", null, c.cluster_id),
      health,
      el("span", { class: "muted", title: "time since the last report arrived" }, fmtAge(c.age_s) + " ago")),
    rows.length ? el("div", { class: "gpus" }, rows) : el("p", { class: "empty" }, "No GPU nodes reported."),
    el("p", { class: "muted small" },
      (c.workloads || []).length + " workload" + ((c.workloads || []).length === 1 ? "" : "s"),
      " · reports every " + fmtNumber(c.interval_s) + " s",
      c.spoke_version ? " · spoke " + c.spoke_version : ""));
}

const CLUSTER_PAGE = 24;

// Fresh clusters first, a page of cards at a time; stale ones collapsed under one summary, so a
// flood of unknown or dead clusters never buries the live ones (nor the page's DOM).
function renderClusters() {
  const box = document.getElementById("clusters");
  const more = document.getElementById("clusters-more");
  const list = state.clusters;
  const fresh = list.filter((c) => !c.stale);
  const stale = list.filter((c) => c.stale);
  document.getElementById("clusters-count").textContent = list.length
    ? "(" + fresh.length + " fresh" + (stale.length ? ", " + stale.length + " stale" : "") + ")" : "";
  const shown = fresh.slice(0, state.clusterPage || CLUSTER_PAGE);
  box.replaceChildren(...(list.length ? shown.map(renderCluster)
    : [el("p", { class: "empty" }, "No cluster has reported yet.")]));
  const extra = [];
  if (fresh.length > shown.length) {
    const b = el("button", { class: "more" }, "show " + Math.min(CLUSTER_PAGE, fresh.length - shown.length) +
      " more of " + (fresh.length - shown.length));
    b.type = "button";
    b.addEventListener("click", () => {
      state.clusterPage = (state.clusterPage || CLUSTER_PAGE) + CLUSTER_PAGE;
      renderClusters();
    });
    extra.push(b);
  }
  if (stale.length) {
    const names = stale.slice(0, 200).map((c) => c.cluster_id).join(", ") + (stale.length > 200 ? ", …" : "");
    extra.push(el("details", { class: "stale-list" },
      el("summary", null, stale.length + " stale cluster" + (stale.length === 1 ? "" : "s") + " (no recent report)"),
      el("p", { class: "muted small" }, names)));
  }
  more.replaceChildren(...extra);
}

// --- workloads -----------------------------------------------------------------------------------

// The p95 TTFT target of the workload's policy: its SLO. Other signals have no TTFT SLO to show.
function ttftSlo(policy) {
  const signal = policy ? (policy.signals || []).find((s) => s.metric === "ttft" && s.percentile === "p95") : null;
  return signal && isNum(signal.target) ? signal.target : null;
}

function fmtTarget(signal) {
  return signal.name + " " + (signal.metric === "ttft" || signal.metric === "itl" || signal.metric === "e2e_latency"
    ? fmtLatency(signal.target) : fmtNumber(signal.target));
}

// TTFT p95 over the fresh clusters that measured it, weighted by their request rates (as the engine
// reads a latency; the worst cluster when no rate is known), with the clusters that did not.
function ttftOf(w) {
  const missing = [];
  const parts = [];
  let weighted = 0, weight = 0, worst = null;
  for (const [cid, c] of Object.entries(w.clusters || {})) {
    const s = c.samples || {};
    const v = s.ttft ? s.ttft.p95_s : null;
    if (isNum(v)) {
      parts.push(cid + ": " + fmtLatency(v));
      if (worst === null || v > worst) worst = v;
      if (isNum(s.request_rate_per_s) && s.request_rate_per_s > 0) {
        weighted += v * s.request_rate_per_s;
        weight += s.request_rate_per_s;
      }
    } else if ((c.ready_replicas || 0) > 0) {
      missing.push(cid);
    }
  }
  const value = weight > 0 ? weighted / weight : worst;
  return { value, missing, parts };
}

// Requests waiting, summed over the clusters that reported it; partial when some did not.
function queueOf(w) {
  let total = null;
  const missing = [];
  for (const [cid, c] of Object.entries(w.clusters || {})) {
    const v = c.samples ? c.samples.requests_waiting : null;
    if (isNum(v)) total = (total || 0) + v;
    else missing.push(cid);
  }
  return { total, missing };
}

function renderTtft(w) {
  const { value, missing, parts } = ttftOf(w);
  const slo = ttftSlo(w.policy);
  const cls = value !== null && slo !== null ? (value > slo ? "over" : "within") : "";
  let title = parts.length ? "request-weighted over " + parts.join(", ") : "not measured";
  if (missing.length && parts.length) title += "; not measured on " + missing.join(", ");
  const partial = value !== null && missing.length > 0;
  return el("td", { class: "num", title },
    el("span", { class: cls, "data-ttft": "" }, fmtLatency(value)),
    el("span", { class: "muted" }, " / " + (slo === null ? DASH : fmtLatency(slo))),
    partial ? el("span", { class: "muted", "data-partial": "" }, " (partial)") : null);
}

function renderQueue(w) {
  const { total, missing } = queueOf(w);
  const partial = total !== null && missing.length > 0;
  const title = missing.length ? "not reported by " + missing.join(", ") : "requests waiting, all clusters";
  return el("td", { class: "num", title }, fmtNumber(total), partial ? el("span", { class: "muted" }, " (partial)") : null);
}

function renderPlacement(w) {
  const chips = Object.entries(w.placement || {}).map(([key, n]) => {
    const cut = key.indexOf("/");
    const [cluster, gpu] = cut < 0 ? [key, "?"] : [key.slice(0, cut), key.slice(cut + 1)];
    return el("span", { class: "chip" }, el("b", null, cluster), " · " + gpu + " × " + n);
  });
  for (const cid of w.stale_clusters || []) chips.push(el("span", { class: "chip stale" }, cid + " stale"));
  return chips.length ? chips : DASH;
}

function renderWorkload(w) {
  const policy = w.policy;
  const policyLine = policy
    ? el("div", { class: "muted small" },
      "policy " + policy.id + " · " + (policy.signals || []).map(fmtTarget).join(", "),
      modeBadge(policy.mode),
      (policy.overridden || []).length ? el("div", null, "also selected by " + policy.overridden.join(", ")) : null)
    : el("div", { class: "muted small" }, "no policy");
  const last = w.last_decision;
  return el("tr", { "data-workload": w.workload },
    el("td", null, el("div", { class: "wl-name" }, w.workload), policyLine, advisorLine(w.workload),
      resourcesLine(w.workload)),
    el("td", { class: "num" }, w.ready_replicas + " / " + w.desired_replicas),
    el("td", { class: "chips" }, renderPlacement(w)),
    renderTtft(w),
    renderQueue(w),
    el("td", null, last ? [actionPill(last.action), " ", el("span", { class: "muted small" }, fmtTime(last.at))]
      : el("span", { class: "muted" }, DASH)));
}

// The LLM advisor's latest word on a workload (docs/advisor.md), as IPA's agent log shows it.
function advisorLine(workload) {
  const x = (state.advice || {})[workload];
  if (!x) return null;
  const head = "advisor (" + x.mode + ", " + fmtTime(x.at) + "): ";
  const body = x.advice
    ? x.advice.replicas + " replicas, confidence " + fmtNumber(x.advice.confidence) + " — " + x.advice.rationale
    : "no usable answer: " + x.error;
  return el("div", { class: "muted small advisor", "data-advisor": workload, title: x.answer || "" }, head + body);
}

function fmtBytes(v) {
  if (!isNum(v)) return DASH;
  return v >= 2 ** 30 ? fmtNumber(v / 2 ** 30) + " GiB" : fmtNumber(v / 2 ** 20) + " MiB";
}

// Vertical recommendations (docs/vertical.md): per GPU type and container, target against the request.
function resourcesLine(workload) {
  const r = (state.resources || {})[workload];
  if (!r || !r.containers.length) return null;
  const parts = r.containers.map((c) =>
    c.container + " on " + c.gpu_type + ": CPU " + fmtNumber(c.cpu_cores.target) + " cores (request " +
    fmtNumber(c.current.cpu_request_cores) + "), memory " + fmtBytes(c.proposal.memory_request_bytes) +
    " (request " + fmtBytes(c.current.memory_request_bytes) + "), GPU memory " + fmtBytes(c.gpu_memory_bytes.target));
  const head = "resources (" + (r.apply ? "applied" : "recommended") + "): ";
  return el("div", { class: "muted small resources", "data-resources": workload }, head + parts.join("; "));
}

async function loadResources() {
  const keys = state.workloads.slice(0, 50).map((w) => w.workload);
  const found = {};
  await Promise.all(keys.map(async (key) => {
    try {
      found[key] = await getJson("/workloads/" + key.split("/").map(encodeURIComponent).join("/") + "/resources");
    } catch (e) {
      // A workload gone since the list was read: nothing to show.
    }
  }));
  state.resources = found;
  if (Object.values(found).some((r) => r.containers.length)) renderWorkloads();
}

async function loadAdvice() {
  try {
    const body = await getJson("/advisor");
    state.advice = Object.fromEntries(body.exchanges.map((x) => [x.workload, x]));
    if (body.exchanges.length) renderWorkloads();
  } catch (e) {
    // The advisor is optional; the page works without it.
  }
}

function renderWorkloads() {
  const body = document.getElementById("workloads-body");
  const list = state.workloads;
  document.getElementById("workloads-count").textContent = list.length ? "(" + list.length + ")" : "";
  if (list.length) {
    body.replaceChildren(...list.map(renderWorkload));
    return;
  }
  const cell = el("td", { class: "empty" }, "No workload reported yet.");
  cell.colSpan = 6;
  body.replaceChildren(el("tr", null, cell));
}

// Every policy, and whether it scales any workload the fleet reports (a typo in a selector shows here).
function renderPolicies() {
  const box = document.getElementById("policies");
  const used = new Set(state.workloads.filter((w) => w.policy).map((w) => w.policy.id));
  box.replaceChildren(...(state.policies.length ? ["Policies: ", ...state.policies.map((p) =>
    el("span", { class: "chip", "data-policy": p.id }, p.id, modeBadge(p.mode),
      used.has(p.id) ? null : el("span", { class: "muted" }, " · selects no reported workload")))]
    : ["No policy."]));
}

function applyFleet(fleet) {
  state.clusters = fleet.clusters || [];
  state.workloads = fleet.workloads || [];
  if (fleet.policies) state.policies = fleet.policies;
  renderClusters();
  renderWorkloads();
  renderPolicies();
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// --- decisions -----------------------------------------------------------------------------------

function placementChange(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])].sort();
  if (!keys.length) return [DASH];
  return keys.map((k) => {
    const b = (before || {})[k] || 0;
    const a = (after || {})[k] || 0;
    return el("span", { class: "chip" + (a !== b ? " changed" : "") }, k + " " + (a !== b ? b + " → " + a : a));
  });
}

function renderResults(d) {
  const results = Object.entries(d.results || {});
  const items = results.map(([, r]) => {
    const ok = r.status === "applied";
    const text = r.cluster_id + ": " + r.status + (r.reason && r.reason !== r.status ? " (" + r.reason + ")" : "");
    return el("span", { class: "chip " + (ok ? "ok" : "bad"), title: r.error || null, "data-result": r.status },
      text);
  });
  const pending = (d.commands || []).filter((id) => !Object.hasOwn(d.results || {}, id)).length;
  if (pending) items.push(el("span", { class: "chip pending" }, pending + " pending"));
  if (!items.length) {
    if (d.mode === "dry-run") return el("span", { class: "muted" }, "no command sent (dry-run)");
    if (d.approval) return el("span", { class: "muted" }, "no command sent (" + d.approval.state + ")");
    return DASH;
  }
  return items;
}

// What a decision changes, for its header: a rebalance keeps the count but moves replicas (made
// before the old ones are broken), which "1 → 1" alone hides.
function changeSummary(d) {
  const before = d.placement_before || {}, after = d.placement_after || {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const moves = keys.map((k) => [k, (after[k] || 0) - (before[k] || 0)]).filter(([, n]) => n !== 0);
  if (!moves.length) return null;
  return el("span", { class: "moves muted small", "data-moves": "" },
    moves.map(([k, n]) => (n > 0 ? "+" : "−") + Math.abs(n) + " " + k).join(", "));
}

function renderDecision(d) {
  const inputs = Object.entries(d.inputs || {}).map(([k, v]) =>
    el("span", { class: "kv" }, el("span", { class: "k" }, k), " ", el("span", { class: "v" }, fmtValue(v))));
  return el("li", { class: "decision", "data-decision": d.id, "data-action": d.action },
    el("div", { class: "decision-head" },
      el("time", { class: "muted small", title: d.at }, fmtTime(d.at)),
      el("span", { class: "wl-name" }, d.workload),
      actionPill(d.action),
      el("span", { class: "replicas" }, d.current_replicas + " → " + d.desired_replicas),
      d.action === "rebalance" || d.action === "hold" ? changeSummary(d) : null,
      d.mode === "dry-run" ? dryRunBadge() : null,
      approvalBadge(d.approval),
      explainButton(d.id)),
    d.approval && d.approval.state === "pending" ? approvalButtons(d.id) : null,
    el("p", { class: "reason" }, d.reason),
    el("dl", null,
      el("dt", null, "inputs"), el("dd", { class: "inputs" }, inputs.length ? inputs : DASH),
      el("dt", null, "placement"), el("dd", { class: "chips" }, placementChange(d.placement_before, d.placement_after),
        d.unplaced ? el("span", { class: "chip bad" }, d.unplaced + " unplaced") : null),
      (d.notes || []).length ? [el("dt", null, "notes"), el("dd", null, d.notes.join("; "))] : null,
      (d.routing || []).length ? [el("dt", null, "routing"), el("dd", { class: "chips routing" },
        d.routing.map(routingChip))] : null,
      el("dt", null, "commands"), el("dd", { class: "chips results" }, renderResults(d))),
    el("p", { class: "muted small" }, "policy " + d.policy_id + " rev " + d.policy_revision));
}

// One routing rule (docs/routing.md): the prompt lengths of a class and the GPU types that may
// serve them, with the plan's shares; what a gateway is told, so an operator can check it.
function routingChip(r) {
  const lo = r.min_prompt_tokens || 0, hi = r.max_prompt_tokens;
  const range = hi == null ? "> " + fmtNumber(lo) : fmtNumber(lo) + "–" + fmtNumber(hi);
  const shares = (r.gpu_types || []).map((t) => t + " " + Math.round(100 * ((r.weights || {})[t] || 0)) + " %");
  return el("span", { class: "chip", "data-prompt-max": hi == null ? "" : String(hi) },
    range + " prompt tokens: " + shares.join(", "));
}

// --- approvals (mode: approval; docs/approvals.md) ----------------------------------------------------

const APPROVAL_TEXT = {
  pending: "awaiting approval",
  approved: "approved",
  rejected: "rejected",
  expired: "expired unapproved",
  superseded: "superseded",
};

function approvalBadge(approval) {
  if (!approval) return null;
  const known = Object.hasOwn(APPROVAL_TEXT, approval.state);
  let text = known ? APPROVAL_TEXT[approval.state] : String(approval.state);
  if (approval.by) text += " by " + approval.by;
  if (approval.state === "pending") text += " until " + fmtTime(approval.expires_at);
  const title = [approval.at ? "at " + approval.at : null, approval.comment].filter(Boolean).join(": ");
  return el("span", { class: "badge approval " + (known ? approval.state : ""), "data-approval": approval.state,
    title: title || null }, text);
}

function approvalButtons(id) {
  const approve = el("button", { class: "approve", "data-approve": id }, "Approve");
  const reject = el("button", { class: "reject", "data-reject": id }, "Reject");
  for (const [button, verb] of [[approve, "approve"], [reject, "reject"]]) {
    button.type = "button";
    button.addEventListener("click", () => settleDecision(id, verb, [approve, reject]));
  }
  return el("div", { class: "approval-actions" }, approve, reject);
}

// How many of the decisions on the page wait for an operator, beside the feed's title.
function showPendingCount() {
  let n = 0;
  for (const { data } of state.decisions.values()) if (data.approval && data.approval.state === "pending") n += 1;
  const badge = document.getElementById("approvals-pending");
  badge.textContent = n + " awaiting approval";
  badge.hidden = n === 0;
}

async function settleDecision(id, verb, buttons) {
  for (const b of buttons) b.disabled = true;
  try {
    upsertDecision(await postJson("/approvals/" + encodeURIComponent(id) + "/" + verb));
    showBanner("");
  } catch (e) {
    showBanner("Could not " + verb + " decision " + id + ": " + e.message);
    // It may have been settled meanwhile (expired, superseded): show what it is now.
    getJson("/decisions/" + encodeURIComponent(id)).then(upsertDecision).catch(() => {});
  }
}

function explainButton(id) {
  const b = el("button", { class: "explain-link", "data-explain": id }, "explain");
  b.type = "button";
  b.addEventListener("click", () => explainDecision(id));
  return b;
}

// A decision arrives again, same id, as its results come in; results only ever grow, so merging
// them makes the order of the API's answer and the stream's events irrelevant.
function upsertDecision(d) {
  const list = document.getElementById("decisions");
  const known = state.decisions.get(d.id);
  if (known) {
    d = { ...d, results: { ...known.data.results, ...d.results } };
    const node = renderDecision(d);
    known.node.replaceWith(node);
    state.decisions.set(d.id, { data: d, node });
    showPendingCount();
    return;
  }
  const node = renderDecision(d);
  const at = Date.parse(d.at);
  let before = null;
  for (const child of list.children) {
    const other = state.decisions.get(child.getAttribute("data-decision"));
    if (other && Date.parse(other.data.at) <= at) {
      before = child;
      break;
    }
  }
  list.insertBefore(node, before);
  state.decisions.set(d.id, { data: d, node });
  while (list.children.length > MAX_DECISIONS) {
    const last = list.lastElementChild;
    state.decisions.delete(last.getAttribute("data-decision"));
    last.remove();
  }
  document.getElementById("decisions-empty").hidden = true;
  showPendingCount();
}

async function loadDecisions() {
  const body = await getJson("/decisions?limit=" + MAX_DECISIONS);
  for (const d of body.decisions.slice().reverse()) upsertDecision(d);
  document.getElementById("decisions-empty").hidden = state.decisions.size > 0;
}

// --- live feed -----------------------------------------------------------------------------------

function setConnection(kind, text) {
  const conn = document.getElementById("conn");
  conn.setAttribute("data-state", kind);
  conn.textContent = text;
}

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch (e) {
    return null;
  }
}

function connect() {
  const url = API + "/events" + (state.token ? "?access_token=" + encodeURIComponent(state.token) : "");
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener("open", () => {
    setConnection("live", "live");
    // After a reconnect, decisions recorded while the stream was down are read once more.
    if (state.everOpened) loadDecisions().catch(() => {});
    state.everOpened = true;
  });
  source.addEventListener("error", () => {
    setConnection("down", "disconnected, retrying");
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error answer, e.g. 401): retry ourselves, not in a tight loop.
      setTimeout(connect, 5000);
    }
  });
  source.addEventListener("fleet", (event) => {
    const fleet = parse(event);
    if (fleet) applyFleet(fleet);
  });
  source.addEventListener("decision", (event) => {
    const d = parse(event);
    if (d && d.id) upsertDecision(d);
  });
  source.addEventListener("gap", () => {
    loadDecisions().catch(() => {});
  });
}

async function start() {
  connect();
  try {
    const [clusters, workloads, policies] = await Promise.all(
      [getJson("/clusters"), getJson("/workloads"), getJson("/policies")]);
    applyFleet({ clusters: clusters.clusters, workloads: workloads.workloads, policies: policies.policies });
    await loadDecisions();
    loadAdvice();
    setInterval(loadAdvice, 15000);
    loadResources();
    setInterval(loadResources, 15000);
  } catch (e) {
    if (e.message !== "unauthorised") showBanner("Could not load the fleet: " + e.message);
  }
}

start();
