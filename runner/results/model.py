"""Statuses, result records and the versioned ``results.json`` format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args

from runner.channels import ChannelName
from runner.errors import UsageError
from runner.matrix.model import Resolution
from runner.probes import Access
from runner.results.probe_data import Timings, ZipChecks
from runner.results.stats import Interval, Summary

SCHEMA_VERSION = 7
#: what a store's timing summarises: the times, and the times over the raw file's of the same round
Measure = Literal["write", "read", "write_ratio", "read_ratio"]
MEASURES: tuple[Measure, ...] = get_args(Measure)
#: What changed in each version, for the migrations below.
#: 2: ``datasets`` and ``benchmarks`` (the store benchmark) were added.
#: 3: cells say whether their reader ran code from the archive (``executed_code``); ``changes`` since the
#:    previous run in the history; ``run.resumed``.
#: 4: environments say which versions an index decided at plan time (``resolved``: asked, version, source,
#:    release date, and whether the index answered or a recorded answer was used); ``run.shard`` (the
#:    share of a ``--shard`` run) and ``run.shards`` (the shards a merged run was made of).
#: 5: archives and cells carry their ``key`` (the hash of everything that decides them) and, when a night
#:    reused an earlier measurement of that key instead of measuring, ``reused`` (that run and its start);
#:    ``changes.flaky``: cells measured again with an unchanged key and another status.
#: 6: cells say how their reader was given the archive (``access``: file, http, http-norange) and, over HTTP,
#:    what the read cost on the wire (``http``: requests and bytes of the first read and of one chunk).


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(value: Any) -> Any:
    """The C JSON encoder's hook: a dataclass becomes the dict of its fields (shallow: the encoder goes on
    into them), anything else it cannot encode its ``str``."""
    if is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS.get(type(value))
        if names is None:
            names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
        return {name: getattr(value, name) for name in names}
    return str(value)


#: JSON text of a record (results.json's lines, the history's records), by ``json``'s encoder in C, which
#: it uses only without ``indent``: the whole-tree copy and indented dump it replaces cost ~2.5 times as
#: much (``bench/scale.py``'s ``write`` step)
encode = json.JSONEncoder(ensure_ascii=False, default=_fields_of).encode


class Value(str, Enum):
    """A closed set: an enum in memory, its ``value`` string in files and on the page."""

    def __str__(self) -> str:
        return str(self.value)


class Status(Value):
    """A cell's status (also a failed archive's, benchmark's or store's: the same words mean the same)."""

    PASS = "pass"
    MISMATCH = "mismatch"  # read, but the data or metadata differ
    FAIL = "fail"  # a clean error from the library
    UNSUPPORTED = "unsupported"  # the library lacks the feature
    CRASH = "crash"  # killed by a signal, or died without a record
    TIMEOUT = "timeout"
    OOM = "oom"
    INSTALL_FAILED = "install-failed"
    SKIPPED = "skipped"


class EnvStatus(Value):
    OK = "ok"
    INSTALL_FAILED = "install-failed"
    SKIPPED = "skipped"  # this engine cannot build it (the local engine and an apt environment)


class Written(Value):
    """An archive that exists; one that does not carries the :class:`Status` of why not."""

    WRITTEN = "written"


WRITTEN = Written.WRITTEN
ArchiveStatus = Written | Status


class DatasetStatus(Value):
    OK = "ok"
    SKIPPED = "skipped"  # with the reason: dataset unavailable


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    reason: str = ""
    detail: str = ""  # longer text: traceback or stderr tail
    warnings: tuple[str, ...] = ()


@dataclass(kw_only=True)
class EnvironmentResult:
    slug: str
    base: str
    python: str | None
    channel: ChannelName
    packages: list[str]
    image: str
    status: EnvStatus = EnvStatus.OK
    reason: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    build_seconds: float | None = None
    cached: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: versions an index decided when the plan was made
    resolved: list[Resolution] = field(default_factory=list)
    #: what identifies the image's content (the engine's image id): part of every key of its cells
    image_id: str = ""


@dataclass(frozen=True, kw_only=True)
class Reused:
    """A result this run took from an earlier one, because nothing that decides it has changed."""

    run: str  # the run that measured it
    started: str  # when that run started


@dataclass(kw_only=True)
class ArchiveResult:
    """One writer probe × fixture in one environment: the archive (if any) and what it looks like."""

    id: str
    env: str
    probe: str
    library: str
    version: str
    zarr_format: int | None
    fixture: str
    status: ArchiveStatus
    reason: str = ""
    detail: str = ""
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    zip_checks: ZipChecks | None = None  # None: not checked yet
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    expected: dict[str, Any] = field(default_factory=dict)
    #: entry name -> SHA-256 of the bytes a reader gets (None: the ZIP checks could not read that entry)
    manifest: dict[str, str | None] = field(default_factory=dict)
    key: str = ""  # what decides it (runner.plan.keys); "" for an archive from outside
    reused: Reused | None = None


@dataclass(kw_only=True)
class HttpCost:
    """What a read over HTTP cost, from the server's access log: the first timed read of the whole archive's
    arrays, and a read of one chunk (its requests and bytes; None when the reader did not get that far)."""

    server: str  # the server's name and version (nginx/1.22.1)
    requests: int
    bytes: int
    statuses: dict[str, int] = field(default_factory=dict)  # HTTP status -> requests (first read)
    chunk_requests: int | None = None
    chunk_bytes: int | None = None
    archive_bytes: int | None = None

    @property
    def chunk_fraction(self) -> float | None:
        """One chunk's bytes on the wire over the archive's size."""
        if self.chunk_bytes is None or not self.archive_bytes:
            return None
        return self.chunk_bytes / self.archive_bytes


@dataclass(kw_only=True)
class Side:
    env: str
    probe: str
    library: str
    version: str
    zarr_format: int | None = None


@dataclass(frozen=True, kw_only=True)
class KnownIssue:
    """An upstream issue or pull request that explains a cell (runner/known/known_issues.yaml, reviewed)."""

    url: str
    title: str
    state: str  # open, closed or merged, as read on the tracker
    note: str = ""


@dataclass(kw_only=True)
class CellResult:
    id: str
    writer: Side
    reader: Side
    fixture: str
    status: Status
    reason: str = ""
    detail: str = ""
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    values: dict[str, str] = field(default_factory=dict)  # array path -> sha256 of what the reader read
    executed_code: bool = False  # the reader ran code from the archive (the hostile corpus's pickle canary)
    key: str = ""  # the hash of everything that decides it (runner.plan.keys); "" when decided unrun
    reused: Reused | None = None
    access: Access = "file"  # how the reader was given the archive
    http: HttpCost | None = None  # over HTTP: what the read cost, from the server's log
    known: KnownIssue | None = None  # the known upstream issue that explains it (not a pass)


@dataclass(kw_only=True)
class DatasetResult:
    """A benchmark dataset: where its values came from, or why it could not be had."""

    name: str
    kind: str  # synthetic, package, file
    description: str
    status: DatasetStatus
    reason: str = ""
    source: str = ""
    shape: list[int] = field(default_factory=list)
    dtype: str = ""
    nbytes: int = 0
    sha256: str = ""


@dataclass(kw_only=True)
class StoreTiming:
    """One store in one benchmark: summaries (see ``runner.results.stats.Summary``) and the samples behind them."""

    store: str
    status: Status  # pass, or what went wrong: fail, unsupported, crash, mismatch
    reason: str = ""
    stored_bytes: int | None = None
    write: Summary | None = None
    read: Summary | None = None
    write_ratio: Summary | None = None  # store time / raw time, round by round
    read_ratio: Summary | None = None
    write_mbps: Interval | None = None
    read_mbps: Interval | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    def summary(self, measure: Measure) -> Summary | None:
        return {"write": self.write, "read": self.read, "write_ratio": self.write_ratio, "read_ratio": self.read_ratio}[
            measure
        ]


@dataclass(kw_only=True)
class BenchmarkResult:
    """The store benchmark of one dataset in one environment."""

    id: str
    env: str
    dataset: str
    status: Status  # pass when it ran (stores carry their own status), else why not
    reason: str = ""
    detail: str = ""
    library: str = "zarr"
    version: str = ""
    zarr_format: int | None = None
    shape: list[int] = field(default_factory=list)
    dtype: str = ""
    nbytes: int = 0
    chunks: list[int] = field(default_factory=list)
    compressor: str = ""
    warmup: int = 0
    repeats: int = 0
    setup: dict[str, Any] = field(default_factory=dict)
    stores: list[StoreTiming] = field(default_factory=list)

    def store(self, name: str) -> StoreTiming | None:
        return next((s for s in self.stores if s.store == name), None)


@dataclass(kw_only=True)
class RunInfo:
    id: str
    started: str
    finished: str
    engine: dict[str, str]
    runner_version: str
    matrix_sha256: str
    matrix_path: str
    settings: dict[str, Any]
    host: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    probes_sha256: str = ""  # the probe scripts this run used
    resumed: list[str] = field(default_factory=list)  # when an interrupted run was completed (--resume)
    shard: str = ""  # "K/N" when this run did one share of the work (--shard)
    split: dict[str, int] = field(default_factory=dict)  # with --shard: every writer environment's shard
    shards: list[dict[str, Any]] = field(default_factory=list)  # a merged run: the shards it was made of


_SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.match(text.strip())
        if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
            raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 1/2")
        return cls(int(match.group(1)), int(match.group(2)))


WHOLE = Shard(1, 1)


# ------------------------------------------------------------- what changed since the previous run


class Kind(Value):
    REGRESSION = "regression"  # was pass, now anything else
    FIX = "fix"  # now pass, was anything else
    CHANGED = "changed"  # another status change
    APPEARED = "appeared"
    DISAPPEARED = "disappeared"
    FLAKY = "flaky"  # measured again with nothing changed that decides it, and another status


@dataclass(kw_only=True)
class CellChange:
    id: str
    kind: Kind
    fixture: str
    writer: str
    reader: str
    before: Status | None
    after: Status | None
    reason: str = ""


@dataclass(kw_only=True)
class VersionChange:
    env: str
    library: str
    before: str | None
    after: str | None


@dataclass(kw_only=True)
class Step:
    """A timing that moved out of the previous run's interval."""

    what: str  # a cell id, or "benchmark: env · dataset · store · measure"
    before: Interval
    after: Interval

    @property
    def ratio(self) -> float:
        return self.after.median / self.before.median if self.before.median else float("inf")


