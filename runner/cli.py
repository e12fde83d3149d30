"""``python -m runner MATRIX``: arguments -> load -> plan -> execute -> report -> exit code.

Exit codes: 0 the runner worked (incompatible cells are findings, not failures); 1 an internal error;
2 a bad matrix file (or nothing to --resume); 3 nothing selected; 4 no container engine; 5 no base image
could be had; 6 the engine was lost mid-run; 7 the work directory's disk is full; 8 a regression since the
previous run (only with --fail-on regression); 130 Ctrl-C; 143 SIGTERM.
Whatever stops a run, what it measured is saved first, and --resume completes it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import runner
from runner import changes, history, hostile, report, resolve
from runner import shard as shard_mod
from runner.config import BenchmarkSettings, Matrix, Resolution, load_matrix
from runner.engine import Engine
from runner.errors import ConfigError, EngineUnavailableError, Interrupted, NothingSelectedError, RunnerError
from runner.execute import Options, execute
from runner.fixtures import catalog
from runner.plan import describe, make_plan
from runner.redact import Redactor
from runner.results import Results
from runner.shard import WHOLE, Shard

log = logging.getLogger("runner")
REGRESSION_EXIT = 8  # --fail-on regression: a cell that passed in the previous run does not pass now


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner",
        description="Build one image per environment, write Zarr ZipStores with every writer, read each "
        "archive with every reader, and publish the compatibility matrix (HTML, Markdown, JSON).",
        epilog="Exit codes: 0 ran (incompatibilities are findings), 2 bad matrix, 3 nothing selected, "
        "4 no container engine, 5 no base image, 6 engine lost mid-run, 7 work disk full, "
        "8 regression (--fail-on regression), 130 Ctrl-C, "
        "143 SIGTERM, 1 internal error. A stopped run keeps what it measured: --resume completes it.",
    )
    p.add_argument("matrix", type=Path, help="the matrix file, e.g. matrix.yaml")
    p.add_argument("--out", type=Path, default=Path("site"), help="where the page and results go (default: site)")
    p.add_argument("--work", type=Path, default=None, help="archives and probe records (default: OUT/work)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only environments whose slug matches GLOB (repeatable)",
    )
    p.add_argument(
        "--external",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also read every *.zip below DIR (archives written by other software; repeatable)",
    )
    p.add_argument(
        "--hostile",
        action="store_true",
        help="also read the generated hostile corpus (bombs, broken zips, a pickle canary, ...) and show how "
        "each reader met it in the page's robustness section",
    )
    phases = p.add_mutually_exclusive_group()
    phases.add_argument(
        "--benchmark-only",
        action="store_true",
        help="run only the store benchmark (in the environments that have it), not the compatibility matrix",
    )
    phases.add_argument("--no-benchmark", action="store_true", help="skip the store benchmark")
    p.add_argument(
        "--bench-size",
        type=int,
        default=None,
        metavar="N",
        help="the benchmark's synthetic int32 array is N x N (overrides benchmark.size; the original: 10000)",
    )
    p.add_argument(
        "--bench-repeats", type=int, default=None, metavar="N", help="timed rounds (overrides benchmark.repeats)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="complete the interrupted run in OUT/results.json: same run id, what it measured kept",
    )
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="the SQLite history every finished run is appended to (default: OUT/history.sqlite)",
    )
    p.add_argument(
        "--fail-on",
        choices=["regression"],
        default=None,
        help="exit 8 when a cell that passed in the previous run does not pass now (for scheduled jobs)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="run up to N environments' containers at once in the write and read phases (default 0: one per "
        "two CPUs; the benchmark always runs alone)",
    )
    p.add_argument(
        "--shard",
        type=Shard.parse,
        default=WHOLE,
        metavar="K/N",
        help="do share K of N of the work (the archives of some writers, read by every reader; merge the N "
        "results with 'python -m runner merge')",
    )
    p.add_argument(
        "--engine",
        choices=["auto", "docker", "local"],
        default="auto",
        help="where probes run: docker (containers), local (pip environments in uv virtual environments on "
        "this host: no sandbox), auto (default: docker when it answers, else local, said plainly)",
    )
    p.add_argument(
        "--trust-external",
        action="store_true",
        help="let the local engine open --external/--hostile archives (it is not a sandbox)",
    )
    p.add_argument("--list", action="store_true", help="print the plan and exit; builds and runs nothing")
    p.add_argument("--rebuild", action="store_true", help="rebuild images even when one with the same hash exists")
    p.add_argument("--no-bootstrap", action="store_true", help="never debootstrap a missing Debian base; fail instead")
    p.add_argument("-v", "--verbose", action="store_true", help="echo every engine command and build output")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {runner.__version__}")
    return p


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _choose_engine(choice: str) -> Engine:
    """docker, local, or auto: Docker when it answers, else the local engine, said plainly."""
    from runner.docker_engine import DockerEngine
    from runner.local_engine import LocalEngine

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


def _interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name, 128 + signum)


#: Both stop a run the same way. SIGINT too is handled explicitly: a runner started from a background job
#: inherits SIGINT ignored, and Python then installs no KeyboardInterrupt of its own.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None, engine: Engine | None = None, index: resolve.Index | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        _setup_logging(verbose=False)
        try:
            return _merge(argv[1:])
        except RunnerError as exc:
            log.error("error: %s", exc)
            return exc.exit_code
    args = parser().parse_args(argv)
    _setup_logging(args.verbose or args.debug)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _interrupted) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        return _run(args, engine, index)
    except RunnerError as exc:
        log.error("error: %s", exc)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted) as exc:
        stop = exc if isinstance(exc, Interrupted) else Interrupted("SIGINT", 128 + signal.SIGINT)
        log.error(
            "interrupted by %s: what was measured is in %s; add --resume to complete the run",
            stop.signal_name,
            args.out / "results.json",
        )
        return stop.exit_code
    except Exception as exc:
        if args.debug:
            raise
        log.error("internal error: %s: %s (run with --debug for the traceback)", type(exc).__name__, exc)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, engine: Engine | None, index: resolve.Index | None) -> int:
    matrix = load_matrix(args.matrix, known_fixtures=catalog())
    for directory in args.external:
        if not directory.is_dir():
            raise ConfigError(f"--external {directory}: not a directory of archives")
    matrix = _benchmark_overrides(matrix, args)
    if args.jobs < 0:
        raise ConfigError(f"--jobs {args.jobs}: must be 0 (one per two CPUs) or more")
    make_plan(matrix, args.only)  # a selection that matches nothing is refused before any index is asked
    history_path: Path = args.history or args.out / "history.sqlite"
    costs = history.writer_costs(history_path) if args.shard.count > 1 else None
    resume = _previous(args.out / "results.json") if args.resume else None
    recorded = resolve.recorded_in(resume.environments) if resume else history.resolutions(history_path)
    mirror = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", resolve.DEFAULT_MIRROR)
    matrix, answers = resolve.resolve(
        matrix, index or resolve.PackageIndex(mirror), recorded, only=args.only, keep=resume is not None
    )
    _say_resolved(answers)
    plan = make_plan(matrix, args.only, args.shard, costs)
    phases: Literal["all", "compat", "benchmark"] = "all"
    if args.benchmark_only:
        phases = "benchmark"
        if not any(ep.benchmarks for ep in plan.environments):
            raise NothingSelectedError(
                f"--benchmark-only: no selected environment of {matrix.path} runs the benchmark "
                "(it needs a 'benchmark:' section and an environment with zarr whose probes allow zarr-bench)"
            )
    elif args.no_benchmark:
        phases = "compat"
    if args.list:
        print(describe(plan))
        return 0
    engine = engine or _choose_engine(args.engine)
    if engine.info().name == "local" and (args.external or args.hostile) and not args.trust_external:
        raise ConfigError(
            "the local engine is not a sandbox: archives from --external (or --hostile) would be opened by "
            "libraries running as you, on this host. Start Docker, or add --trust-external if you trust them."
        )
    report.load_templates()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work: Path = args.work or out / "work"
    external = list(args.external)
    if args.hostile:
        hostile.generate(work / "hostile")
        external.append(work / "hostile")
    options = Options(
        out=out,
        work=work,
        rebuild=args.rebuild,
        allow_bootstrap=not args.no_bootstrap,
        external=tuple(external),
        phases=phases,
        containers=args.jobs or max(1, (os.cpu_count() or 1) // 2),
    )

    redact = Redactor.from_environment()

    def checkpoint(results: Results) -> None:
        results.write(out / "results.json", redact)

    started = time.monotonic()
    results = execute(plan, engine, options, progress=log.info, checkpoint=checkpoint, resume=resume)
    checkpoint(results)
    if plan.shard.count > 1:  # a share of a run: its results wait for 'merge'; no history, no page yet
        log.info(
            "shard %s: %d cells in %.0fs; wrote %s",
            plan.shard,
            len(results.cells),
            time.monotonic() - started,
            out / "results.json",
        )
        return 0
    with history.opened(history_path) as db:
        history.record_resolutions(db, answers)
    return _publish(results, out, history_path, redact, args.fail_on, started)


def _publish(
    results: Results, out: Path, history_path: Path, redact: Redactor, fail_on: str | None, started: float
) -> int:
    """What a finished run (or a merged one) leaves: results.json, the history, the page; the exit code."""
    results.write(out / "results.json", redact)
    with history.opened(history_path) as db:
        past = history.previous(db, results.run.id)
        results.changes = changes.compare(results, past) if past is not None else None
        history.append(db, results, redact)
        trends = history.trends(db)
    results.write(out / "results.json", redact)
    pages = report.write_site(results, out, redact, trends)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items()))
    log.info("%d cells (%s) in %.0fs", len(results.cells), counts or "none", time.monotonic() - started)
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
    log.info("wrote %s, %s", out / "results.json", ", ".join(str(p) for p in pages))
    if fail_on == "regression" and results.changes is not None and results.changes.regressions:
        for c in results.changes.regressions[:20]:
            why = c.reason[:200]
            log.error("regression: %s → %s (%s): %s → %s %s", c.writer, c.reader, c.fixture, c.before, c.after, why)
        return REGRESSION_EXIT
    return 0


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner merge",
        description="Combine the results.json of the shards of one run (--shard K/N) into one results.json, "
        "history entry and page, as if one machine had run it all.",
    )
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json", help="one per shard, any order")
    p.add_argument("--out", type=Path, default=Path("site"), help="where the page and results go (default: site)")
    p.add_argument("--history", type=Path, default=None, metavar="PATH", help="default: OUT/history.sqlite")
    p.add_argument("--fail-on", choices=["regression"], default=None)
    return p


def _merge(argv: Sequence[str]) -> int:
    args = merge_parser().parse_args(argv)
    started = time.monotonic()
    parts = []
    for path in args.results:
        try:
            parts.append((str(path), Results.read(path)))
        except FileNotFoundError:
            raise ConfigError(f"merge: {path} does not exist") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"merge: {path} is not a results file this runner reads ({exc})") from exc
    merged = shard_mod.merge(parts)
    report.load_templates()
    args.out.mkdir(parents=True, exist_ok=True)
    log.info("merged %d shard(s) of run %s: %d cells", len(parts), merged.run.id, len(merged.cells))
    history_path: Path = args.history or args.out / "history.sqlite"
    return _publish(merged, args.out, history_path, Redactor.from_environment(), args.fail_on, started)


def _say_resolved(answers: dict[str, Resolution]) -> None:
    """Tracked versions are news; a recorded or missing answer is a warning the log must show."""
    for r in answers.values():
        if r.version is None:
            log.warning("%s (%s, %s): not resolved: %s", r.package, r.asked, r.source, r.note)
        elif r.recorded:
            log.warning("%s %s -> %s (%s): %s", r.package, r.asked, r.version, r.source, r.note)
        elif r.asked != "suite":
            when = f", released {r.released}" if r.released else ""
            log.info("%s %s -> %s (%s%s)", r.package, r.asked, r.version, r.source, when)


def _previous(path: Path) -> Results:
    """The interrupted run ``--resume`` completes; a clear error when there is none to complete."""
    if not path.is_file():
        raise ConfigError(f"--resume: {path} does not exist: there is no interrupted run there to complete")
    try:
        previous = Results.read(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--resume: {path} is not a results file this runner can complete ({exc})") from exc
    if previous.run.finished:
        log.info("resume: run %s finished at %s; measuring only what it lacks", previous.run.id, previous.run.finished)
    return previous


def _benchmark_overrides(matrix: Matrix, args: argparse.Namespace) -> Matrix:
    for flag, value in (("--bench-size", args.bench_size), ("--bench-repeats", args.bench_repeats)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: must be at least 1")
    if args.bench_size is None and args.bench_repeats is None:
        return matrix
    bench = matrix.benchmark or BenchmarkSettings()  # the flags alone switch the benchmark on
    if args.bench_size is not None:
        bench = replace(bench, size=args.bench_size)
    if args.bench_repeats is not None:
        bench = replace(bench, repeats=args.bench_repeats)
    return replace(matrix, benchmark=bench)


def console_main() -> None:
    sys.exit(main())
