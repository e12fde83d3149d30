"""A run as a sequence of named phases over one context: images, write, external, checks, read, benchmark.

Each phase is a plain function of the :class:`~runner.context.RunContext` in its own module and tolerates
the failure of any environment: an image that does not build marks its cells ``install-failed``, a
container the engine refuses marks its tasks, and the rest goes on. Results are saved after every phase.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from runner.benchmark_phase import run_benchmark
from runner.compat import add_external_archives, check_archives, read_archives, write_archives
from runner.context import Checkpoint, Options, Progress, RunContext
from runner.engine import Engine
from runner.plan import Plan
from runner.results import Results

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
    plan: Plan, engine: Engine, options: Options, progress: Progress, checkpoint: Checkpoint | None = None
) -> Results:
    ctx = RunContext.start(plan, engine, options, progress, checkpoint)
    removed = engine.cleanup()
    if removed:
        log.info("removed %d leftover container(s) from an earlier run", removed)
    for step in steps(options.phases):
        step(ctx)
        ctx.save()
    return ctx.finish()
