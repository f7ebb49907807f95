"""The comparison as one self-contained HTML page: inline SVG charts, no script, no external file.

Three charts over the trace's time: the load (requests/s), the replicas each policy held by GPU
type (one small chart per policy, stacked), and every policy's TTFT p95 per minute of arrival
(log scale, the SLO dashed). Gaps in a TTFT line are minutes whose p95 request never finished.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from hub.backtest.comparison import Comparison
from hub.backtest.report import COLUMNS, headline, row, title
from hub.backtest.results import TIMELINE_BIN_S

WIDTH, HEIGHT = 900, 180
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 20, 30
TYPE_COLOURS = {"H100": "#d62728", "A100": "#1f77b4", "L4": "#2ca02c"}
LINE_COLOURS = ("#7f7f7f", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#1f77b4")


class Frame:
    """One chart's coordinate system: data x in seconds, y linear or log10."""

    def __init__(self, x_max: float, y_min: float, y_max: float, *, log: bool = False, height: int = HEIGHT) -> None:
        self.x_max = max(x_max, 1e-9)
        self.log = log
        self.height = height
        if log:
            y_min, y_max = math.log10(y_min), math.log10(y_max)
        self.y_min, self.y_max = y_min, max(y_max, y_min + 1e-9)

    def x(self, t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * t / self.x_max

    def y(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 10**self.y_min))
        v = min(max(v, self.y_min), self.y_max)
        return self.height - BOTTOM - (self.height - TOP - BOTTOM) * (v - self.y_min) / (self.y_max - self.y_min)

    def axes(self, y_ticks: Sequence[float], y_label: str) -> list[str]:
        base = self.height - BOTTOM
        out = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#444"/>',
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#444"/>']
        step = _nice_step(self.x_max / 60 / 8)
        minute = 0.0
        while minute * 60 <= self.x_max + 1e-9:
            x = self.x(minute * 60)
            out.append(f'<line x1="{x:.1f}" y1="{self.height - BOTTOM}" x2="{x:.1f}" y2="{self.height - BOTTOM + 4}" '
                       'stroke="#444"/>')
            out.append(f'<text x="{x:.1f}" y="{self.height - BOTTOM + 16}" text-anchor="middle">{minute:g}</text>')
            minute += step
        for v in y_ticks:
            y = self.y(v)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        out.append(f'<text x="{WIDTH - RIGHT}" y="{self.height - 4}" text-anchor="end">minutes</text>')
        mid = f"{TOP + (self.height - TOP - BOTTOM) / 2:.0f}"
        out.append(f'<text x="12" y="{mid}" text-anchor="middle" transform="rotate(-90 12 {mid})">'
                   f"{html.escape(y_label)}</text>")
        return out


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * exp:
            return m * exp
    return 10 * exp


def _ticks(top: float, count: int = 4) -> list[float]:
    step = _nice_step(top / count)
    return [i * step for i in range(int(top / step) + 1)]


def _svg(body: list[str], height: int = HEIGHT) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")


def load_chart(c: Comparison) -> str:
    bin_s = TIMELINE_BIN_S
    values = c.load_per_s
    top = max(values, default=1.0) * 1.1 or 1.0
    f = Frame(c.scenario.duration_s, 0.0, top)
    points = [(i * bin_s, v) for i, v in enumerate(values)]
    path = " ".join(f"{f.x(t):.1f},{f.y(v):.1f} {f.x(min(t + bin_s, f.x_max)):.1f},{f.y(v):.1f}" for t, v in points)
    area = f"{f.x(0):.1f},{f.y(0):.1f} {path} {f.x(f.x_max):.1f},{f.y(0):.1f}"
    body = f.axes(_ticks(top), "requests/s")
    body.append(f'<polygon points="{area}" fill="#9ecae1" stroke="#3182bd"/>')
    return _svg(body)


