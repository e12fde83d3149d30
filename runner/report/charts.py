"""Pure: benchmark results -> chart data. Plotly figure specs (JSON) for the page, SVG for Markdown.

Both draw the same thing: per dataset, median write and read time per store, one bar per environment,
with the 95 % interval of the median as an error bar. The SVG is hand-written (no plotting library on
the host), small, and deterministic, so it can sit next to the Markdown and be compared in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from runner.results.benchmark import OPERATIONS, STORES
from runner.results.model import BenchmarkResult, Status

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


@dataclass(frozen=True, kw_only=True)
class Bar:
    env: str
    store: str
    op: str
    median_ms: float
    low_ms: float
    high_ms: float


def bars(benchmarks: Sequence[BenchmarkResult], dataset: str) -> list[Bar]:
    out = []
    for b in benchmarks:
        if b.dataset != dataset or b.status is not Status.PASS:
            continue
        for timing in b.stores:
            for op in OPERATIONS:
                summary = timing.summary(op)
                if timing.status is Status.PASS and summary:
                    out.append(
                        Bar(
                            env=b.env,
                            store=timing.store,
                            op=op,
                            median_ms=summary.median * 1e3,
                            low_ms=summary.low * 1e3,
                            high_ms=summary.high * 1e3,
                        )
                    )
    return out


def _order(items: Sequence[Bar]) -> tuple[list[str], list[str]]:
    envs = list(dict.fromkeys(b.env for b in items))
    stores = [s for s in STORES if any(b.store == s for b in items)]
    return envs, stores


def plotly_figure(benchmarks: Sequence[BenchmarkResult], dataset: str) -> dict[str, Any] | None:
    """A Plotly figure (data + layout): write and read side by side, grouped bars per environment."""
    items = bars(benchmarks, dataset)
    if not items:
        return None
    envs, stores = _order(items)
    data = []
    for i, env in enumerate(envs):
        for k, op in enumerate(OPERATIONS):
            mine = {b.store: b for b in items if b.env == env and b.op == op}
            ys = [round(mine[s].median_ms, 4) if s in mine else None for s in stores]
            data.append(
                {
                    "type": "bar",
                    "name": env,
                    "legendgroup": env,
                    "showlegend": k == 0,
                    "x": [STORES[s] for s in stores],
                    "y": ys,
                    "marker": {"color": PALETTE[i % len(PALETTE)]},
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [round(mine[s].high_ms - mine[s].median_ms, 4) if s in mine else None for s in stores],
                        "arrayminus": [
                            round(mine[s].median_ms - mine[s].low_ms, 4) if s in mine else None for s in stores
                        ],
                    },
                    "xaxis": "x" if k == 0 else "x2",
                    "yaxis": "y" if k == 0 else "y2",
                    "hovertemplate": f"{env}<br>%{{x}} {op}: %{{y:.3g}} ms<extra></extra>",
                }
            )
    layout = {
        "barmode": "group",
        "height": 420,
        "margin": {"t": 40, "b": 100, "l": 60, "r": 60},
        "grid": {"rows": 1, "columns": 2, "pattern": "independent"},
        "annotations": [
            {
                "text": f"{op} (median ms, 95 % interval)",
                "showarrow": False,
                "xref": f"x{s} domain",
                "yref": "paper",
                "x": 0.5,
                "y": 1.08,
            }
            for op, s in (("write", ""), ("read", "2"))
        ],
        "yaxis": {"title": {"text": "ms"}, "rangemode": "tozero"},
        "yaxis2": {"rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
    }
    return {"data": data, "layout": layout}


def svg_chart(benchmarks: Sequence[BenchmarkResult], dataset: str) -> str | None:
    """The same chart as a static SVG: two panels (write, read), horizontal bars, interval whiskers."""
    items = bars(benchmarks, dataset)
    if not items:
        return None
    envs, stores = _order(items)
    bar_h, gap, label_w, panel_w, top = 9, 8, 150, 330, 34
    group_h = bar_h * len(envs) + gap
    height = top + group_h * len(stores) + 24 + 16 * len(envs)
    width = label_w + 2 * panel_w + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="4" y="14" font-size="13" font-weight="bold">{escape(dataset)}: median time per store '
        "(ms, 95 % interval)</text>",
    ]
    for p, op in enumerate(OPERATIONS):
        x0 = label_w + p * (panel_w + 15)
        mine = [b for b in items if b.op == op]
        scale_max = max(b.high_ms for b in mine) or 1.0
        px = (panel_w - 40) / scale_max
        out.append(f'<text x="{x0}" y="{top - 6}" font-weight="bold">{op}</text>')
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + group_h * len(stores)}" stroke="#888"/>')
        for s, store in enumerate(stores):
            y_group = top + s * group_h
            if p == 0:
                out.append(
                    f'<text x="{label_w - 6}" y="{y_group + group_h / 2 + 2:.1f}" text-anchor="end">'
                    f"{escape(STORES[store])}</text>"
                )
            for e, env in enumerate(envs):
                bar = next((b for b in mine if b.store == store and b.env == env), None)
                if bar is None:
                    continue
                y = y_group + e * bar_h
                colour = PALETTE[e % len(PALETTE)]
                out.append(
                    f'<rect x="{x0}" y="{y}" width="{bar.median_ms * px:.1f}" height="{bar_h - 1}" '
                    f'fill="{colour}"><title>{escape(env)} {op} {escape(STORES[store])}: '
                    f"{bar.median_ms:.3g} ms</title></rect>"
                )
                ym = y + (bar_h - 1) / 2
                out.append(
                    f'<line x1="{x0 + bar.low_ms * px:.1f}" y1="{ym:.1f}" x2="{x0 + bar.high_ms * px:.1f}" '
                    f'y2="{ym:.1f}" stroke="black" stroke-width="1"/>'
                )
                out.append(
                    f'<text x="{x0 + bar.high_ms * px + 3:.1f}" y="{y + bar_h - 1}" font-size="8">'
                    f"{bar.median_ms:.3g}</text>"
                )
    y_legend = top + group_h * len(stores) + 16
    for e, env in enumerate(envs):
        y = y_legend + 16 * e
        out.append(f'<rect x="{label_w}" y="{y - 9}" width="10" height="10" fill="{PALETTE[e % len(PALETTE)]}"/>')
        out.append(f'<text x="{label_w + 14}" y="{y}">{escape(env)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
