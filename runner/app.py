"""The application: what a run and a merge do, from a typed request to an exit code.

``run``: load -> resolve -> plan -> (``--list``: print) -> engine -> execute -> results.json -> history ->
page. ``merge``: the shards' results.json -> one run -> history -> page. Both end in :func:`publish`.
The command line (``cli.py``) only turns arguments into these requests and errors into exit codes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from runner.engines.engine import Engine
from runner.errors import (
    EngineUnavailableError,
    ExitCode,
    MergeError,
    NothingSelectedError,
    ResumeError,
    UsageError,
)
from runner.known import issues as known
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.matrix.model import BenchmarkSettings, Matrix, Resolution, Track
from runner.phases import hostile
from runner.phases.execute import Options, execute
from runner.phases.reuse import Reuse
from runner.plan.planner import describe, make_plan
from runner.report import news, render
from runner.results import changes, history, merge
from runner.results.model import WHOLE, Results, Shard, read_results
from runner.results.redact import Redactor
from runner.versions import index as indexes
from runner.versions import resolve

log = logging.getLogger("runner")

EngineChoice = Literal["auto", "docker", "local"]
FailOn = Literal["regression"]


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """``python -m runner run``: everything a run is asked to do."""

    matrix: Path
    out: Path
    work: Path | None = None
    only: tuple[str, ...] = ()
    external: tuple[Path, ...] = ()
    hostile: bool = False
    phases: Literal["all", "compat", "benchmark"] = "all"
    bench_size: int | None = None
    bench_repeats: int | None = None
    resume: bool = False
    history: Path | None = None
    fail_on: FailOn | None = None
    jobs: int = 0
    shard: Shard = WHOLE
    engine: EngineChoice = "auto"
    trust_external: bool = False
    list_only: bool = False
    rebuild: bool = False
    bootstrap: bool = True
    download_cache: bool = False  # image builds download through one cache (runner/engines/downloads.py)
    fresh: bool = False  # measure every cell, reuse none (the keys are still recorded)
    every: int = 7  # measure each key again at least once every this many nights


@dataclass(frozen=True, kw_only=True)
class MergeRequest:
    """``python -m runner merge``: the shards' results files, and where the merged run goes."""

    results: tuple[Path, ...]
    out: Path
    history: Path | None = None
    fail_on: FailOn | None = None


