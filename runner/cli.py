"""``python -m runner [run] MATRIX`` and ``python -m runner merge RESULTS.json ...``: arguments -> a typed
request -> :mod:`runner.app` -> exit code. The one place an error becomes an exit code (``errors.ExitCode``);
``main`` never calls ``sys.exit``. Whatever stops a run, what it measured is saved first, and --resume
completes it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import runner
from runner import app, notify, repro
from runner.engines.engine import Engine
from runner.errors import ExitCode, Interrupted, RunnerError, UsageError
from runner.results.model import WHOLE, Shard
from runner.versions.index import Index

log = logging.getLogger("runner")

EPILOG = (
    "Exit codes: "
    + ", ".join(f"{int(code)} {code.name.lower().replace('_', ' ')}" for code in ExitCode)
    + (". A stopped run keeps what it measured: --resume completes it.")
)


def _shard(text: str) -> Shard:
    """``--shard K/N``; a bad value is argparse's error (exit 2, naming the option), not a traceback."""
    try:
        return Shard.parse(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--shard {text!r}: ")) from exc


def _external_argument(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--external", type=Path, action="append", default=[], metavar="DIR", help=text)


def _run_arguments(p: argparse.ArgumentParser) -> None:
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
    _external_argument(p, "also read every *.zip below DIR (archives written by other software; repeatable)")
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
        type=_shard,
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
    p.add_argument(
        "--fresh",
        action="store_true",
        help="measure every cell; by default a cell whose key (everything that decides it) the history has "
        "measured is reused, but for a rotating share measured again each night",
    )
    p.add_argument(
        "--remeasure-every",
        type=int,
        default=7,
        metavar="N",
        dest="every",
        help="measure every reused cell again at least once every N nights (default 7)",
    )
    p.add_argument("--list", action="store_true", help="print the plan and exit; builds and runs nothing")
    p.add_argument("--rebuild", action="store_true", help="rebuild images even when one with the same hash exists")
    p.add_argument("--no-bootstrap", action="store_true", help="never debootstrap a missing Debian base; fail instead")
    p.add_argument(
        "--download-cache",
        action="store_true",
        help="image builds download wheels, npm packages and Debian packages through one pull-through cache "
        "kept in ~/.cache/zipstore-matrix/downloads (for slow networks: with fast mirrors it saved nothing, "
        "see bench/coldbuild.py)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="echo every engine command and build output")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")


def _merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json", help="one per shard, any order")
    p.add_argument("--out", type=Path, default=Path("site"), help="where the page and results go (default: site)")
    p.add_argument("--history", type=Path, default=None, metavar="PATH", help="default: OUT/history.sqlite")
    p.add_argument("--fail-on", choices=["regression"], default=None)
    p.add_argument("-v", "--verbose", action="store_true", help="more detail in the log")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")


def _repro_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cell", metavar="CELL_ID", help="a cell's id, as results.json and the page's notes give it")
    p.add_argument(
        "--results", type=Path, default=Path("site/results.json"), help="the run's results.json (default: site/)"
    )
    p.add_argument("--matrix", type=Path, default=None, help="the run's matrix file (default: the path it recorded)")
    p.add_argument(
        "--out", type=Path, default=Path("repro"), help="where the cell's archive and records go (default: repro)"
    )
    _external_argument(
        p, "where the run's --external archives are, for a cell that read one (the hostile corpus is made again)"
    )
    p.add_argument("--engine", choices=["auto", "docker", "local"], default="auto", help="as for run")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail in the log")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")


def _notify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("site/results.json"), help="the night's results.json")
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the repository whose issue it keeps")
    p.add_argument(
        "--api",
        default=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        metavar="URL",
        help="GitHub's REST API (default: $GITHUB_API_URL, else https://api.github.com)",
    )
    p.add_argument("--page", default="", metavar="URL", help="the published page, linked from the issue")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail in the log")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")


#: The subcommands, one line each: name -> (help, arguments). ``python -m runner MATRIX`` is ``run``.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": (
        "build one image per environment, write Zarr ZipStores with every writer, read each archive with every "
        "reader, and publish the compatibility matrix (HTML, Markdown, JSON)",
        _run_arguments,
    ),
    "merge": (
        "combine the results.json of the shards of one run (--shard K/N) into one results.json, history entry "
        "and page, as if one machine had run it all",
        _merge_arguments,
    ),
    "notify": (
        "open, update or close the one GitHub issue that lists the cells the nightly broke, from a night's "
        "results.json (the token: $GITHUB_TOKEN)",
        _notify_arguments,
    ),
    "repro": (
        "measure one cell of a run again (its images, its archive, its reader) and print the library's own words "
        "and a reproducer to paste into an upstream issue; exit 10 when the status is not the run's",
        _repro_arguments,
    ),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner",
        description="The ZipStore compatibility matrix. 'python -m runner MATRIX' is short for "
        "'python -m runner run MATRIX'.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {runner.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (text, add) in COMMANDS.items():
        add(sub.add_parser(name, help=text, description=text, epilog=EPILOG))
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """A first argument that names no command (and is no option) is the matrix of ``run``."""
    argv = list(argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "run")
    return parser().parse_args(argv)


def run_request(args: argparse.Namespace) -> app.RunRequest:
    return app.RunRequest(
        matrix=args.matrix,
        out=args.out,
        work=args.work,
        only=tuple(args.only),
        external=tuple(args.external),
        hostile=args.hostile,
        phases="benchmark" if args.benchmark_only else "compat" if args.no_benchmark else "all",
        bench_size=args.bench_size,
        bench_repeats=args.bench_repeats,
        resume=args.resume,
        history=args.history,
        fail_on=args.fail_on,
        jobs=args.jobs,
        shard=args.shard,
        engine=args.engine,
        trust_external=args.trust_external,
        list_only=args.list,
        rebuild=args.rebuild,
        bootstrap=not args.no_bootstrap,
        download_cache=args.download_cache,
        fresh=args.fresh,
        every=args.every,
    )


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name, 128 + signum)


#: Both stop a run the same way. SIGINT too is handled explicitly: a runner started from a background job
#: inherits SIGINT ignored, and Python then installs no KeyboardInterrupt of its own.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None, engine: Engine | None = None, index: Index | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    _setup_logging(args.verbose or args.debug)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _interrupted) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        if args.command == "merge":
            return app.merge_shards(
                app.MergeRequest(results=tuple(args.results), out=args.out, history=args.history, fail_on=args.fail_on)
            )
        if args.command == "notify":
            token = os.environ.get("GITHUB_TOKEN", "")
            if not token:
                raise UsageError("notify: $GITHUB_TOKEN is empty: the job needs a token with issues: write")
            request_ = notify.NotifyRequest(
                results=args.results, repo=args.repo, token=token, api=args.api, page=args.page
            )
            log.info("notify: %s", notify.notify(request_))
            return ExitCode.OK
        if args.command == "repro":
            request = repro.ReproRequest(
                cell=args.cell, results=args.results, out=args.out, matrix=args.matrix, external=tuple(args.external)
            )
            return repro.run(request, engine or app.choose_engine(args.engine), index)
        return app.run(run_request(args), engine, index)
    except RunnerError as exc:
        log.error("error: %s", exc)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted) as exc:
        stop = exc if isinstance(exc, Interrupted) else Interrupted("SIGINT", ExitCode.SIGINT)
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
        return ExitCode.INTERNAL
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def console_main() -> None:
    sys.exit(main())
