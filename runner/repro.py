"""``python -m runner repro CELL_ID``: one cell of a published run, measured again, with what to paste
into an upstream issue.

The cell's two environments are planned from the run's matrix with the versions the run resolved (as
``--resume`` keeps them), narrowed to the one writer probe, fixture and reader probe, and executed by the
same phases as a run: the images are reused when their hash is the run's (rebuilt otherwise), the archive is
written again and checked against the run's SHA-256, the reader reads it. What it prints: the cell then and
now, the library's own words and traceback, and a standalone reproducer (base, packages, the reader's call
from its probe, ``data.zip``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from runner import probes
from runner.engines.engine import Engine
from runner.errors import ExitCode, UsageError
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.phases import hostile
from runner.phases.context import Options
from runner.phases.execute import execute
from runner.plan.cells import EXTERNAL
from runner.plan.planner import Plan, make_plan
from runner.report.render import reader_calls
from runner.resources import sha256_file
from runner.results.model import ArchiveResult, CellResult, EnvironmentResult, Results, read_results
from runner.versions import index as indexes
from runner.versions import resolve

log = logging.getLogger("runner")


@dataclass(frozen=True, kw_only=True)
class ReproRequest:
    cell: str
    results: Path  # the run's results.json
    out: Path  # where the archive and records of this one cell go
    matrix: Path | None = None  # default: the run's own matrix path
    external: tuple[Path, ...] = ()  # where archives from outside the run are (the hostile corpus is made again)


def find_cell(results: Results, cell_id: str) -> CellResult:
    for cell in results.cells:
        if cell.id == cell_id:
            return cell
    near = [c.id for c in results.cells if cell_id in c.id or c.id.startswith(cell_id[:40])][:5]
    hint = f"; did you mean: {', '.join(near)}" if near else ""
    raise UsageError(f"repro: run {results.run.id} has no cell {cell_id!r}{hint}")


def narrow(plan: Plan, cell: CellResult) -> Plan:
    """The plan of one cell: its writer probe and fixture in the writer's environment, its reader probe in
    the reader's; nothing else written, read or benchmarked."""
    environments = []
    for ep in plan.environments:
        writers = tuple(p for p in ep.writers if ep.slug == cell.writer.env and p.id == cell.writer.probe)
        readers = tuple(p for p in ep.readers if ep.slug == cell.reader.env and p.id == cell.reader.probe)
        if writers or readers:
            environments.append(replace(ep, writers=writers, readers=readers, benchmarks=()))
    writes = tuple(
        w
        for w in plan.writes
        if w.env == cell.writer.env and w.probe.id == cell.writer.probe and w.fixture.name == cell.fixture
    )
    fixtures = tuple(f for f in plan.fixtures if f.name == cell.fixture)
    if (not writes and cell.writer.env != EXTERNAL) or not any(ep.readers for ep in environments):
        raise UsageError(
            f"repro: the matrix {plan.matrix.path} no longer has this cell's writer ({cell.writer.env} · "
            f"{cell.writer.probe}, {cell.fixture}) or reader ({cell.reader.env} · {cell.reader.probe})"
        )
    return replace(plan, environments=tuple(environments), writes=writes, fixtures=fixtures)


def reproducer(cell: CellResult, env: EnvironmentResult, archive_sha256: str | None) -> str:
    """The text for an upstream issue: the reader's environment, the archive, and the reader's call."""
    call = reader_calls().get(cell.reader.probe, "(this probe marks no call)")
    probe = probes.ALL.get(cell.reader.probe)
    install = {
        "pip": "python -m pip install " + " ".join(env.packages),
        "apt": "apt-get install " + " ".join(env.packages),
        "npm": "npm install " + " ".join(env.packages),
        "browser": "apt-get install chromium && npm install " + " ".join(env.packages),
    }[env.channel]
    versions = ", ".join(f"{name} {version}" for name, version in env.libraries.items())
    comment = "//" if (probe and probe.script.endswith(".mjs")) else "#"
    if cell.writer.env == EXTERNAL:
        origin = f"{cell.writer.probe}.zip from the {cell.fixture.removeprefix('external-')} corpus"
    else:
        origin = f"written by {cell.writer.library} {cell.writer.version} ({cell.writer.probe}, fixture {cell.fixture})"
    lines = [
        f"{comment} {cell.reader.library} {cell.reader.version} reading a Zarr zip ({cell.status}):",
        f"{comment}   {cell.reason.splitlines()[0] if cell.reason else '(no words)'}",
        f"{comment} environment: {env.base}" + (f", Python {env.python}" if env.python else "") + f"; {install}",
        f"{comment} versions installed: {versions}",
        f"{comment} data.zip: {origin}{f', sha256 {archive_sha256}' if archive_sha256 else ''}",
        call,
    ]
    return "\n".join(lines) + "\n"


