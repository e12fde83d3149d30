"""Pure: numbers as the page and the Markdown show them (seconds, milliseconds with an interval, ratios,
MB/s, bytes) and the inline SVG sparkline of a cell's read times. Jinja2 filters, and the view's helpers."""

from __future__ import annotations

import re
from typing import Any

from runner.results.stats import Interval, Summary


def format_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.001:
        return f"{value * 1000:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def format_ms(summary: Summary | None) -> str:
    if not summary:
        return ""
    return f"{format_seconds(summary.median)} [{_short(summary.low)}–{_short(summary.high)}]"


def _short(seconds: float) -> str:
    return format_seconds(seconds).split()[0]


def format_ratio(summary: Summary | None) -> str:
    if not summary:
        return ""
    return f"{summary.median:.2f}× [{summary.low:.2f}–{summary.high:.2f}]"


def format_mbps(rate: Interval | None) -> str:
    return f"{rate.median:,.0f} MB/s" if rate else ""


def format_bytes(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    if n < 1000:
        return f"{n:,} B"
    value, unit = float(n), "B"
    for unit in ("KB", "MB", "GB"):  # noqa: B007 (the unit reached is the one printed)
        value /= 1000
        if value < 1000:
            break
    return f"{value:,.1f} {unit}"


def sparkline(values: list[float | None], width: int = 90, height: int = 18) -> str:
    """An inline SVG of read times over the last runs (gaps where a run did not read); '' if < 2 points."""
    points = [(i, v) for i, v in enumerate(values) if isinstance(v, (int, float))]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    coords = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in points)
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="read time over the last runs"><polyline fill="none" stroke="#2255cc" stroke-width="1.5" '
        f'points="{coords}"/></svg>'
    )


#: characters XML 1.0 does not allow at all, escaped or not (control characters but tab, LF and CR; lone
#: surrogates; U+FFFE and U+FFFF): a library's message may hold them, the feed and the badges must not
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """Text that can go into an XML document (once escaped): each character XML forbids becomes U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(value))
