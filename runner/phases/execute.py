"""A run as a sequence of named phases over one context: images, write, external, checks, read, benchmark.

Each phase is a plain function of the :class:`~runner.phases.context.RunContext` in its own module and tolerates
the failure of any environment: an image that does not build marks its cells ``install-failed``, a
container the engine refuses marks its tasks, and the rest goes on. Results are saved after every phase.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable

from runner.engines.engine import Engine, this_owner
from runner.errors import WorkDiskFullError
from runner.phases.benchmark_phase import run_benchmark
from runner.phases.compat import add_external_archives, check_archives, read_archives, write_archives
from runner.phases.context import Checkpoint, Options, Progress, RunContext
from runner.plan.planner import Plan
from runner.results.model import Results

__all__ = ["Options", "build_images", "execute", "steps"]

log = logging.getLogger("runner")

Step = Callable[[RunContext], None]


def build_images(ctx: RunContext) -> None:
    """Every selected environment's image, reused by hash or built; exit 5 when no base at all can be had."""
    wanted = [ep for ep in ctx.plan.environments if ctx.options.phases != "benchmark" or ep.benchmarks]
    for n, ep in enumerate(wanted, 1):
        ctx.environment(ep.env, ep.tag, f"image {n}/{len(wanted)}")
        ctx.save()
    nothing = ctx.builder.no_base_at_all()
    if nothing is not None:
        raise nothing


def steps(phases: str) -> tuple[Step, ...]:
    compat: tuple[Step, ...] = (write_archives, add_external_archives, check_archives, read_archives)
    bench: tuple[Step, ...] = (run_benchmark,)
    return (
        build_images,
        *(compat if phases in ("all", "compat") else ()),
        *(bench if phases in ("all", "benchmark") else ()),
    )


def execute(
    plan: Plan,
    engine: Engine,
    options: Options,
    progress: Progress,
    checkpoint: Checkpoint | None = None,
    resume: Results | None = None,
) -> Results:
    """Run the phases; with ``resume`` (an interrupted run's results), only what that run did not measure.

    Whatever stops the run (the engine lost, a full disk, SIGTERM, Ctrl-C, a bug), what was measured is
    saved first and this run's containers are removed.
    """
    ctx = RunContext.start(plan, engine, options, progress, checkpoint, resume)
    removed = engine.cleanup()
    if removed:
        log.info("removed %d leftover container(s) from an earlier run", removed)
    try:
        todo = steps(options.phases)
        for n, step in enumerate(todo, 1):
            step(ctx)
            if n < len(todo):  # the last is saved by finish()
                ctx.save(now=True)
    except BaseException as exc:
        _stop(ctx, engine)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise WorkDiskFullError(
                f"No space left on the device ({exc.filename or options.work}). Everything measured so far "
                "is saved; free some space and add --resume to complete the run."
            ) from exc
        raise
    return ctx.finish()


def _stop(ctx: RunContext, engine: Engine) -> None:
    """Keep what was measured and leave no container behind; neither may hide why the run stopped."""
    with contextlib.suppress(Exception):
        ctx.save(always=True)
    with contextlib.suppress(Exception):
        ctx.builder.close()
    with contextlib.suppress(Exception):
        engine.cleanup(owner=this_owner())