@dataclass(kw_only=True)
class Changes:
    since: str  # the previous run's id
    since_started: str
    cells: list[CellChange] = field(default_factory=list)
    versions: list[VersionChange] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    #: measured again (the rotation, or --fresh) with an unchanged key, and another status than before
    flaky: list[CellChange] = field(default_factory=list)
    #: cells a known upstream issue explained in the run before and does not now (fixed upstream?)
    known_fixed: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[CellChange]:
        return [c for c in self.cells if c.kind is Kind.REGRESSION]

    def __bool__(self) -> bool:
        return bool(self.cells or self.versions or self.steps or self.flaky or self.known_fixed)


def changes_from_dict(data: dict[str, object] | None) -> Changes | None:
    """Statuses and kinds become values again (strings live only in results.json)."""
    if not data:
        return None
    raw_cells = data.get("cells") or []
    raw_versions = data.get("versions") or []
    raw_steps = data.get("steps") or []
    raw_flaky = data.get("flaky") or []
    raw_known = data.get("known_fixed") or []
    assert isinstance(raw_cells, list) and isinstance(raw_versions, list) and isinstance(raw_steps, list)
    assert isinstance(raw_flaky, list) and isinstance(raw_known, list)

    def change(c: dict[str, Any]) -> CellChange:
        return CellChange(
            **{
                **c,
                "kind": Kind(c["kind"]),
                "before": Status(c["before"]) if c.get("before") else None,
                "after": Status(c["after"]) if c.get("after") else None,
            }
        )

    return Changes(
        since=str(data.get("since", "")),
        since_started=str(data.get("since_started", "")),
        cells=[change(c) for c in raw_cells],
        versions=[VersionChange(**v) for v in raw_versions],
        steps=[Step(what=s["what"], before=Interval(*s["before"]), after=Interval(*s["after"])) for s in raw_steps],
        flaky=[change(c) for c in raw_flaky],
        known_fixed=[str(x) for x in raw_known],
    )


