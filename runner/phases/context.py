"""One run's context: what every phase reads (plan, engine, options, workdir) and the results so far.

Phases are plain functions of a :class:`RunContext` (see ``execute.py``). The context owns the one
path by which a phase runs probes in a container, and the one answer to "is this environment usable?".
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import runner
from runner.engines.builder import ImageBuilder, libraries_from_info
from runner.engines.container import Batch, Limits, run_tasks
from runner.engines.engine import Engine, Mount
from runner.engines.workdir import Workdir
from runner.errors import ResumeError
from runner.matrix.model import EnvironmentSpec
from runner.phases.reuse import Reuse, key_inputs
from runner.plan import cells
from runner.plan.planner import Plan
from runner.protocol import Task
from runner.resources import read_ca_bundle
from runner.results.history import env_key
from runner.results.model import WRITTEN, EnvironmentResult, Outcome, Results, RunInfo

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class ContainerJob:
    """One container's worth of probes for :meth:`RunContext.run_each`."""

    slug: str
    phase: str
    tasks: Sequence[Task]
    mounts: Sequence[Mount] = ()
    label: str = ""  # said as the container starts
    network: str | None = None  # the run's servers' network, for readers over HTTP


Checkpoint = Callable[[Results], None]
#: A checkpoint within a phase waits until this many times the last one's cost has passed since it, so no
#: more than 1/CHECKPOINT_SPACING of a run goes to rewriting results.json (58,680 cells: 6.6 s a write,
#: and there were some 80 a night, one after every image and every environment's container). A phase's end
#: and the run's end save unless nothing was measured since the last write (a night that reuses every result
#: would rewrite last night's file to no purpose: what it reused is in the history); a stopped run (an error,
#: Ctrl-C, SIGTERM) always saves.
CHECKPOINT_SPACING = 20