def run(request: ReproRequest, engine: Engine, index: indexes.Index | None = None) -> int:
    published = read_results(request.results, "repro")
    then = find_cell(published, request.cell)
    archive_then = next(
        (
            a
            for a in published.archives
            if (a.env, a.probe, a.fixture) == (then.writer.env, then.writer.probe, then.fixture)
        ),
        None,
    )
    external: tuple[Path, ...] = ()
    if then.writer.env == EXTERNAL:
        external = (_external_copy(archive_then, request),)
    matrix_path = request.matrix or Path(published.run.matrix_path)
    matrix = load_matrix(matrix_path, known_fixtures=catalog())
    if hashlib.sha256(matrix_path.read_bytes()).hexdigest() != published.run.matrix_sha256:
        log.warning(
            "repro: %s differs from the run's matrix (sha256 %s…)", matrix_path, published.run.matrix_sha256[:12]
        )
    only = tuple(dict.fromkeys((then.writer.env, then.reader.env)))
    mirror = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", indexes.DEFAULT_MIRROR)
    matrix, _ = resolve.resolve(
        matrix, index or indexes.PackageIndex(mirror), resolve.recorded_in(published.environments), only, keep=True
    )
    plan = narrow(make_plan(matrix, only), then)
    images = {e.slug: e.image for e in published.environments}
    for ep in plan.environments:
        same = "the run's image" if images.get(ep.slug) == ep.tag else f"not the run's image ({images.get(ep.slug)})"
        log.info("repro: %s: %s, %s", ep.slug, ep.tag, same)
    options = Options(out=request.out, work=request.out / "work", phases="compat", containers=1, external=external)
    now_results = execute(plan, engine, options, progress=log.info)
    now_results.write(request.out / "results.json")
    now = next((c for c in now_results.cells if c.id == then.id), None)
    archive_now = next(
        (
            a
            for a in now_results.archives
            if (a.env, a.probe, a.fixture) == (then.writer.env, then.writer.probe, then.fixture)
        ),
        None,
    )
    reader_env = next(e for e in now_results.environments if e.slug == then.reader.env)
    print(f"cell {then.id}")
    print(f"  then (run {published.run.id}): {then.status}: {then.reason.splitlines()[0] if then.reason else ''}")
    if now is None:
        print("  now: not measured (its writer wrote no archive)" if archive_now else "  now: not measured")
        return ExitCode.NOT_REPRODUCED
    print(f"  now: {now.status}: {now.reason.splitlines()[0] if now.reason else ''}")
    if archive_then and archive_now:
        same_bytes = archive_then.sha256 == archive_now.sha256
        print(
            f"  archive: {archive_now.sha256} ({'the same bytes as' if same_bytes else 'not the same bytes as'} "
            f"the run's {archive_then.sha256})"
        )
    if archive_now and archive_now.path:
        if then.writer.env == EXTERNAL:  # external/K/RELATIVE, copied alone into OUT/external
            kept = request.out / "external" / archive_now.path.split("/", 2)[2]
        else:
            kept = request.out / "work" / "artifacts" / archive_now.path
        print(f"  the archive, to attach as data.zip: {kept}")
    print("\n--- the library's own words ---")
    print(now.reason or "(none)")
    if now.detail and now.detail != now.reason:
        print("\n--- detail (traceback, stderr) ---")
        print(now.detail)
    print("\n--- reproducer (paste into an upstream issue) ---")
    print(reproducer(now, reader_env, archive_now.sha256 if archive_now else None), end="")
    if now.status is not then.status:
        log.warning("repro: the cell was %s in run %s and is %s now", then.status, published.run.id, now.status)
        return ExitCode.NOT_REPRODUCED
    return ExitCode.OK


def _external_copy(archive: ArchiveResult | None, request: ReproRequest) -> Path:
    """The one archive from outside the run that the cell read, alone in a directory of its own (so the reader
    reads it and nothing else), at the relative path that gives it the run's archive id. The hostile corpus is
    made again (it is generated, byte for byte the same); other archives come from ``--external``."""
    if archive is None or not archive.path:
        raise UsageError("repro: the run's results.json does not say which archive this cell read")
    relative = archive.path.split("/", 2)[2]  # external/K/RELATIVE
    sources = list(request.external)
    if archive.fixture == "external-hostile":
        made = request.out / "hostile-corpus"
        hostile.generate(made)
        sources.append(made)
    for directory in sources:
        candidate = directory / relative
        if candidate.is_file():
            if archive.sha256 and sha256_file(candidate) != archive.sha256:
                log.warning("repro: %s is not the run's archive (sha256 differs)", candidate)
            alone = request.out / "external"
            shutil.rmtree(alone, ignore_errors=True)
            (alone / relative).parent.mkdir(parents=True)
            shutil.copyfile(candidate, alone / relative)
            return alone
    raise UsageError(
        f"repro: cell {request.cell} read {relative}, an archive from outside the run; pass the directory that "
        "holds it with --external DIR (as the run had it)"
    )
