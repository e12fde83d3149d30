"""The page's files: the Jinja2 templates compiled once per run and rendered from the view model, the
SVG charts and plotly.js beside them, written into the site (the one side effect of ``report/``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from runner import probes
from runner.report import calls
from runner.report import news as news_files
from runner.report.format import format_bytes, format_mbps, format_ms, format_ratio, format_seconds, xml_text
from runner.report.view import View, view
from runner.resources import data_dir
from runner.results.history import NewsEntry, Trend
from runner.results.model import Results


@cache
def _environment(templates: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        auto_reload=False,  # a run renders the templates it started with, as it runs the probes it snapshotted
        autoescape=jinja2.select_autoescape(["html", "html.j2", "xml.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["seconds"] = format_seconds
    env.filters["ms"] = format_ms
    env.filters["ratio"] = format_ratio
    env.filters["mbps"] = format_mbps
    env.filters["bytes"] = format_bytes
    env.filters["xml_text"] = xml_text
    env.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env


def _templates_dir() -> str:
    return str(data_dir("templates"))


def _render(template: str, page: Results | View) -> str:
    model = page if isinstance(page, View) else view(page)
    return _environment(_templates_dir()).get_template(template).render(**model.context())


def load_templates() -> None:
    """Compile every template now, the partials and static files they include too, and read the probes'
    calls: edits to templates/ or the probes while a long run goes on cannot reach its page."""
    reader_calls()
    environment = _environment(_templates_dir())
    for name in environment.list_templates():
        environment.get_template(name)


@cache
def reader_calls() -> dict[str, str]:
    """Each reader probe's call, from the probe scripts this run mounts (read once: a run shows the probes
    it snapshotted)."""
    return calls.reader_calls(Path(probes.__file__).parent, {p.id: p.script for p in probes.READERS})


def _context(model: View, news: list[NewsEntry] | None, made: list[news_files.Badge]) -> dict[str, Any]:
    return {**model.context(), "badges": made, "news": news or [], "calls": reader_calls(), "readers": probes.READERS}


def _html_pages(model: View, context: dict[str, Any], only: str | None = None) -> dict[str, str]:
    environment = _environment(_templates_dir())
    return {
        name: environment.get_template(template).render(**context, **extra)
        for name, template, extra in model.pages()
        if only is None or name == only
    }


def render_pages(page: Results | View) -> dict[str, str]:
    """Every HTML page of the site by file name (``index.html``, ``fixture-NAME.html``, ``benchmark.html``)."""
    model = page if isinstance(page, View) else view(page)
    return _html_pages(model, _context(model, [], news_files.badges(model.summary)))


def render_html(page: Results | View, name: str = "index.html") -> str:
    """One page of the site, alone (the first view by default)."""
    model = page if isinstance(page, View) else view(page)
    found = _html_pages(model, _context(model, [], news_files.badges(model.summary)), only=name)
    if name not in found:
        raise KeyError(f"the site has no page {name!r}")
    return found[name]


def render_markdown(page: Results | View) -> str:
    return _render("matrix.md.j2", page)


PLOTLY_JS = "plotly.min.js"


def plotly_js() -> bytes | None:
    """plotly.js from the plotly package, so the page's charts work offline; None if it is missing."""
    try:
        return (resources.files("plotly") / "package_data" / PLOTLY_JS).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def render_full_markdown(page: Results | View) -> str:
    return _render("matrix-full.md.j2", page)


def site_files(
    results: Results, trends: dict[str, Trend] | None = None, news: list[NewsEntry] | None = None
) -> list[tuple[str, str | bytes]]:
    """The first view (index.html), a page per fixture and the benchmark's, matrix.md (the summary, small
    enough to paste), matrix-full.md (every grid), the Atom feed (``news``: the history's last entries,
    newest first), a badge per library version, a JSON file per writer × reader pair, one SVG chart per
    benchmarked dataset, and plotly.js beside the benchmark's page."""
    model = view(results, trends)
    made = news_files.badges(model.summary)
    context = _context(model, news, made)
    files: list[tuple[str, str | bytes]] = list(_html_pages(model, context).items())
    files += [
        ("matrix.md", render_markdown(model)),
        ("matrix-full.md", render_full_markdown(model)),
        ("feed.xml", _environment(_templates_dir()).get_template("feed.xml.j2").render(**context)),
    ]
    files += [(b.path, b.svg()) for b in made]
    files += news_files.pair_files(model.summary, results)
    files += [(s.svg_name, s.svg) for s in model.bench if s.svg is not None]
    if any(s.figure for s in model.bench):
        script = plotly_js()
        if script is not None:
            files.append((PLOTLY_JS, script))
    return files


def write_site(
    results: Results,
    out: Path,
    redact: Callable[[str], str] = str,
    trends: dict[str, Trend] | None = None,
    news: list[NewsEntry] | None = None,
) -> list[Path]:
    """The only side effect here: the site's files written into ``out`` (text through ``redact``)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in site_files(results, trends, news):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            if not path.is_file() or path.read_bytes() != content:
                path.write_bytes(content)
        else:
            path.write_text(redact(content), encoding="utf-8")
        written.append(path)
    _remove_stale(out, set(written))
    return written


#: files of the site one run writes a set of, whose names come from the run (fixtures, pairs, libraries)
MADE_PER_RUN = ("fixture-*.html", "pairs/*.json", "badges/*.svg")


def _remove_stale(out: Path, written: set[Path]) -> None:
    """A fixture, pair or library version gone from the matrix leaves no page of an earlier run behind."""
    for pattern in MADE_PER_RUN:
        for path in out.glob(pattern):
            if path not in written:
                path.unlink()