def replica_charts(c: Comparison) -> list[tuple[str, str]]:
    types = sorted({t for r in headline(c) for snapshot in r.timeline.replicas for t in snapshot},
                   key=lambda t: (list(TYPE_COLOURS).index(t) if t in TYPE_COLOURS else 99, t))
    top = max((sum(s.values()) for r in headline(c) for s in r.timeline.replicas), default=1) * 1.1 or 1.0
    out = []
    for r in headline(c):
        f = Frame(c.scenario.duration_s, 0.0, top, height=140)
        body = f.axes(_ticks(top), "replicas")
        ts = r.timeline.replicas_t_s
        below = [0.0] * len(ts)
        for i, gpu_type in enumerate(types):
            above = [b + s.get(gpu_type, 0) for b, s in zip(below, r.timeline.replicas, strict=True)]
            if any(a != b for a, b in zip(above, below, strict=True)):
                colour = TYPE_COLOURS.get(gpu_type, LINE_COLOURS[i % len(LINE_COLOURS)])
                upper = [(t, a) for t, a in zip(ts, above, strict=True) if t <= f.x_max]
                lower = [(t, b) for t, b in zip(ts, below, strict=True) if t <= f.x_max]
                pts = _steps(f, upper) + list(reversed(_steps(f, lower)))
                body.append(f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="0.75" stroke="none"/>')
            below = above
        legend = "  ".join(f'<tspan fill="{TYPE_COLOURS.get(t, "#333")}">■ {t}</tspan>' for t in types)
        body.append(f'<text x="{WIDTH - RIGHT}" y="{TOP - 6}" text-anchor="end">{legend}</text>')
        out.append((r.name, _svg(body, 140)))
    return out


def _steps(f: Frame, points: Sequence[tuple[float, float]]) -> list[str]:
    out = []
    for i, (t, v) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else f.x_max
        out += [f"{f.x(t):.1f},{f.y(v):.1f}", f"{f.x(end):.1f},{f.y(v):.1f}"]
    return out


def ttft_chart(c: Comparison) -> str:
    values = [v for r in headline(c) for v in r.timeline.ttft_p95_s if v is not None and v > 0]
    lo = min([*values, c.scenario.slo_ttft_s / 10])
    hi = max([*values, c.scenario.slo_ttft_s * 2])
    lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
    f = Frame(c.scenario.duration_s, lo, hi, log=True, height=260)
    decades = [10.0**e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    body = f.axes(decades, "TTFT p95 (s)")
    slo = f.y(c.scenario.slo_ttft_s)
    body.append(f'<line x1="{LEFT}" y1="{slo:.1f}" x2="{WIDTH - RIGHT}" y2="{slo:.1f}" stroke="#000" '
                'stroke-dasharray="6 4"/>')
    body.append(f'<text x="{LEFT + 4}" y="{slo - 4:.1f}">SLO {c.scenario.slo_ttft_s:g} s</text>')
    for i, r in enumerate(headline(c)):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        bin_s = r.timeline.bin_s
        segment: list[str] = []
        segments = []
        for k, v in enumerate(r.timeline.ttft_p95_s):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{f.x((k + 0.5) * bin_s):.1f},{f.y(v):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        body.append(f'<text x="{WIDTH - RIGHT}" y="{TOP + 12 * i}" text-anchor="end" fill="{colour}">'
                    f'{html.escape(r.name)}</text>')
    return _svg(body, 260)


def render(c: Comparison) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row(r)) + "</tr>" for r in headline(c))
    legend = "".join(f"<li><b>{html.escape(r.name)}</b>: {html.escape(r.description)}</li>" for r in headline(c))
    replicas = "".join(f"<h3>{html.escape(name)}</h3>{svg}" for name, svg in replica_charts(c))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fleetscale simulate: {html.escape(c.scenario.trace.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
h3{{margin:0.6em 0 0;font-size:1em}}</style></head><body>
<h1>{html.escape(title(c))}</h1>
<table><tr>{head}</tr>{rows}</table>
<ul>{legend}</ul>
<h2>Load</h2>{load_chart(c)}
<h2>Replicas by GPU type</h2>{replicas}
<h2>TTFT p95 per minute of arrival</h2>{ttft_chart(c)}
</body></html>
"""


def write_html(c: Comparison, path: Path) -> None:
    path.write_text(render(c), encoding="utf-8")