def run(request: RunRequest, engine: Engine | None = None, index: indexes.Index | None = None) -> int:
    matrix = load_matrix(request.matrix, known_fixtures=catalog())
    for directory in request.external:
        if not directory.is_dir():
            raise UsageError(f"--external {directory}: not a directory of archives")
    matrix = _benchmark_overrides(matrix, request.bench_size, request.bench_repeats)
    if request.jobs < 0:
        raise UsageError(f"--jobs {request.jobs}: must be 0 (one per two CPUs) or more")
    if request.every < 1:
        raise UsageError(f"--remeasure-every {request.every}: must be 1 (every night) or more")
    make_plan(matrix, request.only)  # a selection that matches nothing is refused before any index is asked
    out = request.out
    history_path = request.history or out / "history.sqlite"
    costs = history.writer_costs(history_path) if request.shard.count > 1 else None
    previous = _previous(out / "results.json") if request.resume else None
    recorded = resolve.recorded_in(previous.environments) if previous else history.resolutions(history_path)
    mirror = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", indexes.DEFAULT_MIRROR)
    matrix, answers = resolve.resolve(
        matrix, index or indexes.PackageIndex(mirror), recorded, only=request.only, keep=previous is not None
    )
    _say_resolved(answers)
    plan = make_plan(matrix, request.only, request.shard, costs)
    if request.phases == "benchmark" and not any(ep.benchmarks for ep in plan.environments):
        raise NothingSelectedError(
            f"--benchmark-only: no selected environment of {matrix.path} runs the benchmark "
            "(it needs a 'benchmark:' section and an environment with zarr whose probes allow zarr-bench)"
        )
    if request.list_only:
        print(describe(plan))
        return ExitCode.OK
    engine = engine or choose_engine(request.engine)
    if engine.info().name == "local" and (request.external or request.hostile) and not request.trust_external:
        raise UsageError(
            "the local engine is not a sandbox: archives from --external (or --hostile) would be opened by "
            "libraries running as you, on this host. Start Docker, or add --trust-external if you trust them."
        )
    render.load_templates()
    out.mkdir(parents=True, exist_ok=True)
    work = request.work or out / "work"
    external = list(request.external)
    if request.hostile:
        hostile.generate(work / "hostile")
        external.append(work / "hostile")
    night, store = history.measured(history_path)
    reuse = Reuse(store=store, night=night, every=request.every, fresh=request.fresh)
    options = Options(
        out=out,
        work=work,
        rebuild=request.rebuild,
        allow_bootstrap=request.bootstrap,
        download_cache=request.download_cache,
        external=tuple(external),
        phases=request.phases,
        containers=request.jobs or max(1, (os.cpu_count() or 1) // 2),
        reuse=reuse,
    )
    redact = Redactor.from_environment()

    def checkpoint(results: Results) -> None:
        results.write(out / "results.json", redact)

    started = time.monotonic()
    results = execute(plan, engine, options, progress=log.info, checkpoint=checkpoint, resume=previous)
    if store or request.fresh:
        counts = reuse.counts
        log.info(
            "night %d: %d cell(s) reused, %d measured again (due, every %d nights%s), %d measured new",
            night, counts["reused"], counts["due"], request.every, ", --fresh" if request.fresh else "", counts["new"],
        )  # fmt: skip
    if plan.shard.count > 1:  # a share of a run: its results wait for 'merge'; no history, no page yet
        log.info(
            "shard %s: %d cells in %.0fs; wrote %s",
            plan.shard,
            len(results.cells),
            time.monotonic() - started,
            out / "results.json",
        )
        return ExitCode.OK
    with history.opened(history_path) as db:
        history.record_resolutions(db, answers)
    return publish(results, out, history_path, redact, request.fail_on, started)


def merge_shards(request: MergeRequest) -> int:
    started = time.monotonic()
    parts = [(str(path), read_results(path, "merge", MergeError)) for path in request.results]
    merged = merge.merge(parts)
    render.load_templates()
    request.out.mkdir(parents=True, exist_ok=True)
    log.info("merged %d shard(s) of run %s: %d cells", len(parts), merged.run.id, len(merged.cells))
    redact = Redactor.from_environment()
    merged.write(request.out / "results.json", redact)  # kept before the history is asked
    history_path = request.history or request.out / "history.sqlite"
    return publish(merged, request.out, history_path, redact, request.fail_on, started)


def publish(
    results: Results, out: Path, history_path: Path, redact: Redactor, fail_on: FailOn | None, started: float
) -> int:
    """What a finished run (or a merged one), already saved once, leaves: results.json with what changed, the
    history, the page; the exit code."""
    issues = known.load()
    log.info(
        "%d cell(s) explained by a known upstream issue (%s)", known.explain(issues, results.cells), known.PATH.name
    )
    with history.opened(history_path) as db:
        past = history.previous(db, results.run.id)
        results.changes = changes.compare(results, past) if past is not None else None
        if results.changes is not None and past is not None:
            results.changes.flaky = changes.flaky(results, history.earlier_statuses(db, results))
            # nothing that decides a flaky cell changed: its new status is no regression, fix or change, and
            # its new words no sign that a known issue was fixed upstream (a library that races says one
            # thing or another for the same archive)
            flaky_ids = {c.id for c in results.changes.flaky}
            results.changes.cells = [c for c in results.changes.cells if c.id not in flaky_ids]
            steady = [c for c in results.cells if c.id not in flaky_ids]
            results.changes.known_fixed = known.no_longer(issues, steady, past.cells)
            for line in results.changes.known_fixed[:20]:
                log.warning("known issue no longer matches: %s", line)
        night = history.nights(db) - (1 if history.has_run(db, results.run.id) else 0)
        history.append(db, results, redact)
        kept = history.record_measured(db, results, night, redact)
        history.record_news(db, results.run.id, news.news_entry(results))
        trends = history.trends(db)
        entries = history.news(db)
    results.write(out / "results.json", redact)
    pages = render.write_site(results, out, redact, trends, entries)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items()))
    log.info("%d cells (%s) in %.0fs", len(results.cells), counts or "none", time.monotonic() - started)
    reused = sum(c.reused is not None for c in results.cells)
    if reused:
        log.info(
            "%d cell(s) reused from earlier runs (nothing that decides them changed), %d measured",
            reused,
            sum(bool(c.key) and c.reused is None for c in results.cells),
        )
    log.debug("%d measurement(s) kept in the history for later nights", kept)
    if results.changes is not None and results.changes.flaky:
        log.warning("%d flaky cell(s): measured again with nothing changed, another status", len(results.changes.flaky))
    if results.changes is not None:
        found = results.changes
        log.info(
            "since %s: %d regression(s), %d other cell change(s), %d version change(s), %d timing step(s)",
            found.since,
            len(found.regressions),
            len(found.cells) - len(found.regressions),
            len(found.versions),
            len(found.steps),
        )
    shown = [p for p in pages if p.parent == out and p.suffix in (".html", ".md", ".xml")]
    log.info(
        "wrote %s, %s and %d more file(s) in %s",
        out / "results.json",
        ", ".join(p.name for p in shown),
        len(pages) - len(shown),
        out,
    )
    if fail_on == "regression" and results.changes is not None and results.changes.regressions:
        for c in results.changes.regressions[:20]:
            why = c.reason[:200]
            log.error("regression: %s → %s (%s): %s → %s %s", c.writer, c.reader, c.fixture, c.before, c.after, why)
        return ExitCode.REGRESSION
    return ExitCode.OK


