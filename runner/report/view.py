"""Pure: results -> the compatibility page (HTML) and matrix (Markdown), through Jinja2 templates.

The view model groups cells into one writer × reader grid per fixture; templates only lay it out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.matrix.fixtures import catalog
from runner.probes import ACCESS, Access
from runner.report import charts, served
from runner.report.format import sparkline
from runner.results import external
from runner.results.benchmark import STORES
from runner.results.history import Trend
from runner.results.model import (
    WRITTEN,
    ArchiveResult,
    BenchmarkResult,
    CellChange,
    CellResult,
    Changes,
    DatasetResult,
    EnvironmentResult,
    EnvStatus,
    Kind,
    Results,
    Side,
    Status,
)

#: The page's status marks are inline SVG symbols (templates/static/marks.svg) beside the word: they need no
#: emoji font, and their shapes differ, so colour is never the only signal. The Markdown keeps these.
SYMBOL: dict[Status, str] = {
    Status.PASS: "✅",
    Status.MISMATCH: "❌",
    Status.FAIL: "⛔",
    Status.UNSUPPORTED: "➖",
    Status.CRASH: "💥",
    Status.TIMEOUT: "⏱",
    Status.OOM: "🧠",
    Status.INSTALL_FAILED: "📦",
    Status.SKIPPED: "⏭",
}


BENCHMARK_PAGE = "benchmark.html"
#: the cells whose note shows the command that reproduces them (``python -m runner repro CELL_ID``)
REPRO_STATUSES = frozenset({Status.FAIL, Status.MISMATCH, Status.CRASH, Status.TIMEOUT, Status.OOM})
#: what each status means, for the legend and the marks' titles
STATUS_WORDS: dict[Status, str] = {
    Status.PASS: "read, and every value, shape, dtype, chunk and attribute came back as written",
    Status.MISMATCH: "read without an error, but the data or metadata differ from what was written",
    Status.FAIL: "a clean error from the library",
    Status.UNSUPPORTED: "the library lacks the feature, in its own words",
    Status.CRASH: "the process died (a signal, or no record)",
    Status.TIMEOUT: "no answer within the probe's time limit",
    Status.OOM: "killed at the container's memory limit",
    Status.INSTALL_FAILED: "the environment's image did not build",
    Status.SKIPPED: "nothing to try (no archive of this kind from that writer)",
}


@dataclass(kw_only=True)
class Column:
    env: str
    probe: str
    library: str
    version: str
    access: Access = "file"

    @property
    def key(self) -> tuple[str, str, Access]:
        return (self.env, self.probe, self.access)

    @property
    def label(self) -> str:
        """The probe, and how it was given the archive when that is not a local file."""
        return self.probe if self.access == "file" else f"{self.probe} · {self.access}"


@dataclass(kw_only=True)
class Row:
    archive: ArchiveResult
    cells: list[CellResult | None] = field(default_factory=list)

    @property
    def written(self) -> bool:
        """False when the writer produced no archive: the row shows its reason once, not per reader."""
        return self.archive.status is WRITTEN

    @property
    def kib(self) -> str:
        return f"{round((self.archive.size or 0) / 1024, 1)} KiB"

    @property
    def size(self) -> str:
        """The archive's size and entry count, as far as the checks got (they may not have completed)."""
        entries = self.archive.zip_checks.entries if self.archive.zip_checks else None
        return f"{self.kib}, {entries} entries" if entries is not None else self.kib

    @property
    def problems(self) -> list[str]:
        return self.archive.zip_checks.problems if self.archive.zip_checks else []

    @property
    def notes(self) -> list[str]:
        return self.archive.zip_checks.notes if self.archive.zip_checks else []

    @property
    def archive_css(self) -> str:
        """The archive cell's class: a written archive looks like a pass, else its status."""
        return Status.PASS.value if self.written else self.archive.status.value

    @property
    def unread_css(self) -> str:
        """The class of the row's cells when there was no archive to read."""
        return Status.INSTALL_FAILED.value if self.archive.status is Status.INSTALL_FAILED else Status.SKIPPED.value


def env_css(env: EnvironmentResult) -> str:
    return Status.PASS.value if env.status is EnvStatus.OK else env.status.value


