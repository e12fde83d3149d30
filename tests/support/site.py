"""The written site as the tests read it: every HTML page of it (the first view, a page per fixture, the
benchmark's), index.html first, as one text."""

from __future__ import annotations

from pathlib import Path


def site_html(out: Path) -> str:
    pages = sorted(out.glob("*.html"), key=lambda p: (p.name != "index.html", p.name))
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)
