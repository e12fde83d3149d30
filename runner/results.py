"""Statuses, result records and the versioned ``results.json`` format."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class Status(str, Enum):
    PASS = "pass"
    MISMATCH = "mismatch"  # read, but the data or metadata differ
    FAIL = "fail"  # a clean error from the library
    UNSUPPORTED = "unsupported"  # the library lacks the feature
    CRASH = "crash"  # killed by a signal, or died without a record
    TIMEOUT = "timeout"
    OOM = "oom"
    INSTALL_FAILED = "install-failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


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
    channel: str
    packages: list[str]
    image: str
    status: str = "ok"  # "ok" or "install-failed"
    reason: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    build_seconds: float | None = None
    cached: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)


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
    status: str
    reason: str = ""
    detail: str = ""
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    zip_checks: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Side:
    env: str
    probe: str
    library: str
    version: str
    zarr_format: int | None = None


@dataclass(kw_only=True)
class CellResult:
    id: str
    writer: Side
    reader: Side
    fixture: str
    status: str
    reason: str = ""
    detail: str = ""
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # array path -> sha256 of what the reader read


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


@dataclass(kw_only=True)
class Results:
    run: RunInfo
    environments: list[EnvironmentResult]
    archives: list[ArchiveResult]
    cells: list[CellResult]
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data = {"schema_version": data.pop("schema_version"), **data}
        return json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False, default=str) + "\n"

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"results schema_version {version!r} is not {SCHEMA_VERSION}; no migration is defined for it"
            )
        return cls(
            run=RunInfo(**data["run"]),
            environments=[EnvironmentResult(**e) for e in data["environments"]],
            archives=[ArchiveResult(**a) for a in data["archives"]],
            cells=[
                CellResult(**{**c, "writer": Side(**c["writer"]), "reader": Side(**c["reader"])}) for c in data["cells"]
            ],
        )

    @classmethod
    def read(cls, path: Path) -> Results:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for cell in self.cells:
            out[cell.status] = out.get(cell.status, 0) + 1
        return out