@dataclass(kw_only=True)
class Results:
    run: RunInfo
    environments: list[EnvironmentResult]
    archives: list[ArchiveResult]
    cells: list[CellResult]
    datasets: list[DatasetResult] = field(default_factory=list)
    benchmarks: list[BenchmarkResult] = field(default_factory=list)
    #: what changed since the previous run in the history (None: no history, or no earlier run)
    changes: Changes | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """One line per environment, archive, cell, dataset and benchmark (grep and diff find them), each
        encoded by the C encoder: a night's checkpoints rewrite this file several times."""
        top = {f.name: getattr(self, f.name) for f in fields(self)}
        lines = []
        for name, value in {"schema_version": top.pop("schema_version"), **top}.items():
            head = json.dumps(name) + ": "
            if isinstance(value, list) and value:
                lines.append(head + "[\n" + ",\n".join(map(encode, value)) + "\n]")
            else:
                lines.append(head + encode(value))
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def write(self, path: Path, redact: Callable[[str], str] = str) -> None:
        """Atomically: a reader (or a crash) never sees half a file; ``redact`` cleans what is published."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(redact(self.to_json()), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        """Statuses become values again here: strings exist only in the file."""

        data = migrate(data)
        return cls(
            run=RunInfo(**data["run"]),
            environments=[
                EnvironmentResult(
                    **{
                        **e,
                        "status": EnvStatus(e["status"]),
                        "resolved": [Resolution.from_dict(r) for r in e["resolved"]],
                    }
                )
                for e in data["environments"]
            ],
            archives=[archive_from_dict(a) for a in data["archives"]],
            cells=[cell_from_dict(c) for c in data["cells"]],
            datasets=[DatasetResult(**{**d, "status": DatasetStatus(d["status"])}) for d in data["datasets"]],
            benchmarks=[
                BenchmarkResult(
                    **{
                        **b,
                        "status": Status(b["status"]),
                        "stores": [_store_timing(s) for s in b["stores"]],
                    }
                )
                for b in data["benchmarks"]
            ],
            changes=changes_from_dict(data.get("changes")),
        )

    @classmethod
    def read(cls, path: Path) -> Results:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def benchmark(self, env: str, dataset: str) -> BenchmarkResult | None:
        return next((b for b in self.benchmarks if b.env == env and b.dataset == dataset), None)

    def counts(self) -> dict[Status, int]:
        out: dict[Status, int] = {}
        for cell in self.cells:
            out[cell.status] = out.get(cell.status, 0) + 1
        return out


def _store_timing(data: dict[str, Any]) -> StoreTiming:
    """Summaries and intervals become records again (``[]`` was an absent throughput before schema 4's end)."""

    def summary(key: str) -> Summary | None:
        return Summary(**data[key]) if data.get(key) else None

    def interval(key: str) -> Interval | None:
        return Interval(*data[key]) if data.get(key) else None

    return StoreTiming(
        **{
            **data,
            "status": Status(data["status"]),
            **{key: summary(key) for key in ("write", "read", "write_ratio", "read_ratio")},
            **{key: interval(key) for key in ("write_mbps", "read_mbps")},
        }
    )


def read_results(path: Path, command: str, error: Callable[[str], Exception] = UsageError) -> Results:
    """A results.json a command was given, or ``error`` naming the command, the file and what is wrong."""
    try:
        return Results.read(path)
    except FileNotFoundError:
        raise error(f"{command}: {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise error(f"{command}: {path} is not a results file this runner reads ({exc})") from exc


def archive_from_dict(a: dict[str, Any]) -> ArchiveResult:
    return ArchiveResult(
        **{
            **a,
            "status": archive_status(a["status"]),
            "zip_checks": ZipChecks.from_record(a["zip_checks"]) if a.get("zip_checks") else None,
            "reused": Reused(**a["reused"]) if a.get("reused") else None,
        }
    )


def cell_from_dict(c: dict[str, Any]) -> CellResult:
    return CellResult(
        **{
            **c,
            "status": Status(c["status"]),
            "writer": Side(**c["writer"]),
            "reader": Side(**c["reader"]),
            "reused": Reused(**c["reused"]) if c.get("reused") else None,
            "http": HttpCost(**c["http"]) if c.get("http") else None,
            "known": KnownIssue(**c["known"]) if c.get("known") else None,
        }
    )


def archive_status(text: str) -> ArchiveStatus:
    return WRITTEN if text == WRITTEN.value else Status(text)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older ``results.json`` up to :data:`SCHEMA_VERSION`, step by step; refuse unknown ones."""
    version = data.get("schema_version")
    if version == 1:
        data = {**data, "schema_version": 2, "datasets": [], "benchmarks": []}
        version = 2
    if version == 2:  # no cell of an older run knew to look for executed code
        data = {**data, "schema_version": 3, "cells": [{**c, "executed_code": False} for c in data["cells"]]}
        version = 3
    if version == 3:  # nothing was resolved at plan time before
        data = {**data, "schema_version": 4, "environments": [{**e, "resolved": []} for e in data["environments"]]}
        version = 4
    if version == 4:  # nothing was keyed, nothing reused before
        data = {
            **data,
            "schema_version": 5,
            "environments": [{**e, "image_id": ""} for e in data["environments"]],
            "archives": [{**a, "key": "", "reused": None} for a in data["archives"]],
            "cells": [{**c, "key": "", "reused": None} for c in data["cells"]],
        }
        version = 5
    if version == 5:  # every cell before read a local file
        data = {**data, "schema_version": 6, "cells": [{**c, "access": "file", "http": None} for c in data["cells"]]}
        version = 6
    if version == 6:  # no cell linked a known upstream issue before
        data = {**data, "schema_version": 7, "cells": [{**c, "known": None} for c in data["cells"]]}
        version = 7
    if version != SCHEMA_VERSION:
        raise ValueError(f"results schema_version {version!r} is not {SCHEMA_VERSION}; no migration is defined for it")
    return data
