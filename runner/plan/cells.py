"""Pure: the decisions of the compatibility phases, apart from doing them.

What each probe task says, which archives a reader gets, which cells are decided without running a
reader (and why), and how a probe's result becomes an archive or a cell. Nothing here touches the
engine or the disk, so every rule is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.matrix.fixtures import catalog
from runner.matrix.model import Settings
from runner.plan.planner import Archive, EnvPlan, ReadTask, WriteTask, cell_id, read_tasks
from runner.probes import Access, Probe, RootHandling
from runner.protocol import ProbeResult, Task
from runner.results import classify
from runner.results.model import (
    WRITTEN,
    ArchiveResult,
    CellResult,
    EnvironmentResult,
    EnvStatus,
    HttpCost,
    Outcome,
    Side,
    Status,
)
from runner.results.probe_data import timings
from runner.served import servers

EXTERNAL = "external"  # archives from --external: path prefix in results, mount point /external in readers
AGREEMENT = "judged by agreement"


def unavailable(env: EnvironmentResult) -> Outcome | None:
    """The one answer for every cell, archive and benchmark of an environment whose image did not build."""
    if env.status is EnvStatus.OK:
        return None
    if env.status is EnvStatus.SKIPPED:
        return Outcome(status=Status.SKIPPED, reason=env.reason)
    return Outcome(status=Status.INSTALL_FAILED, reason=env.reason)


def container_path(relative: str) -> str:
    """Where a reader container sees an archive: written ones under /artifacts, external under /external."""
    if relative.startswith(EXTERNAL + "/"):
        return "/" + relative
    return f"/artifacts/{relative}"


# ------------------------------------------------------------------------------------------ tasks


def probe_task(id: str, probe: Probe, settings: Settings, role: str, **args: Any) -> Task:
    """One task of a compatibility probe: its role, its library, what to do, and the probe's own options."""
    return Task(
        id=id,
        script=probe.script,
        timeout=settings.probe_timeout,
        args={"role": role, "library": probe.library, **args, **probe.options},
        browser=probe.channel == "browser",
    )


def write_task(w: WriteTask, settings: Settings) -> Task:
    fixture = {"name": w.fixture.name, **w.fixture.spec}
    return probe_task(w.id, w.probe, settings, "writer", archive=f"/artifacts/{w.archive}", fixture=fixture)


def read_task(task: ReadTask, settings: Settings) -> Task:
    """A reader's task: the archive's path in the container, or over HTTP the URL to read it from (the
    archive is then not mounted at all: the reader has the server and nothing else)."""
    archive = task.archive
    where = container_path(archive.path)
    location = {"archive": where} if task.access == "file" else {"url": servers.url(task.access, task.id, where)}
    return probe_task(
        task.id,
        task.probe,
        settings,
        "reader",
        access=task.access,
        **location,
        arrays=list(archive.arrays),
        shapes=dict(archive.shapes),
        zarr_format=archive.zarr_format,
        fixture=archive.fixture,
        repeats=min(settings.read_repeats, archive.repeats or settings.read_repeats),
        **({"part": dict(task.part)} if task.part else {}),
        **({"root": archive.root} if archive.root and task.probe.root == "given" else {}),
    )


# --------------------------------------------------------------------------------------- archives


def archive_result(w: WriteTask, outcome: Outcome, record: Mapping[str, Any], version: str) -> ArchiveResult:
    """What a writer task produced, before the host has looked at the archive itself."""
    warnings, notices = classify.split_warnings(list(record.get("warnings", [])))
    return ArchiveResult(
        id=w.id,
        env=w.env,
        probe=w.probe.id,
        library=w.probe.library,
        version=str(record.get("version") or version),
        zarr_format=w.probe.options.get("zarr_format"),
        fixture=w.fixture.name,
        status=WRITTEN if outcome.status is Status.PASS else outcome.status,
        reason=outcome.reason,
        detail=outcome.detail,
        warnings=warnings,
        notices=notices,
        timings=timings(record.get("timings")),
        expected=dict(record.get("expected", {})),
    )


def readable(archives: Iterable[ArchiveResult]) -> list[Archive]:
    """The archives that exist, as readers are given them."""
    return [
        Archive(
            id=a.id,
            path=a.path,
            fixture=a.fixture,
            arrays=tuple(a.expected.get("arrays", {})),
            zarr_format=a.zarr_format,
            writer_env=a.env,
            writer_probe=a.probe,
            shapes={p: list(d.get("shape", [])) for p, d in a.expected.get("arrays", {}).items()},
            part={p: d["part"]["regions"] for p, d in a.expected.get("arrays", {}).items() if "part" in d},
            repeats=read_repeats(a.fixture),
            root=str(a.expected.get("root", "")),
        )
        for a in archives
        if a.status is WRITTEN and a.path
    ]


