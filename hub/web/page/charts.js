// Fleetscale page, part two: the fleet over time (SVG charts from /api/v1/history) and the explain
// view of one decision (/api/v1/decisions/{id}).
//
// Charts are drawn as plain SVG elements built through the DOM: no charting library to vendor or
// load from a CDN, nothing the strict CSP has to allow, and five small chart kinds do not need one.
// Values the hub reports as null are gaps in a line, never zeros. Depends on app.js (el, getJson,
// fmt* helpers), loaded before it.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const WINDOWS = [["15 min", 900], ["1 h", 3600], ["6 h", 21600], ["24 h", 86400]];
const PALETTE = ["#2f6fde", "#e07b24", "#2a9d5b", "#b8439a", "#7b61c9", "#c8a215", "#3aa6b9", "#d1495b"];

const charts = { workload: null, windowS: 3600, timer: null, last: null, budgets: [] };

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// --- scales and drawing --------------------------------------------------------------------------

const W = 520, H = 150, PAD = { l: 48, r: 10, t: 10, b: 22 };

function extent(arrays, floorZero) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) return null;
  if (floorZero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  return [lo, hi * 1.08];
}

function scaler(t, yExt) {
  const t0 = t[0], t1 = t[t.length - 1] === t0 ? t0 + 1 : t[t.length - 1];
  const x = (v) => PAD.l + ((v - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - ((v - yExt[0]) / (yExt[1] - yExt[0])) * (H - PAD.t - PAD.b);
  return { x, y, t0, t1 };
}

// A polyline per run of non-null points, so a gap in the data is a gap in the line.
function line(t, values, s, color, label, dashed) {
  const g = svg("g", { "data-series": label });
  let run = [];
  const flush = () => {
    if (run.length) g.append(svg("polyline", { points: run.join(" "), fill: "none", stroke: color,
      "stroke-width": 1.6, "stroke-dasharray": dashed ? "4 3" : null }));
    run = [];
  };
  values.forEach((v, i) => (isNum(v) ? run.push(s.x(t[i]).toFixed(1) + "," + s.y(v).toFixed(1)) : flush()));
  flush();
  g.setAttribute("data-last", String(lastValue(values)));
  return g;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (isNum(values[i])) return values[i];
  return null;
}

function stacked(t, series, s) {
  const g = svg("g", { class: "stack" });
  const base = t.map(() => 0);
  Object.entries(series).forEach(([key, values], k) => {
    const top = values.map((v, i) => base[i] + (isNum(v) ? v : 0));
    const pts = t.map((ti, i) => s.x(ti).toFixed(1) + "," + s.y(top[i]).toFixed(1));
    const back = t.map((ti, i) => s.x(ti).toFixed(1) + "," + s.y(base[i]).toFixed(1)).reverse();
    g.append(svg("polygon", { points: [...pts, ...back].join(" "), fill: PALETTE[k % PALETTE.length],
      "fill-opacity": 0.55, stroke: PALETTE[k % PALETTE.length], "data-series": key,
      "data-last": String(lastValue(values)) }));
    top.forEach((v, i) => { base[i] = v; });
  });
  return g;
}

function axes(s, yExt, unit) {
  const g = svg("g", { class: "axes" });
  for (const v of [yExt[0], (yExt[0] + yExt[1]) / 2, yExt[1]]) {
    g.append(svg("line", { x1: PAD.l, x2: W - PAD.r, y1: s.y(v), y2: s.y(v), stroke: "#ddd" }));
    g.append(svg("text", { x: PAD.l - 4, y: s.y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#666" },
      fmtNumber(v) + (unit ? " " + unit : "")));
  }
  for (const tv of [s.t0, s.t1]) {
    g.append(svg("text", { x: s.x(tv), y: H - 6, "text-anchor": tv === s.t0 ? "start" : "end", "font-size": 10,
      fill: "#666" }, new Date(tv * 1000).toLocaleTimeString()));
  }
  return g;
}

function markersLayer(markers, s) {
  const g = svg("g", { class: "markers" });
  for (const m of markers || []) {
    if (m.t < s.t0 || m.t > s.t1) continue;
    const tick = svg("line", { x1: s.x(m.t), x2: s.x(m.t), y1: PAD.t, y2: H - PAD.b, stroke: "#999",
      "stroke-dasharray": "2 2", "data-decision": m.id, class: "marker" });
    const hit = svg("rect", { x: s.x(m.t) - 4, y: PAD.t, width: 8, height: H - PAD.t - PAD.b, fill: "transparent",
      class: "marker-hit", "data-decision": m.id });
    hit.append(svg("title", null, m.action + " → " + m.to + (m.cause ? " (" + m.cause + ")" : "") + ": explain"));
    hit.addEventListener("click", () => explainDecision(m.id));
    g.append(tick, hit);
  }
  return g;
}

function chart(id, title, data, draw) {
  const box = el("figure", { class: "chart", "data-chart": id }, el("figcaption", null, title));
  const t = data.t || [];
  if (t.length < 1) {
    box.append(el("p", { class: "empty" }, "No points yet."));
    return box;
  }
  const node = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": title });
  const legend = el("div", { class: "legend" });
  draw(node, legend, t);
  box.append(node, legend);
  return box;
}

function legendItem(legend, color, label, value, unit) {
  const swatch = el("span", { class: "swatch" });
  swatch.style.background = color;
  legend.append(el("span", { class: "legend-item" }, swatch, label + " " + fmtNumber(value) + (unit || "")));
}

// --- the five charts -----------------------------------------------------------------------------

function drawCharts(data) {
  const v = data.values;
  const t = data.t;
  const out = [];
  out.push(chart("replicas", data.workload ? "Replicas by cluster and GPU type" : "Replicas by GPU type", data,
    (node, legend) => {
      const tops = t.map((_, i) => Object.values(data.replicas).reduce((a, s) => a + (isNum(s[i]) ? s[i] : 0), 0));
      const yExt = extent([tops, v.desired], true) || [0, 1];
      const s = scaler(t, yExt);
      node.append(axes(s, yExt, ""), stacked(t, data.replicas, s), line(t, v.desired, s, "#222", "desired", true),
        markersLayer(data.markers, s));
      Object.entries(data.replicas).forEach(([k, vals], i) =>
        legendItem(legend, PALETTE[i % PALETTE.length], k, lastValue(vals)));
      legendItem(legend, "#222", "hub's plan (dashed)", lastValue(v.desired));
    }));
  out.push(chart("load", "Load against capacity (tokens/s)", data, (node, legend) => {
    const yExt = extent([v.load_tokens_per_s, v.capacity_tokens_per_s], true) || [0, 1];
    const s = scaler(t, yExt);
    node.append(axes(s, yExt, ""), line(t, v.load_tokens_per_s, s, PALETTE[0], "load"),
      line(t, v.capacity_tokens_per_s, s, PALETTE[2], "capacity", true), markersLayer(data.markers, s));
    legendItem(legend, PALETTE[0], "served", lastValue(v.load_tokens_per_s), " tok/s");
    legendItem(legend, PALETTE[2], "capacity at the SLO (engine's estimate)", lastValue(v.capacity_tokens_per_s),
      " tok/s");
  }));
  out.push(chart("ttft", "TTFT p95 against the SLO (s)", data, (node, legend) => {
    const yExt = extent([v.ttft_p95_s, v.ttft_slo_s], true) || [0, 1];
    const s = scaler(t, yExt);
    node.append(axes(s, yExt, "s"), line(t, v.ttft_slo_s, s, PALETTE[7], "slo", true),
      line(t, v.ttft_p95_s, s, PALETTE[1], "ttft"), markersLayer(data.markers, s));
    legendItem(legend, PALETTE[1], "TTFT p95", lastValue(v.ttft_p95_s), " s");
    legendItem(legend, PALETTE[7], "SLO", lastValue(v.ttft_slo_s), " s");
  }));
  out.push(chart("queue", "Requests waiting per ready replica", data, (node, legend) => {
    const yExt = extent([v.queue_per_replica], true) || [0, 1];
    const s = scaler(t, yExt);
    node.append(axes(s, yExt, ""), line(t, v.queue_per_replica, s, PALETTE[4], "queue"),
      markersLayer(data.markers, s));
    legendItem(legend, PALETTE[4], "queue / replica", lastValue(v.queue_per_replica));
  }));
  out.push(chart("cost", "GPU cost rate (USD/h, list price)", data, (node, legend) => {
    const yExt = extent([v.cost_usd_per_hour], true) || [0, 1];
    const s = scaler(t, yExt);
    node.append(axes(s, yExt, ""), line(t, v.cost_usd_per_hour, s, PALETTE[3], "cost"),
      markersLayer(data.markers, s));
    legendItem(legend, PALETTE[3], "cost", lastValue(v.cost_usd_per_hour), " $/h");
    budgetLegend(legend, data.workload);
  }));
  return out;
}

// Spend against budget per team (/api/v1/budgets): the hub's latest placement of each budget's
// workloads against its caps. The fleet view lists every budget, a workload's view those covering it.
function budgetLegend(legend, workload) {
  const mine = charts.budgets.filter((b) => !workload || (b.use && b.use.workloads.includes(workload)));
  if (!mine.length) {
    legend.append(el("span", { class: "muted small" }, workload ? " no budget covers this workload" : " no budget set"));
    return;
  }
  for (const b of mine) {
    const use = b.use || { cost_per_hour: null, gpus: {}, at_cap: [], holds_minimums: true };
    const parts = [];
    if (b.caps.cost_per_hour !== null && b.caps.cost_per_hour !== undefined) {
      parts.push(fmtNumber(use.cost_per_hour) + " of " + fmtNumber(b.caps.cost_per_hour) + " $/h");
    }
    for (const [t, cap] of Object.entries(b.caps.gpus || {})) {
      parts.push(fmtNumber(use.gpus[t] || 0) + " of " + cap + (t === "*" ? " GPUs" : " " + t + " GPUs"));
    }
    const at = use.at_cap.length ? " (at cap)" : "";
    const short = use.holds_minimums ? "" : "; too small for its workloads' min_replicas";
    const item = el("span", { class: "legend-item budget", "data-budget": b.id },
      "budget " + (b.team || b.id) + ": " + parts.join(", ") + at + short);
    if (at || short) item.classList.add("warn");
    legend.append(item);
  }
}

async function loadBudgets() {
  try {
    charts.budgets = (await getJson("/budgets")).budgets || [];
  } catch (e) {
    charts.budgets = [];  // a hub without the budget API (or a viewer without access) shows none
  }
}

async function loadCharts() {
  await loadBudgets();
  const q = "/history?window_s=" + charts.windowS + (charts.workload ? "&workload=" + encodeURIComponent(charts.workload) : "");
  let data;
  try {
    data = await getJson(q);
  } catch (e) {
    if (charts.workload) {
      charts.workload = null;
      return loadCharts();
    }
    return;
  }
  charts.last = data;
  const picker = document.getElementById("history-workload");
  const want = ["", ...data.workloads];
  if ([...picker.options].map((o) => o.value).join("|") !== want.join("|")) {
    picker.replaceChildren(...want.map((w) => {
      const o = el("option", null, w || "whole fleet");
      o.value = w;
      return o;
    }));
  }
  picker.value = charts.workload || "";
  document.getElementById("charts").replaceChildren(...drawCharts(data));
  document.getElementById("history-resolution").textContent =
    data.t.length + " points at " + fmtNumber(data.resolution_s) + " s";
}

function setupCharts() {
  const buttons = document.getElementById("history-windows");
  buttons.replaceChildren(...WINDOWS.map(([label, s]) => {
    const b = el("button", { "data-window": s, class: s === charts.windowS ? "on" : null }, label);
    b.type = "button";
    b.addEventListener("click", () => {
      charts.windowS = s;
      for (const o of buttons.children) o.className = o === b ? "on" : "";
      loadCharts();
    });
    return b;
  }));
  document.getElementById("history-workload").addEventListener("change", (e) => {
    charts.workload = e.target.value || null;
    loadCharts();
  });
  loadCharts();
  charts.timer = setInterval(loadCharts, 10000);
}

// --- the explain view ----------------------------------------------------------------------------

function section(title, ...rows) {
  return el("section", { class: "explain-part" }, el("h4", null, title), ...rows);
}

function explainAudit(audit) {
  if (!audit) return [section("Engine", el("p", { class: "muted" }, "No engine audit recorded for this decision."))];
  const inputs = (audit.inputs || []).map((i) => el("li", null, el("b", null, i.signal), ": ",
    i.value === null ? "missing" : fmtNumber(i.value) + " " + (i.unit || ""),
    " against a target of " + fmtNumber(i.target) + " " + (i.unit || ""),
    i.partial ? " (partial: not measured on " + Object.keys(i.missing || {}).join(", ") + ")" : "",
    i.note ? " — " + i.note : ""));
  const proposals = (audit.proposals || []).map((p) => el("li", null, el("b", null, p.source), " by " + p.method + ": ",
    p.replicas === null ? "no proposal" : p.replicas + " replicas"));
  const clamps = (audit.clamps || []).map((c) => el("li", null, el("b", null, c.stage), ": " + c.before + " → " +
    c.after + " (" + c.reason + ")" + (c.message ? " — " + c.message : "")));
  const caps = Object.entries(audit.capacity || {}).map(([gpu, bySignal]) => el("li", null, el("b", null, gpu), ": ",
    Object.entries(bySignal).map(([sig, c]) => sig + " " + fmtNumber(c && c.capacity) + " tokens/s per replica" +
      (c && c.prior ? " (datasheet prior " + fmtNumber(c.prior) + ")" : "")).join("; ")));
  const load = audit.load || {};
  return [
    section("Inputs", inputs.length ? el("ul", null, inputs) : el("p", { class: "muted" }, "none"),
      el("p", { class: "muted small" }, "load: " + fmtNumber(load.request_rate) + " req/s, " +
        fmtNumber(load.tokens_per_s) + " tokens/s (prompt + generated), " + fmtNumber(load.waiting) + " waiting")),
    section("Each signal's proposal (the largest wins)", proposals.length ? el("ul", null, proposals) : DASH,
      el("p", null, "merged: " + fmtValue(audit.merged))),
    section("Each stage that changed the count", clamps.length ? el("ul", null, clamps)
      : el("p", { class: "muted" }, "none: the merged proposal stood")),
    caps.length ? section("Capacity per replica by GPU type", el("ul", null, caps),
      el("p", { class: "muted small" }, "Tokens per second (prompt + generated) one replica sustains while " +
        "meeting the latency target: the datasheet roofline corrected by what telemetry showed. Placement " +
        "buys the GPU type with the lowest price per token/s.")) : null,
  ];
}

function explainPlacement(d) {
  const keys = [...new Set([...Object.keys(d.placement_before || {}), ...Object.keys(d.placement_after || {})])].sort();
  const rows = keys.map((k) => {
    const b = (d.placement_before || {})[k] || 0, a = (d.placement_after || {})[k] || 0;
    return el("li", null, el("b", null, k), ": " + b + " → " + a + (a > b ? " (+" + (a - b) + ")" : a < b ? " (" + (a - b) + ")" : ""));
  });
  const results = (d.commands || []).map((id) => {
    const r = (d.results || {})[id];
    return el("li", null, id + ": ", r ? r.status + " on " + r.cluster_id + (r.error ? " — " + r.error : "") : "no result yet");
  });
  return [
    section("Placement (cluster/GPU type: before → after)", rows.length ? el("ul", null, rows) : DASH,
      d.unplaced ? el("p", { class: "bad" }, d.unplaced + " replicas unplaced (no free capacity)") : null,
      ...(d.notes || []).map((n) => el("p", { class: "muted small" }, n))),
    section("Commands and results", results.length ? el("ul", null, results)
      : el("p", { class: "muted" }, d.mode === "dry-run" ? "no command sent (dry-run)"
        : d.approval ? "no command sent (" + d.approval.state + ")" : "no command: nothing to change")),
  ];
}

async function explainDecision(id) {
  const box = document.getElementById("explain");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted" }, "Loading decision " + id + "…"));
  let d;
  try {
    d = await getJson("/decisions/" + encodeURIComponent(id));
  } catch (e) {
    box.replaceChildren(el("p", { class: "bad" }, "Could not load decision " + id + ": " + e.message));
    return;
  }
  const close = el("button", { class: "close" }, "close");
  close.type = "button";
  close.addEventListener("click", () => { box.hidden = true; });
  box.replaceChildren(
    el("div", { class: "explain-head" }, el("h3", null, "Decision " + d.id), close),
    el("p", null, el("b", null, d.workload), " · ", actionPill(d.action), " ", d.current_replicas + " → " +
      d.desired_replicas + " replicas", d.mode === "dry-run" ? dryRunBadge() : null, approvalBadge(d.approval),
      el("span", { class: "muted small" }, " · " + new Date(d.at).toLocaleString() + " · policy " + d.policy_id +
        " rev " + d.policy_revision + (d.cause ? " · cause " + d.cause : ""))),
    el("p", { class: "reason" }, d.reason),
    ...explainAudit(d.audit),
    ...explainPlacement(d));
  box.setAttribute("data-explained", d.id);
  box.scrollIntoView({ block: "nearest" });
}

document.addEventListener("DOMContentLoaded", setupCharts);