@dataclass(kw_only=True)
class Grid:
    fixture: str
    description: str
    columns: list[Column]
    rows: list[Row]
    #: reader environments whose image did not build: named once under the grid, not as a column
    failed_readers: list[str] = field(default_factory=list)

    @property
    def page(self) -> str:
        return fixture_page(self.fixture)

    @property
    def counts(self) -> list[tuple[Status, int]]:
        """The grid's cells by status, worst first (the index's line for this fixture)."""
        found: dict[Status, int] = {}
        for row in self.rows:
            for cell in row.cells:
                if cell is not None:
                    found[cell.status] = found.get(cell.status, 0) + 1
        return [(s, found[s]) for s in (*SEVERITY, Status.SKIPPED) if s in found]

    @property
    def column_groups(self) -> list[tuple[str, int]]:
        """(reader environment, how many of its probes are columns), in column order: the header's top row."""
        groups: list[tuple[str, int]] = []
        for col in self.columns:
            if groups and groups[-1][0] == col.env:
                groups[-1] = (col.env, groups[-1][1] + 1)
            else:
                groups.append((col.env, 1))
        return groups


def fixture_page(fixture: str) -> str:
    """The page of one fixture's grid and the reasons of its cells (details come on demand)."""
    return "fixture-" + re.sub(r"[^A-Za-z0-9._-]+", "_", fixture) + ".html"


def grids(results: Results) -> list[Grid]:
    env_order = {e.slug: i for i, e in enumerate(results.environments)}
    failed = {e.slug for e in results.environments if e.status is not EnvStatus.OK}
    descriptions = {name: f.description for name, f in catalog().items()}
    descriptions.update({f"external-{folder}": text for folder, text in external.DESCRIPTIONS.items()})
    cells = {
        (c.fixture, c.writer.env, c.writer.probe, c.reader.env, c.reader.probe, c.access): c for c in results.cells
    }
    order = {name: i for i, name in enumerate(catalog())}  # the catalog's order, then external sections
    fixtures = sorted(dict.fromkeys(a.fixture for a in results.archives), key=lambda f: (order.get(f, len(order)), f))
    out = []
    for fixture in fixtures:
        columns: dict[tuple[str, str, Access], Column] = {}
        for c in results.cells:
            if c.fixture == fixture and c.reader.env not in failed:
                columns.setdefault(
                    (c.reader.env, c.reader.probe, c.access),
                    Column(
                        env=c.reader.env,
                        probe=c.reader.probe,
                        library=c.reader.library,
                        version=c.reader.version,
                        access=c.access,
                    ),
                )
        ordered = sorted(
            columns.values(),
            key=lambda col: (env_order.get(col.env, 1 << 30), col.probe, ACCESS.index(col.access)),
        )
        archives = sorted(
            (a for a in results.archives if a.fixture == fixture),
            key=lambda a: (env_order.get(a.env, 1 << 30), a.probe),
        )
        rows = [
            Row(
                archive=a,
                cells=[cells.get((fixture, a.env, a.probe, col.env, col.probe, col.access)) for col in ordered],
            )
            for a in archives
        ]
        failed_readers = sorted(
            {c.reader.env for c in results.cells if c.fixture == fixture and c.reader.env in failed},
            key=lambda slug: env_order.get(slug, 1 << 30),
        )
        out.append(
            Grid(
                fixture=fixture,
                description=descriptions.get(fixture, ""),
                columns=ordered,
                rows=rows,
                failed_readers=failed_readers,
            )
        )
    return out


@dataclass(kw_only=True)
class BenchSection:
    """One benchmark dataset: its provenance, every environment's stores, and its charts."""

    dataset: DatasetResult
    benchmarks: list[BenchmarkResult]
    figure: dict[str, Any] | None
    svg: str | None

    @property
    def svg_name(self) -> str:
        return f"bench-{self.dataset.name}.svg"


