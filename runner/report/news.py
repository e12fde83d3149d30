"""Pure: what a run tells those who do not open the page: a badge per library version (SVG), a small JSON
file per writer × reader pair (for tools), and the night's entry of the Atom feed (text; the feed itself is
templates/feed.xml.j2 over the history's entries)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from runner.report.format import xml_text
from runner.report.view import Pair, Summary, fixture_page
from runner.results.history import NewsEntry
from runner.results.model import Changes, Results, Status


@dataclass(frozen=True, kw_only=True)
class Tally:
    passed: int = 0
    tried: int = 0

    def add(self, pair: Pair) -> Tally:
        return Tally(passed=self.passed + pair.counts.get(Status.PASS, 0), tried=self.tried + pair.total)

    def __str__(self) -> str:
        return f"{self.passed}/{self.tried}"


@dataclass(frozen=True, kw_only=True)
class Badge:
    name: str  # "zarr 3.4.2 · pip"
    as_reader: Tally
    as_writer: Tally

    @property
    def path(self) -> str:
        return "badges/" + slug(self.name) + ".svg"

    @property
    def message(self) -> str:
        parts = []
        if self.as_reader.tried:
            parts.append(f"reads {self.as_reader}")
        if self.as_writer.tried:
            parts.append(f"written {self.as_writer}")
        return ", ".join(parts)

    @property
    def alt(self) -> str:
        return f"ZipStore matrix: {self.name}: {self.message} pass"

    @property
    def colour(self) -> str:
        """Green when nine in ten of its cells pass, amber from half, red below: the text says the numbers."""
        tried = self.as_reader.tried + self.as_writer.tried
        share = (self.as_reader.passed + self.as_writer.passed) / tried if tried else 0.0
        return "#1a7f37" if share >= 0.9 else "#9a6700" if share >= 0.5 else "#cf222e"

    def svg(self) -> str:
        label, message = xml_text(self.name), xml_text(self.message + " pass")
        lw, mw = _text_width(label) + 10, _text_width(message) + 10
        width = lw + mw
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
            f"aria-label={quoteattr(xml_text(self.alt))}>"
            f"<title>{escape(xml_text(self.alt))}</title>"
            f'<rect width="{lw}" height="20" fill="#555"/>'
            f'<rect x="{lw}" width="{mw}" height="20" fill="{self.colour}"/>'
            '<g fill="#fff" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">'
            f'<text x="5" y="14">{escape(label)}</text>'
            f'<text x="{lw + 5}" y="14">{escape(message)}</text>'
            "</g></svg>\n"
        )


def _text_width(text: str) -> int:
    """An upper estimate of the width of 11 px DejaVu Sans text (its widest common glyphs are about 7 px)."""
    return round(sum(4 if ch in " .,:;il|!()[]'" else 7 for ch in text))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def badges(summary: Summary) -> list[Badge]:
    """One per library version and channel that read or wrote (archives from outside are no library)."""
    readers: dict[str, Tally] = {}
    writers: dict[str, Tally] = {}
    for (w, r), pair in summary.pairs.items():
        readers[r] = readers.get(r, Tally()).add(pair)
        if not w.startswith("external"):
            writers[w] = writers.get(w, Tally()).add(pair)
    names = sorted(set(readers) | set(writers))
    return [Badge(name=n, as_reader=readers.get(n, Tally()), as_writer=writers.get(n, Tally())) for n in names]


#: a cell's reason in a pair file: enough to tell one failure from another; results.json has all of it
REASON_CHARS = 500


def pair_files(summary: Summary, results: Results) -> list[tuple[str, str]]:
    """``pairs/<writer>--<reader>.json`` for each pair, and ``pairs/index.json`` listing them."""
    files: list[tuple[str, str]] = []
    index: list[dict[str, Any]] = []
    for (w, r), pair in sorted(summary.pairs.items()):
        name = f"pairs/{slug(w)}--{slug(r)}.json"
        counts = {str(s): n for s, n in sorted(pair.counts.items(), key=lambda kv: kv[0].value)}
        index.append({"writer": w, "reader": r, "file": name, "counts": counts, "worst": str(pair.worst)})
        body = {
            "run": results.run.id,
            "started": results.run.started,
            "writer": w,
            "reader": r,
            "counts": counts,
            "worst": str(pair.worst),
            "cells": [
                {
                    "id": c.id,
                    "fixture": c.fixture,
                    "status": str(c.status),
                    "reason": c.reason[:REASON_CHARS],
                    "writer": {"env": c.writer.env, "probe": c.writer.probe, "zarr_format": c.writer.zarr_format},
                    "reader": {"env": c.reader.env, "probe": c.reader.probe},
                    "read_s": c.timings.get("read_s"),
                    "page": f"{fixture_page(c.fixture)}#cell-{c.id}",
                }
                for c in pair.cells
            ],
        }
        files.append((name, json.dumps(body, indent=1, ensure_ascii=False) + "\n"))
    files.append(
        ("pairs/index.json", json.dumps({"run": results.run.id, "pairs": index}, indent=1, ensure_ascii=False) + "\n")
    )
    return files


#: the lines an entry lists before "… and N more": a feed reader shows the first few anyway
ENTRY_LINES = 40


def news_entry(results: Results) -> NewsEntry | None:
    """The night's feed entry, or None when nothing changed (or there was no night before to compare)."""
    changes: Changes | None = results.changes
    if not changes:
        return None
    fixes = [c for c in changes.cells if c.kind.value == "fix"]
    other = [c for c in changes.cells if c.kind.value == "changed"]
    parts = [
        f"{len(changes.regressions)} regression(s)" if changes.regressions else "",
        f"{len(fixes)} fix(es)" if fixes else "",
        f"{len(other)} other status change(s)" if other else "",
        f"{len(changes.versions)} version change(s)" if changes.versions else "",
        f"{len(changes.steps)} timing step(s)" if changes.steps else "",
        f"{len(changes.flaky)} flaky cell(s)" if changes.flaky else "",
    ]
    lines = [f"{v.env}: {v.library} {v.before or '-'} -> {v.after or '-'}" for v in changes.versions]
    for c in [*changes.regressions, *fixes, *other, *changes.flaky]:
        why = f": {c.reason[:160]}" if c.reason else ""
        lines.append(f"{c.kind.value}: {c.writer} -> {c.reader} ({c.fixture}): {c.before} -> {c.after}{why}")
    if len(lines) > ENTRY_LINES:
        lines = [*lines[:ENTRY_LINES], f"... and {len(lines) - ENTRY_LINES} more (see the page)"]
    counts = [p for p in parts if p] or [f"{len(changes.cells)} cell(s) appeared or went"]
    return NewsEntry(
        run_id=results.run.id,
        started=results.run.started,
        finished=results.run.finished or results.run.started,
        title=f"{results.run.started[:10]}: " + ", ".join(counts),
        lines=tuple(lines),
    )