def read_repeats(fixture: str) -> int | None:
    """Timed reads per cell that a fixture asks for (a large one: one read), or None: the run's setting."""
    known = catalog().get(fixture)
    repeats = known.spec.get("read_repeats") if known is not None else None
    return int(repeats) if repeats is not None else None


def expected_of(task: ReadTask, archive: ArchiveResult) -> dict[str, Any]:
    """What the reader of ``task`` must have read: the writer's record and the archive's keys; for a part
    read, each array's part (the values of its regions, flat) in place of the whole."""
    expected: dict[str, Any] = {**archive.expected, "keys": archive.manifest}
    if task.part:
        arrays = dict(expected.get("arrays", {}))
        for path in task.part:
            whole = dict(arrays[path])
            part = whole.pop("part")
            whole.update({k: part[k] for k in ("shape", "dtype", "sha256", "nan_count") if k in part})
            arrays[path] = whole
        expected["arrays"] = arrays
    return expected


def split_reads(
    ep: EnvPlan, archives: Sequence[Archive], access: Sequence[Access] = ("file",)
) -> tuple[list[ReadTask], list[tuple[ReadTask, str]]]:
    """(reads to run, reads decided up front with the reason they are skipped)."""
    run, skipped = [], []
    for task in read_tasks(ep, archives, access):
        if task.archive.arrays or not task.probe.needs_arrays:
            run.append(task)
        else:
            skipped.append((task, f"no Zarr arrays in the archive's metadata: {task.probe.id} opens arrays by path"))
    return run, skipped


# ------------------------------------------------------------------------------------------ cells


def writer_side(archive: ArchiveResult) -> Side:
    return Side(
        env=archive.env,
        probe=archive.probe,
        library=archive.library,
        version=archive.version,
        zarr_format=archive.zarr_format,
    )


def reader_side(env: str, probe: Probe, version: str) -> Side:
    return Side(env=env, probe=probe.id, library=probe.library, version=version)


def decided_cell(archive: ArchiveResult, reader: Side, outcome: Outcome, access: Access = "file") -> CellResult:
    """A cell decided without running its reader (nothing to read, or an image that did not build)."""
    return CellResult(
        id=cell_id(archive.env, archive.probe, reader.env, reader.probe, archive.fixture, access),
        writer=writer_side(archive),
        reader=reader,
        fixture=archive.fixture,
        status=outcome.status,
        reason=outcome.reason,
        access=access,
    )


def unwritten_outcome(archive: ArchiveResult, reader_unavailable: Outcome | None) -> Outcome:
    """A cell whose archive was never written: install-failed if an image failed, else skipped."""
    if archive.status is Status.INSTALL_FAILED:
        return Outcome(status=Status.INSTALL_FAILED, reason=f"writer environment {archive.env} did not install")
    if reader_unavailable is not None:
        return reader_unavailable
    return Outcome(
        status=Status.SKIPPED,
        reason=f"the writer could not produce this archive ({archive.status}: {archive.reason})",
    )


def corrupt_read(verdict: Outcome, archive: ArchiveResult, result: ProbeResult) -> Outcome:
    """A reader that returned an array's values although one of its entries fails the CRC check, or is a
    raw chunk of another size than its metadata says, read corrupt data without a word: never a pass,
    whatever the other readers returned."""
    checks = archive.zip_checks
    arrays = result.data.get("arrays") or {}
    if verdict.status is not Status.PASS or checks is None or not isinstance(arrays, dict):
        return verdict
    folder = str(archive.expected.get("root") or "")  # the store's folder inside the archive, if any
    for members, why in (
        (checks.crc_bad_members, "fails the CRC check"),
        (checks.chunk_size_wrong, "is a raw chunk of another size than its metadata says"),
    ):
        for member in members:
            inner = member.removeprefix(folder + "/") if folder else member
            owner = max((p for p in arrays if not p or inner.startswith(p + "/")), key=len, default=None)
            if owner is not None:
                return Outcome(
                    status=Status.MISMATCH,
                    reason=f"returned the values of array {owner!r} although its entry {member!r} {why}: the "
                    "reader did not check what it read",
                    warnings=verdict.warnings,
                )
    return verdict