def choose_engine(choice: EngineChoice) -> Engine:
    """docker, local, or auto: Docker when it answers, else the local engine, said plainly."""
    from runner.engines.docker_engine import DockerEngine
    from runner.engines.local_engine import LocalEngine

    if choice == "local":
        return LocalEngine()
    docker = DockerEngine()
    if choice == "docker":
        return docker
    try:
        docker.info()
        return docker
    except EngineUnavailableError as exc:
        docker.close()
        reason = str(exc).splitlines()[0]
        log.warning(
            "%s\nUsing the local engine instead (--engine local): the pip environments run on this host in "
            "virtual environments made with uv; apt environments and Pythons this host lacks are skipped. "
            "It is not a sandbox. Start Docker for the full matrix.",
            reason,
        )
        return LocalEngine()


def _say_resolved(answers: Mapping[str, Resolution]) -> None:
    """Tracked versions are news; a recorded or missing answer is a warning the log must show."""
    for r in answers.values():
        if r.version is None:
            log.warning("%s (%s, %s): not resolved: %s", r.package, r.asked, r.source, r.note)
        elif r.recorded:
            log.warning("%s %s -> %s (%s): %s", r.package, r.asked, r.version, r.source, r.note)
        elif r.asked is not Track.SUITE:
            when = f", released {r.released}" if r.released else ""
            log.info("%s %s -> %s (%s%s)", r.package, r.asked, r.version, r.source, when)


def _previous(path: Path) -> Results:
    """The interrupted run ``--resume`` completes; a clear error when there is none to complete."""
    if not path.is_file():
        raise ResumeError(f"--resume: {path} does not exist: there is no interrupted run there to complete")
    try:
        previous = Results.read(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"--resume: {path} is not a results file this runner can complete ({exc})") from exc
    if previous.run.finished:
        log.info("resume: run %s finished at %s; measuring only what it lacks", previous.run.id, previous.run.finished)
    return previous


def _benchmark_overrides(matrix: Matrix, size: int | None, repeats: int | None) -> Matrix:
    for flag, value in (("--bench-size", size), ("--bench-repeats", repeats)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: must be at least 1")
    if size is None and repeats is None:
        return matrix
    bench = matrix.benchmark or BenchmarkSettings()  # the flags alone switch the benchmark on
    if size is not None:
        bench = replace(bench, size=size)
    if repeats is not None:
        bench = replace(bench, repeats=repeats)
    return replace(matrix, benchmark=bench)