@dataclass(frozen=True, kw_only=True)
class Options:
    out: Path
    work: Path
    rebuild: bool = False
    allow_bootstrap: bool = True
    #: directories of archives nobody here wrote (``--external``, and the generated ``--hostile`` corpus)
    external: tuple[Path, ...] = ()
    #: which phases run: the compatibility matrix, the store benchmark, or both
    phases: Literal["all", "compat", "benchmark"] = "all"
    #: where downloaded datasets are kept between runs
    cache: Path = Path("~/.cache/zipstore-matrix")
    #: environments' containers run at once in the compatibility phases (``--jobs``; timing phases: one)
    containers: int = 1
    #: earlier measurements to take instead of measuring (None: measure everything, record no keys)
    reuse: Reuse | None = None
    #: image builds download through one pull-through cache under ``cache`` (``--download-cache``)
    download_cache: bool = False

    def resolved(self) -> Options:
        """Bind mounts need absolute paths; ``--out`` defaults to the relative "site"."""
        return replace(
            self,
            out=self.out.resolve(),
            work=self.work.resolve(),
            external=tuple(p.resolve() for p in self.external),
            cache=self.cache.expanduser(),
        )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class RunContext:
    plan: Plan
    engine: Engine
    options: Options
    progress: Progress
    workdir: Workdir
    builder: ImageBuilder
    results: Results
    jobs: int
    checkpoint: Checkpoint | None = None
    started: float = field(default_factory=time.monotonic)
    #: when the last checkpoint ended, and what it cost (monotonic seconds)
    saved: tuple[float, float] = (0.0, 0.0)
    #: what a killed run would lose since the last write: containers run and images built
    unsaved: int = 0
    #: every environment recorded so far, by slug (the matrix's and the dataset loader's)
    envs: dict[str, EnvironmentResult] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        plan: Plan,
        engine: Engine,
        options: Options,
        progress: Progress,
        checkpoint: Checkpoint | None,
        resume: Results | None = None,
    ) -> RunContext:
        options = options.resolved()
        workdir = Workdir.prepare(options.work)
        if options.reuse is not None:
            options.reuse.inputs = key_inputs(plan, workdir.probes)
        jobs = plan.settings.jobs or os.cpu_count() or 1
        engine_info = asdict(engine.info())
        results = (
            _resumed(resume, plan, workdir, progress)
            if resume is not None
            else Results(
                run=RunInfo(
                    id=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
                    started=now(),
                    finished="",
                    engine=engine_info,
                    runner_version=runner.__version__,
                    matrix_sha256=plan.matrix.sha256,
                    matrix_path=plan.matrix.path,
                    settings={**asdict(plan.settings), "benchmark": _bench_settings(plan), "jobs": jobs},
                    host={
                        "machine": platform.machine(),
                        "cpus": os.cpu_count() or 0,
                        "python": platform.python_version(),
                    },
                    probes_sha256=workdir.probes_sha256,
                    shard=str(plan.shard) if plan.shard.count > 1 else "",
                    split=dict(plan.split),
                ),
                environments=[],
                archives=[],
                cells=[],
            )
        )
        results.run.engine = engine_info
        builder = ImageBuilder(
            engine,
            ca=read_ca_bundle(),
            rebuild=options.rebuild,
            allow_bootstrap=options.allow_bootstrap,
            progress=progress,
            downloads=options.cache / "downloads" if options.download_cache else None,
        )
        return cls(
            plan=plan,
            engine=engine,
            options=options,
            progress=progress,
            workdir=workdir,
            builder=builder,
            results=results,
            jobs=jobs,
            checkpoint=checkpoint,
        )

    def save(self, *, now: bool = False, always: bool = False) -> None:
        """Write the results so far, when something was measured since the last write (or ``always``);
        within a phase (``now`` false) only when CHECKPOINT_SPACING times the last write's cost has passed
        since it."""
        if self.checkpoint is None or not (self.unsaved or always):
            return
        ended, cost = self.saved
        started = time.monotonic()
        if not (now or always) and started - ended < CHECKPOINT_SPACING * cost:
            return
        self.checkpoint(self.results)
        ended = time.monotonic()
        self.saved, self.unsaved = (ended, ended - started), 0

    def finish(self) -> Results:
        self.builder.close()
        self.results.run.finished = now()
        self.results.run.seconds = round(time.monotonic() - self.started, 3)
        # a whole run's finished results are written by publish, with what changed; a shard's are what
        # 'merge' reads, so they are written here even when nothing was measured since the last write
        self.save(now=True, always=self.plan.shard.count > 1)
        return self.results

    def environment(self, env: EnvironmentSpec, tag: str, label: str) -> EnvironmentResult:
        """Record an environment in the results and reuse or build its image."""
        result = self.builder.ensure(env, tag, label)
        self.unsaved += not result.cached
        known = self.options.reuse.store.get(env_key(result.image_id)) if self.options.reuse else None
        if known is not None and result.image_id:  # what the image said last time (a run may run nothing in it)
            try:
                record = known.record()
                result.info, result.libraries = dict(record.get("info") or {}), dict(record.get("libraries") or {})
            except (ValueError, TypeError):
                pass  # not a record this runner wrote: the image says it again when a probe runs in it
        self.envs[env.slug] = result
        self.results.environments.append(result)
        return result

    def unavailable(self, slug: str) -> Outcome | None:
        """Why nothing can run in this environment (its image did not build), or None when it is usable."""
        return cells.unavailable(self.envs[slug])

    def image(self, slug: str) -> str:
        """What the keys of an environment's cells name: its image's content id (its tag when the engine
        gives none)."""
        env = self.envs[slug]
        return env.image_id or env.image

    def version(self, slug: str, library: str) -> str:
        """Resolved version from inside the image, else the exact pin, else '?'."""
        return self.envs[slug].libraries.get(library) or self.plan.env(slug).env.pins.get(library) or "?"

    def run_each(self, batches: Sequence[ContainerJob]) -> Iterator[Batch]:
        """Run each job's container, up to ``options.containers`` at once, and yield their batches in the
        order given (so results are recorded in the same order whatever finishes first). A batch counts as
        unsaved when it is handed over, in the caller's thread, which records it before its next save."""

        def one(job: ContainerJob) -> Batch:
            if job.label:
                self.progress(job.label)
            return self._container(job)

        if self.options.containers <= 1 or len(batches) <= 1:
            for job in batches:
                batch = one(job)
                self.unsaved += 1
                yield batch
            return
        with ThreadPoolExecutor(max_workers=self.options.containers) as pool:
            futures = [pool.submit(one, job) for job in batches]
            try:
                for future in futures:
                    batch = future.result()
                    self.unsaved += 1
                    yield batch
            finally:  # a run stopped half-way starts nothing more (those started are the engine's to stop)
                for future in futures:
                    future.cancel()

    def run(
        self,
        slug: str,
        phase: str,
        tasks: Sequence[Task],
        mounts: Sequence[Mount] = (),
        *,
        jobs: int | None = None,
        tmpfs_size: int = 0,
    ) -> Batch:
        """Run ``tasks`` in one container of ``slug``'s image; what the image says of itself is recorded."""
        batch = self._container(ContainerJob(slug=slug, phase=phase, tasks=tasks, mounts=mounts), jobs, tmpfs_size)
        self.unsaved += 1
        return batch

    def _container(self, job: ContainerJob, jobs: int | None = None, tmpfs_size: int = 0) -> Batch:
        slug = job.slug
        batch = run_tasks(
            self.engine,
            self.workdir,
            image=self.envs[slug].image,
            slug=slug,
            phase=job.phase,
            tasks=job.tasks,
            mounts=job.mounts,
            limits=Limits(memory=self.plan.settings.memory, pids_limit=self.plan.settings.pids_limit),
            jobs=jobs or self.jobs,
            fork=self.plan.settings.fork,
            tmpfs_size=tmpfs_size,
            network=job.network,
        )
        if batch.env_info is not None:
            self.envs[slug].info = batch.env_info
            self.envs[slug].libraries = libraries_from_info(batch.env_info)
        return batch