#: what a cell on an archive whose store sits in a folder says of it, by how its reader meets that folder
_ROOT_NOTICES: dict[RootHandling, str] = {
    "given": "given the store's folder inside the archive, {folder} (the archive holds the store in a folder, not "
    "at its root)",
    "finds": "not told the store's folder inside the archive, {folder}: this reader looks for it on its own, as a "
    "viewer given the archive's URL does",
    "none": "not given the store's folder inside the archive, {folder}: this reader takes no path inside an archive "
    "and opens the archive's root",
}


def read_cell(
    task: ReadTask, archive: ArchiveResult, reader: Side, verdict: Outcome, result: ProbeResult
) -> CellResult:
    """A cell from what its reader did, with the archive's and both libraries' warnings."""
    record = result.data
    if record.get("version"):
        reader.version = str(record["version"])
    reader_warnings, reader_notices = classify.split_warnings(list(record.get("warnings", [])))
    warnings = [f"archive: {p}" for p in archive.zip_checks.problems] if archive.zip_checks else []
    if archive.warnings:  # listed in full once, on the archive's row
        warnings.append(f"writer: {len(archive.warnings)} warning(s) while writing (see the archive)")
    warnings += [f"reader: {w}" for w in reader_warnings]
    warnings += list(verdict.warnings)
    notices = [f"writer: {w}" for w in archive.notices] + [f"reader: {w}" for w in reader_notices]
    notices += [f"reader observed: {o}" for o in record.get("observations", [])]
    if task.archive.root:
        notices.append(_ROOT_NOTICES[task.probe.root].format(folder=f"{task.archive.root}/"))
    if task.part:
        notices.append(
            "read in part over HTTP: the first and the last chunk of each array, judged against the writer's "
            "values for them (the fixture is too large to read whole over HTTP)"
        )
    executed = record.get("executed_code") is True
    if executed:
        warnings.append("reader: ran code from the archive (unpickling it created the canary)")
    return CellResult(
        id=task.cell_id,
        writer=writer_side(archive),
        reader=reader,
        fixture=archive.fixture,
        status=verdict.status,
        reason=verdict.reason,
        detail=verdict.detail,
        warnings=warnings,
        notices=notices,
        timings=timings(record.get("timings")),
        values={p: str(a["sha256"]) for p, a in record.get("arrays", {}).items() if a.get("sha256")},
        executed_code=executed,
        access=task.access,
    )


def http_cost(
    task: ReadTask, costs: Mapping[tuple[str, str], servers.ReadCost], software: str, archive_bytes: int | None
) -> HttpCost:
    """What a cell's read over HTTP cost, from the servers' logs: its first timed read, and its read of one
    chunk (None when the reader never asked for one: it failed first, or it has no way to)."""
    token = servers.token(task.id)
    first = costs.get((token, servers.FIRST_READ)) or servers.ReadCost()
    one = costs.get((token, servers.ONE_CHUNK))
    return HttpCost(
        server=software,
        requests=first.requests,
        bytes=first.bytes,
        statuses=dict(first.statuses),
        chunk_requests=one.requests if one else None,
        chunk_bytes=one.bytes if one else None,
        archive_bytes=archive_bytes,
    )


def judge_by_consensus(cells: Iterable[CellResult]) -> None:
    """External archives have no recorded values: a clean reading against the majority is a mismatch."""
    groups: dict[tuple[str, str], dict[str, CellResult]] = {}
    others: dict[tuple[str, str], list[CellResult]] = {}
    for cell in cells:
        if cell.writer.env != EXTERNAL or cell.status is Status.SKIPPED:
            continue
        archive = (cell.writer.probe, cell.fixture)
        if cell.status is Status.PASS and cell.values:
            groups.setdefault(archive, {})[cell.id] = cell
        else:
            others.setdefault(archive, []).append(cell)
    for archive, group in groups.items():
        verdicts = classify.consensus({i: c.values for i, c in group.items()})
        agreed = len(group) - len(verdicts)
        failed = others.get(archive, [])
        named = ", ".join(sorted({f"{c.reader.library} {c.reader.version} ({c.status})" for c in failed})[:6])
        # agreement is evidence, not truth: each cell says how much of it there was
        notice = (
            f"{AGREEMENT} (no writer's record of the values): {agreed} of the {len(group)} readers that "
            f"returned values read the same; {len(failed)} did not return values" + (f": {named}" if failed else "")
        )
        for cid, cell in group.items():  # a reused cell brings last night's count: it is counted again
            cell.notices = [n for n in cell.notices if not n.startswith(AGREEMENT)] + [notice]
            if cid in verdicts:
                verdict = verdicts[cid]
                cell.status, cell.reason, cell.detail = verdict.status, verdict.reason, verdict.detail