def bench_sections(results: Results) -> list[BenchSection]:
    env_order = {e.slug: i for i, e in enumerate(results.environments)}
    out = []
    for dataset in results.datasets:
        mine = sorted(
            (b for b in results.benchmarks if b.dataset == dataset.name), key=lambda b: env_order.get(b.env, 1 << 30)
        )
        out.append(
            BenchSection(
                dataset=dataset,
                benchmarks=mine,
                figure=charts.plotly_figure(mine, dataset.name),
                svg=charts.svg_chart(mine, dataset.name),
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class BenchMount:
    fs_type: str | None
    mount_point: str | None
    bind_mount: bool


@dataclass(frozen=True, kw_only=True)
class BenchSetup:
    """What the timings ran on, as the probe saw it (shown as text: each value is the probe's word)."""

    storage: str | None
    mount: BenchMount | None
    cpus: str | None
    cpus_usable: str | None
    cpu_max: str | None
    memory_max: str | None
    page_cache: str | None
    loadavg_before: str | None
    python: str | None
    numpy: str | None


def bench_setup(results: Results) -> BenchSetup | None:
    """What the timings ran on, from the first benchmark that ran (they share a machine and settings)."""
    ran = next((b for b in results.benchmarks if b.status is Status.PASS), None)
    if ran is None:
        return None

    def text(key: str) -> str | None:
        value = ran.setup.get(key)
        return None if value is None or value == "" else str(value)

    mount = ran.setup.get("mount")
    return BenchSetup(
        storage=text("storage"),
        mount=BenchMount(
            fs_type=str(mount.get("fs_type")) if mount.get("fs_type") is not None else None,
            mount_point=str(mount.get("mount_point")) if mount.get("mount_point") is not None else None,
            bind_mount=mount.get("bind_mount") is True,
        )
        if isinstance(mount, dict) and mount
        else None,
        cpus=text("cpus"),
        cpus_usable=text("cpus_usable"),
        cpu_max=text("cpu_max"),
        memory_max=text("memory_max"),
        page_cache=text("page_cache"),
        loadavg_before=text("loadavg_before"),
        python=text("python"),
        numpy=text("numpy"),
    )


def noteworthy(results: Results, grids_: list[Grid] | None = None) -> list[CellResult]:
    """Cells whose reason or warnings the reader of the page should be able to open, in grid order.

    Cells of a writer that produced no archive are left out: their row states the reason once.
    """
    out = []
    for grid in grids(results) if grids_ is None else grids_:
        for row in grid.rows:
            if not row.written:
                continue
            out += [c for c in row.cells if c is not None and (c.status is not Status.PASS or c.warnings)]
    return out


#: The corpora of hostile, broken or odd zips: how each reader met them is the robustness table.
ROBUSTNESS_FIXTURES = ("external-hostile", "external-yauzl", "external-edge")
OUTCOMES: dict[str, str] = {
    "read": "read it (no error; for a broken archive, read what was left)",
    "clean error": "a clean error from the library (fail or unsupported)",
    "wrong data": "returned wrong data without an error (mismatch)",
    "crash": "the process died (signal, or no record)",
    "hang": "no answer within the probe timeout",
    "oom": "killed at the container's memory limit",
    "code executed": "ran code from the archive (the pickle canary was created)",
}
_OUTCOME_OF = {
    Status.PASS: "read",
    Status.FAIL: "clean error",
    Status.UNSUPPORTED: "clean error",
    Status.MISMATCH: "wrong data",
    Status.CRASH: "crash",
    Status.TIMEOUT: "hang",
    Status.OOM: "oom",
}


@dataclass(kw_only=True)
class Robustness:
    """How one reader library at one version met the hostile and broken archives."""

    library: str
    version: str
    probes: list[str]
    archives: dict[str, list[str]]  # outcome -> the archives (writer probe names) that led to it

    def count(self, outcome: str) -> int:
        return len(self.archives.get(outcome, []))

    def css(self, outcome: str) -> str:
        if not self.count(outcome):
            return ""
        bad = {"wrong data": Status.MISMATCH, "crash": Status.CRASH, "hang": Status.TIMEOUT, "oom": Status.OOM}
        return bad.get(outcome, Status.CRASH if outcome == "code executed" else Status.PASS).value


def robustness(results: Results) -> list[Robustness]:
    rows: dict[tuple[str, str], Robustness] = {}
    for cell in results.cells:
        outcome = _OUTCOME_OF.get(cell.status)
        if cell.fixture not in ROBUSTNESS_FIXTURES or outcome is None:
            continue
        row = rows.setdefault(
            (cell.reader.library, cell.reader.version),
            Robustness(library=cell.reader.library, version=cell.reader.version, probes=[], archives={}),
        )
        if cell.reader.probe not in row.probes:
            row.probes.append(cell.reader.probe)
        name = f"{cell.writer.probe} ({cell.reader.probe})"
        row.archives.setdefault(outcome, []).append(name)
        if cell.executed_code:
            row.archives.setdefault("code executed", []).append(name)
    return sorted(rows.values(), key=lambda r: (r.library, r.version))


#: Worst first: the status a summary cell is coloured by.
SEVERITY = (
    Status.CRASH,
    Status.OOM,
    Status.TIMEOUT,
    Status.MISMATCH,
    Status.FAIL,
    Status.UNSUPPORTED,
    Status.INSTALL_FAILED,
    Status.PASS,
)
DEFAULT_CHANGES = "(the default)"  # in a reader's observation: its default call changes the data it returns


#: status changes the first view lists (regressions first): a night that changes thousands of cells must
#: not make the first view grow with them; results.json and the fixtures' pages have every one
CHANGES_SHOWN = 100
_CHANGE_ORDER = {Kind.REGRESSION: 0, Kind.FIX: 1, Kind.CHANGED: 2}


def status_changes(changes: Changes) -> list[CellChange]:
    """Regressions, then fixes, then other status changes (appeared and gone cells are listed apart)."""
    return sorted((c for c in changes.cells if c.kind in _CHANGE_ORDER), key=lambda c: _CHANGE_ORDER[c.kind])


def changed_by_default(cell: CellResult) -> bool:
    """A pass whose data the library's *default* call changes (e.g. xarray decoding fill values to NaN)."""
    return cell.status is Status.PASS and any(DEFAULT_CHANGES in n for n in cell.notices)


def side_name(side: Side, fixture: str, environments: Mapping[str, EnvironmentResult]) -> str:
    """A summary row or column: library, version and channel, e.g. ``netcdf4 1.6.2 · apt`` (archives from
    outside: their corpus). The version is the one the environment recorded for the library, so cells that
    add detail to it (``1.6.2 (netcdf-c 4.9.0)``) stay in the library version's one column."""
    if side.env == "external":
        return f"external · {fixture.removeprefix('external-')}"
    env = environments.get(side.env)
    if env is None:
        return f"{side.library} {side.version}"
    version = env.libraries.get(side.library) or side.version
    return f"{side.library} {version} · {env.channel}"


@dataclass(kw_only=True)
class Pair:
    """Every cell between one writer library/version and one reader library/version."""

    writer: str
    reader: str
    counts: dict[Status, int] = field(default_factory=dict)
    formats: set[int] = field(default_factory=set)
    anchor: str = ""  # the worst cell's place in the details (or its fixture's page)
    default_changes: bool = False
    cells: list[CellResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def worst(self) -> Status:
        return next(s for s in SEVERITY if s in self.counts)

    @property
    def label(self) -> str:
        others = ", ".join(f"{self.counts[s]} {s}" for s in SEVERITY if s in self.counts and s is not Status.PASS)
        text = f"{self.counts.get(Status.PASS, 0)}/{self.total} pass"
        text = f"{text}, {others}" if others else text
        known: dict[str, int] = {}
        for cell in self.cells:
            if cell.known is not None:
                name = f"{cell.known.title} ({cell.known.state}: {cell.known.url})"
                known[name] = known.get(name, 0) + 1
        if known:
            text += "; known upstream: " + "; ".join(f"{n} cell(s): {name}" for name, n in known.items())
        return text

    @property
    def id(self) -> str:
        return "s-" + "--".join(re.sub(r"[^A-Za-z0-9._-]+", "_", x) for x in (self.writer, self.reader))


@dataclass(kw_only=True)
class Summary:
    writers: list[str]
    readers: list[str]
    pairs: dict[tuple[str, str], Pair]

    def pair(self, writer: str, reader: str) -> Pair | None:
        return self.pairs.get((writer, reader))

    @property
    def writer_libraries(self) -> list[str]:
        """The filter's choices: each row's first word (its library, or "external")."""
        return list(dict.fromkeys(w.split(" ")[0] for w in self.writers))

    @property
    def reader_libraries(self) -> list[str]:
        return list(dict.fromkeys(r.split(" ")[0] for r in self.readers))


def summary(results: Results, footnote: dict[str, int]) -> Summary:
    """Writer library/version × reader library/version, every fixture and format folded into one cell."""
    environments = {e.slug: e for e in results.environments}
    pairs: dict[tuple[str, str], Pair] = {}
    worst: dict[tuple[str, str], int] = {}
    writers: dict[str, None] = {}
    readers: dict[str, None] = {}
    for cell in results.cells:
        if cell.status is Status.SKIPPED:
            continue  # the writer could not produce that archive: nothing was tried
        w = side_name(cell.writer, cell.fixture, environments)
        r = side_name(cell.reader, cell.fixture, environments)
        writers.setdefault(w)
        readers.setdefault(r)
        pair = pairs.setdefault((w, r), Pair(writer=w, reader=r))
        pair.counts[cell.status] = pair.counts.get(cell.status, 0) + 1
        pair.cells.append(cell)
        if cell.writer.zarr_format:
            pair.formats.add(cell.writer.zarr_format)
        pair.default_changes |= changed_by_default(cell)
        rank = SEVERITY.index(cell.status)
        if rank < worst.get((w, r), len(SEVERITY)):
            worst[(w, r)] = rank
            page = fixture_page(cell.fixture)
            pair.anchor = f"{page}#cell-{cell.id}" if cell.id in footnote else page
    return Summary(writers=list(writers), readers=sorted(readers), pairs=pairs)


@dataclass(kw_only=True)
class View:
    """Everything both templates show, computed once per site."""

    results: Results
    grids: list[Grid]
    notes: list[CellResult]
    bench: list[BenchSection]
    robustness: list[Robustness]
    summary: Summary
    trends: dict[str, Trend]

    @property
    def footnote(self) -> dict[str, int]:
        return {cell.id: n for n, cell in enumerate(self.notes, 1)}

    def notes_of(self, fixture: str) -> list[CellResult]:
        return [cell for cell in self.notes if cell.fixture == fixture]

    def pages(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The site's HTML pages: (file name, template, what that page adds to the context). The first view
        (index.html) holds the summary, what changed and the filters; each fixture's grid and reasons, and the
        benchmark with its charts, are pages of their own, loaded when asked for."""
        pages: list[tuple[str, str, dict[str, Any]]] = [("index.html", "index.html.j2", {})]
        pages += [(g.page, "fixture.html.j2", {"grid": g, "grid_notes": self.notes_of(g.fixture)}) for g in self.grids]
        if self.bench:
            pages.append((BENCHMARK_PAGE, "benchmark.html.j2", {}))
        return pages

    def context(self) -> dict[str, Any]:
        counts = self.results.counts()
        return {
            "results": self.results,
            "run": self.results.run,
            "grids": self.grids,
            "notes": self.notes,
            "footnote": self.footnote,
            "summary": self.summary,
            "changes": self.results.changes,
            "trends": self.trends,
            "sparkline": sparkline,
            "changed_by_default": changed_by_default,
            "severity": SEVERITY,
            "counts": [(s, counts[s]) for s in Status if s in counts],
            "total": len(self.results.cells),
            "symbol": SYMBOL,
            "Status": Status,
            "env_css": env_css,
            "bench": self.bench,
            "robustness": self.robustness,
            "outcomes": OUTCOMES,
            "bench_setup": bench_setup(self.results),
            "store_names": STORES,
            "benchmark_page": BENCHMARK_PAGE,
            "fixture_page": fixture_page,
            "status_words": STATUS_WORDS,
            "repro_statuses": REPRO_STATUSES,
            "status_changes": status_changes,
            "changes_shown": CHANGES_SHOWN,
            "served_rows": served.served_rows(self.results),
            "chunk_costs": served.chunk_costs(self.results),
            "access_modes": [a for a in ACCESS if any(c.access == a for c in self.results.cells)],
            "access_words": served.ACCESS_WORDS,
            "server": next((c.http.server for c in self.results.cells if c.http is not None and c.http.server), ""),
        }


def view(results: Results, trends: dict[str, Trend] | None = None) -> View:
    built = grids(results)
    notes = noteworthy(results, built)
    return View(
        results=results,
        grids=built,
        notes=notes,
        bench=bench_sections(results),
        robustness=robustness(results),
        summary=summary(results, {cell.id: n for n, cell in enumerate(notes, 1)}),
        trends=trends or {},
    )
