"""Every run, appended to an SQLite database (standard library ``sqlite3``), keyed by cell id.

The history is what lets a nightly page say what changed since the previous run and show each cell's
trend. The file carries a schema version (``PRAGMA user_version``); :data:`MIGRATIONS` brings an older
file up to date, step by step, and a newer one is refused rather than misread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import HistoryError
from runner.matrix.model import Resolution, Track
from runner.results.model import MEASURES, Results, Status, encode
from runner.results.stats import Interval

log = logging.getLogger("runner")

SCHEMA = 5
#: version reached -> the statements that reach it from the version before
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, matrix_sha256 TEXT NOT NULL,
            runner_version TEXT NOT NULL)""",
        """CREATE TABLE environments (
            run_id TEXT NOT NULL REFERENCES runs(id), slug TEXT NOT NULL, status TEXT NOT NULL,
            libraries TEXT NOT NULL, PRIMARY KEY (run_id, slug))""",
        """CREATE TABLE cells (
            run_id TEXT NOT NULL REFERENCES runs(id), cell_id TEXT NOT NULL, fixture TEXT NOT NULL,
            writer_env TEXT NOT NULL, reader_env TEXT NOT NULL, writer_version TEXT NOT NULL,
            reader_version TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
            read_s REAL, read_samples TEXT NOT NULL, PRIMARY KEY (run_id, cell_id))""",
        "CREATE INDEX cells_by_id ON cells (cell_id, run_id)",
        """CREATE TABLE benchmarks (
            run_id TEXT NOT NULL REFERENCES runs(id), env TEXT NOT NULL, dataset TEXT NOT NULL,
            store TEXT NOT NULL, measure TEXT NOT NULL, median REAL NOT NULL, low REAL NOT NULL,
            high REAL NOT NULL, PRIMARY KEY (run_id, env, dataset, store, measure))""",
    ),
    # the last answer of each index question (runner.resolve), used when no index answers
    2: (
        """CREATE TABLE resolutions (
            key TEXT PRIMARY KEY, package TEXT NOT NULL, asked TEXT NOT NULL, version TEXT NOT NULL,
            source TEXT NOT NULL, released TEXT, resolved_at TEXT NOT NULL)""",
    ),
    # one entry per night that changed something: the Atom feed is made of the last of them
    3: (
        """CREATE TABLE news (
            run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, title TEXT NOT NULL,
            lines TEXT NOT NULL)""",
    ),
    # the last record measured for each key (runner.plan.keys): what a night reuses instead of measuring
    4: (
        """CREATE TABLE measured (
            key TEXT PRIMARY KEY, kind TEXT NOT NULL, night INTEGER NOT NULL, run_id TEXT NOT NULL,
            started TEXT NOT NULL, record BLOB NOT NULL)""",
    ),
    # a run's cells as one compressed record (a row and two index entries per cell grew the file by ~30 MB a
    # night); runs recorded before stay readable in ``cells``. Both keep only the last KEEP_CELLS runs.
    5: (
        """CREATE TABLE run_cells (
            run_id TEXT PRIMARY KEY REFERENCES runs(id), cells BLOB NOT NULL)""",
    ),
}
#: runs whose cells the history keeps: what the trends show (and the previous run, what changed since)
KEEP_CELLS = 14
#: the most one run's cells may inflate to (the default matrix's ~42,000 cells: ~12 MB)
RUN_CELLS_CAP = 512 << 20
#: a cell as the history keeps it, in this order
_CELL_COLUMNS = (
    "cell_id",
    "fixture",
    "writer_env",
    "reader_env",
    "writer_version",
    "reader_version",
    "status",
    "reason",
    "read_s",
    "read_samples",
)
#: a cell's cost when the history has no time for it: the fork server's overhead plus a small read
CELL_SECONDS = 0.05
_TRACKS = frozenset(t.value for t in Track)
_STATUSES = frozenset(s.value for s in Status)


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """The history at ``path``, created or migrated to :data:`SCHEMA`; committed on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: not a history file ({exc}): move it away, or give another --history") from exc
        if version > SCHEMA:
            raise HistoryError(f"{path}: history schema {version} is newer than this runner's ({SCHEMA})")
        for target in range(version + 1, SCHEMA + 1):
            for statement in MIGRATIONS[target]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")
        db.commit()
        yield db
        db.commit()


def _read_only(path: Path) -> closing[sqlite3.Connection]:
    """The history opened for reading only: planning (``--list`` included) never creates or migrates it."""
    return closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


def resolutions(path: Path) -> dict[str, Resolution]:
    """The last recorded answer to each index question; empty when there is no history (read-only)."""
    if not path.is_file():
        return {}
    with _read_only(path) as db:
        if db.execute("PRAGMA user_version").fetchone()[0] < 2:
            return {}
        rows = db.execute("SELECT key, package, asked, version, source, released, resolved_at FROM resolutions")
        return {
            k: Resolution(package=p, asked=Track(a), version=v, source=s, released=r, resolved_at=t)
            for k, p, a, v, s, r, t in rows
            if a in _TRACKS  # a row this runner cannot read is an answer it does not have
        }


def writer_costs(path: Path) -> dict[str, float] | None:
    """Seconds the previous run spent on each writer environment's cells (its reads, plus a fixed cost a
    cell), for balancing ``--shard``; None when there is no history to go by (read-only)."""

    if not path.is_file():
        return None
    with _read_only(path) as db:
        last = db.execute("SELECT id FROM runs ORDER BY finished DESC LIMIT 1").fetchone()
        if last is None:
            return None
        costs: dict[str, float] = {}
        for _, c in _cells_of(db, [last[0]]):
            env = c["writer_env"]
            costs[env] = costs.get(env, 0.0) + (c["read_s"] or 0.0) + CELL_SECONDS
        return costs


def record_resolutions(db: sqlite3.Connection, answers: Mapping[str, Resolution]) -> None:
    """Keep what the indexes answered this run (a recorded or missing answer changes nothing)."""
    db.executemany(
        "INSERT OR REPLACE INTO resolutions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (k, r.package, r.asked, r.version, r.source, r.released, r.resolved_at)
            for k, r in answers.items()
            if r.version is not None and not r.recorded
        ],
    )


def append(db: sqlite3.Connection, results: Results, redact: Callable[[str], str] = str) -> None:
    """Record a run (again, if it was resumed: the newer account replaces the older). The history is
    published with the site, so its text passes through ``redact`` like every other published file."""
    run = results.run
    for table in ("environments", "cells", "run_cells", "benchmarks"):
        db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run.id,))
    db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
    db.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
        (run.id, run.started, run.finished, run.matrix_sha256, run.runner_version),
    )
    db.executemany(
        "INSERT INTO environments VALUES (?, ?, ?, ?)",
        [(run.id, e.slug, e.status.value, json.dumps(e.libraries, sort_keys=True)) for e in results.environments],
    )
    rows = [
        [
            c.id,
            c.fixture,
            c.writer.env,
            c.reader.env,
            c.writer.version,
            c.reader.version,
            c.status.value,
            redact(c.reason[:2000]),
            c.timings.get("read_s"),
            list(c.timings.get("read_samples", [])),
        ]
        for c in results.cells
    ]
    blob = zlib.compress(json.dumps({"columns": _CELL_COLUMNS, "rows": rows}, default=str).encode(), 6)
    db.execute("INSERT INTO run_cells VALUES (?, ?)", (run.id, blob))
    _forget_old_cells(db)
    benchmarks = []
    for b in results.benchmarks:
        for t in b.stores:
            for measure in MEASURES:
                summary = t.summary(measure)
                if summary:
                    benchmarks.append((run.id, b.env, b.dataset, t.store, measure, *summary.interval))
    db.executemany("INSERT INTO benchmarks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", benchmarks)


def _forget_old_cells(db: sqlite3.Connection) -> None:
    """The cells of runs older than the last :data:`KEEP_CELLS` are never read again: dropped (the runs, their
    environments, benchmarks and news stay; the measured records are kept by key, not by run)."""
    kept = "SELECT id FROM runs ORDER BY started DESC, rowid DESC LIMIT ?"
    for table in ("cells", "run_cells"):
        db.execute(f"DELETE FROM {table} WHERE run_id NOT IN ({kept})", (KEEP_CELLS,))


def _cells_of(db: sqlite3.Connection, run_ids: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(run id, cell as a dict of :data:`_CELL_COLUMNS`) for every cell of those runs, from either table. The
    history comes back from a published page: a record that is not one is skipped, with a cap on inflating."""
    marks = ",".join("?" * len(run_ids))
    compact = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run_cells'").fetchone()
    records = f"SELECT run_id, cells FROM run_cells WHERE run_id IN ({marks})" if compact else "SELECT 1, 2 WHERE 0"
    for run_id, blob in db.execute(records, run_ids if compact else ()):  # (a file read-only, not yet migrated)
        try:
            inflater = zlib.decompressobj()
            data = json.loads(inflater.decompress(blob, RUN_CELLS_CAP))
            if inflater.unconsumed_tail:
                raise ValueError(f"inflates past {RUN_CELLS_CAP} bytes")
            columns, rows = list(data["columns"]), data["rows"]
        except (zlib.error, ValueError, TypeError, KeyError) as exc:
            log.warning("history: the cells of run %s are not readable (%s): left out", run_id, exc)
            continue
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, list) and len(row) == len(columns):
                yield run_id, _typed(dict(zip(columns, row, strict=True)))
    old = f"SELECT run_id, {', '.join(_CELL_COLUMNS)} FROM cells WHERE run_id IN ({marks})"
    for run_id, *values in db.execute(old, run_ids):
        cell = dict(zip(_CELL_COLUMNS, values, strict=True))
        cell["read_samples"] = json.loads(cell["read_samples"])
        yield run_id, _typed(cell)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _typed(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell from the history with every field of the type the runner reads it as (strings, a number or
    None, a list of numbers): the history comes back from a published page."""
    out: dict[str, Any] = {k: "" if cell.get(k) is None else str(cell.get(k)) for k in _CELL_COLUMNS}
    out["read_s"] = _number(cell.get("read_s"))
    samples = cell.get("read_samples")
    out["read_samples"] = [x for x in map(_number, samples) if x is not None] if isinstance(samples, list) else []
    return out


@dataclass(frozen=True, kw_only=True)
class PastCell:
    status: Status
    reason: str
    reader_version: str
    writer_version: str
    read_samples: list[float]


@dataclass(frozen=True, kw_only=True)
class PastRun:
    """What the history says of one earlier run: enough to tell what changed since."""

    id: str
    started: str
    environments: dict[str, dict[str, str]]  # slug -> resolved libraries
    cells: dict[str, PastCell]
    benchmarks: dict[tuple[str, str, str, str], Interval]  # (env, dataset, store, measure)


def previous(db: sqlite3.Connection, before: str) -> PastRun | None:
    """The last finished run other than ``before`` (the run id now being recorded)."""
    row = db.execute(
        "SELECT id, started FROM runs WHERE id != ? AND finished != '' ORDER BY started DESC, rowid DESC LIMIT 1",
        (before,),
    ).fetchone()
    if row is None:
        return None
    run_id, started = row
    environments = {
        slug: json.loads(libraries)
        for slug, libraries in db.execute("SELECT slug, libraries FROM environments WHERE run_id = ?", (run_id,))
    }
    cells = {
        c["cell_id"]: PastCell(
            status=Status(c["status"]),
            reason=c["reason"],
            reader_version=c["reader_version"],
            writer_version=c["writer_version"],
            read_samples=c["read_samples"],
        )
        for _, c in _cells_of(db, [run_id])
        if c["status"] in _STATUSES
    }
    benchmarks = {
        (env, dataset, store, measure): Interval(median, low, high)
        for env, dataset, store, measure, median, low, high in db.execute(
            "SELECT env, dataset, store, measure, median, low, high FROM benchmarks WHERE run_id = ?", (run_id,)
        )
    }
    return PastRun(id=run_id, started=started, environments=environments, cells=cells, benchmarks=benchmarks)


@dataclass(frozen=True, kw_only=True)
class Trend:
    """A cell over the last runs, oldest first: statuses and median read times (None where not read)."""

    statuses: list[Status]
    read_s: list[float | None]


def trends(db: sqlite3.Connection, last: int = 14) -> dict[str, Trend]:
    query = "SELECT id FROM runs WHERE finished != '' ORDER BY started DESC, rowid DESC LIMIT ?"
    runs = [r for (r,) in db.execute(query, (last,))]
    runs.reverse()
    order = {run_id: n for n, run_id in enumerate(runs)}
    by_cell: dict[str, list[tuple[int, Status, float | None]]] = {}
    for run_id, c in _cells_of(db, runs):
        if c["status"] in _STATUSES:
            by_cell.setdefault(c["cell_id"], []).append((order[run_id], Status(c["status"]), c["read_s"]))
    out = {}
    for cell_id, points in by_cell.items():
        points.sort(key=lambda p: p[0])
        out[cell_id] = Trend(statuses=[p[1] for p in points], read_s=[p[2] for p in points])
    return out


@dataclass(frozen=True, kw_only=True)
class NewsEntry:
    """One night in the feed: what changed since the night before, as text (the feed's template escapes it)."""

    run_id: str
    started: str
    finished: str
    title: str
    lines: tuple[str, ...]


def record_news(db: sqlite3.Connection, run_id: str, entry: NewsEntry | None) -> None:
    """The night's entry (a resumed or re-merged run replaces its own); None: nothing changed, no entry."""
    db.execute("DELETE FROM news WHERE run_id = ?", (run_id,))
    if entry is not None:
        db.execute(
            "INSERT INTO news VALUES (?, ?, ?, ?, ?)",
            (entry.run_id, entry.started, entry.finished, entry.title, json.dumps(list(entry.lines))),
        )


def news(db: sqlite3.Connection, last: int = 30) -> list[NewsEntry]:
    """The last nights that changed something, newest first."""
    rows = db.execute(
        "SELECT run_id, started, finished, title, lines FROM news ORDER BY started DESC, rowid DESC LIMIT ?", (last,)
    )
    return [
        NewsEntry(run_id=r, started=s, finished=f, title=t, lines=tuple(str(x) for x in json.loads(lines)))
        for r, s, f, t, lines in rows
    ]


@dataclass(frozen=True, kw_only=True)
class Measured:
    """The last measurement of one key: on which night (the count of finished runs before it), by which
    run, and the record (an archive's or a cell's, as in results.json), kept compressed until asked for."""

    kind: str  # "archive" or "cell"
    night: int
    run_id: str
    started: str
    blob: bytes

    def record(self) -> dict[str, Any]:
        """The record; ValueError when it is not one (the history comes back from a published page)."""
        data = json.loads(inflate(self.blob, ARCHIVE_RECORD_CAP if self.kind == "archive" else RECORD_CAP))
        if not isinstance(data, dict):
            raise ValueError("a measured record is not a JSON object")
        return data


#: the most one measured record may inflate to: more is refused, not decompressed. A cell's is a few KB. An
#: archive's carries its manifest, a SHA-256 per entry: 5.5 MB for the 65,536 entries of many-chunks, so at
#: the cell's cap those archives were never reused, and were written and checked again every night.
RECORD_CAP = 4 << 20
ARCHIVE_RECORD_CAP = 64 << 20


def inflate(blob: bytes, cap: int = RECORD_CAP) -> bytes:
    """A measured record's JSON, decompressed with a cap; ValueError for anything else."""
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(blob, cap)
    except zlib.error as exc:
        raise ValueError(f"a measured record is not zlib data: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"a measured record inflates past {cap} bytes")
    return data


def env_key(image_id: str) -> str:
    return "env:" + image_id


def nights(db: sqlite3.Connection) -> int:
    """How many finished runs the history holds: tonight's number, counting from 0."""
    (n,) = db.execute("SELECT count(*) FROM runs WHERE finished != ''").fetchone()
    return int(n)


def measured(path: Path) -> tuple[int, dict[str, Measured]]:
    """(tonight's number, the last measurement of every key) from the history at ``path`` (none there: 0, {})."""
    if not path.is_file():
        return 0, {}
    with opened(path) as db:
        store = {
            key: Measured(kind=kind, night=night, run_id=run_id, started=started, blob=blob)
            for key, kind, night, run_id, started, blob in db.execute(
                "SELECT key, kind, night, run_id, started, record FROM measured"
            )
        }
        return nights(db), store


def record_measured(db: sqlite3.Connection, results: Results, night: int, redact: Callable[[str], str] = str) -> int:
    """Keep the record of every key this run measured (not those it reused); returns how many. Published
    with the history, so the text passes through ``redact``."""
    run = results.run
    rows = []
    for env in results.environments:  # what its image said of itself, for a night that runs nothing in it
        if env.image_id and env.libraries:
            text = redact(json.dumps({"info": env.info, "libraries": env.libraries}, default=str))
            rows.append((env_key(env.image_id), "env", night, run.id, run.started, zlib.compress(text.encode(), 6)))
    for kind, items in (("archive", results.archives), ("cell", results.cells)):
        for item in items:
            if item.key and item.reused is None:
                text = redact(encode(item))
                rows.append((item.key, kind, night, run.id, run.started, zlib.compress(text.encode(), 6)))
    db.executemany("INSERT OR REPLACE INTO measured VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def earlier_statuses(db: sqlite3.Connection, results: Results) -> dict[str, tuple[Status, str, str]]:
    """For each cell this run measured whose key was measured before: (that status, run, start). A
    different status now, with nothing changed that decides the cell, is a flaky cell."""
    out = {}
    for cell in results.cells:
        if not cell.key or cell.reused is not None:
            continue
        row = db.execute("SELECT run_id, started, record FROM measured WHERE key = ?", (cell.key,)).fetchone()
        if row is not None and row[0] != results.run.id:
            try:
                status = json.loads(inflate(row[2])).get("status")
            except (ValueError, AttributeError):
                continue  # not a record this runner wrote: nothing to compare with
            if isinstance(status, str) and status in {s.value for s in Status}:
                out[cell.id] = (Status(status), row[0], row[1])
    return out


def has_run(db: sqlite3.Connection, run_id: str) -> bool:
    return db.execute("SELECT 1 FROM runs WHERE id = ? AND finished != ''", (run_id,)).fetchone() is not None