def _resumed(previous: Results, plan: Plan, workdir: Workdir, progress: Progress) -> Results:
    """An interrupted run, ready to be completed: same run id, what it measured kept, the rest to do.

    Environments and datasets are recorded again (images are reused by hash, datasets from the cache);
    an archive whose file is gone from the work directory is written again, with its cells.
    """
    run = previous.run
    shard = str(plan.shard) if plan.shard.count > 1 else ""
    if run.shard != shard:
        raise ResumeError(
            f"--resume: the results to complete are of shard {run.shard or 'none (the whole run)'}, "
            f"this run is {'shard ' + shard if shard else 'the whole run'}: give the same --shard"
        )
    if run.matrix_sha256 != plan.matrix.sha256:
        raise ResumeError(
            f"--resume: the results to complete are of another matrix (sha256 {run.matrix_sha256[:12]}, "
            f"this one {plan.matrix.sha256[:12]}): run without --resume, or into another --out"
        )
    if run.probes_sha256 and run.probes_sha256 != workdir.probes_sha256:
        raise ResumeError(
            "--resume: the probe scripts changed since that run; its cells and new ones would not be "
            "comparable: run without --resume"
        )
    gone = {
        a.id
        for a in previous.archives
        if a.status is WRITTEN
        and a.path
        and not a.path.startswith(cells.EXTERNAL + "/")
        and not (workdir.artifacts / a.path).is_file()
    }
    if gone:
        progress(f"resume: {len(gone)} archive(s) are gone from the work directory and are written again")
    archives = [a for a in previous.archives if a.id not in gone]
    written = {(a.env, a.probe, a.fixture) for a in archives}
    kept = [
        c
        for c in previous.cells
        if c.writer.env == cells.EXTERNAL or (c.writer.env, c.writer.probe, c.fixture) in written
    ]
    progress(
        f"resume: run {run.id}: {len(archives)} archive(s), {len(kept)} cell(s) and "
        f"{len(previous.benchmarks)} benchmark(s) kept; measuring the rest"
    )
    run.finished = ""
    run.resumed.append(now())
    return Results(
        run=run,
        environments=[],
        archives=archives,
        cells=kept,
        datasets=[],
        benchmarks=list(previous.benchmarks),
    )


def _bench_settings(plan: Plan) -> dict[str, Any] | None:
    if plan.matrix.benchmark is None:
        return None
    settings = asdict(plan.matrix.benchmark)
    settings.pop("mnist_source", None)
    return settings
