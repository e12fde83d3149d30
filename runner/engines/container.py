"""One container, many probe tasks: write the job, run the harness, collect one ProbeResult per task.

Every phase (writes, reads, the benchmark, dataset loading) runs its probes through :func:`run_tasks`.
The container runs locked down (see ``RunSpec``); a container the engine refuses or loses becomes a
result on each of its tasks, with the engine's words, and the run goes on.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.engines.engine import ContainerError, Engine, Mount, RunResult, RunSpec
from runner.engines.images import PYTHON
from runner.engines.workdir import Workdir
from runner.errors import WorkDiskFullError
from runner.protocol import ProbeResult, Task, collect, job_file, load_json

log = logging.getLogger("runner")

CONTAINER_SLACK = 60.0  # seconds on top of the probes' own timeouts before a container is killed
MIN_TMPFS = 1 << 30
#: Below this much free space in the work directory, probes could not write their records: the run stops
#: (exit 7) rather than record crashes that are the disk's, not the libraries'.
MIN_FREE_BYTES = 32 << 20


@dataclass(frozen=True, kw_only=True)
class Limits:
    memory: str
    pids_limit: int


@dataclass(frozen=True, kw_only=True)
class Batch:
    """What one container left: a result per task id, and the image's own account of its versions."""

    results: Mapping[str, ProbeResult]
    env_info: dict[str, Any] | None = None


def run_tasks(
    engine: Engine,
    workdir: Workdir,
    *,
    image: str,
    slug: str,
    phase: str,
    tasks: Sequence[Task],
    mounts: Sequence[Mount],
    limits: Limits,
    jobs: int,
    fork: bool = True,
    tmpfs_size: int = 0,
    network: str | None = None,
) -> Batch:
    """Run ``tasks`` through the harness in one container of ``image``; ``jobs`` probes at once."""
    free = shutil.disk_usage(workdir.work).free
    if free < MIN_FREE_BYTES:
        raise WorkDiskFullError(
            f"{workdir.work}: only {free:,} bytes free, and probes need room for their archives and records. "
            "Everything measured so far is saved; free some space (or pass --work on a larger disk) and add "
            "--resume to complete the run."
        )
    job, out = workdir.job_dirs(phase, slug)
    (job / "tasks.json").write_text(job_file(list(tasks), jobs, fork), encoding="utf-8")
    timeout = sum(t.timeout for t in tasks) + CONTAINER_SLACK
    spec = RunSpec(
        image=image,
        command=(PYTHON, "/probes/harness.py", "/job/tasks.json", "/out"),
        mounts=(
            Mount(source=str(workdir.probes), target="/probes"),
            Mount(source=str(job), target="/job"),
            Mount(source=str(out), target="/out", read_only=False),
            *mounts,
        ),
        tmpfs={"/tmp": f"rw,exec,size={max(tmpfs_size, MIN_TMPFS)}"},
        timeout=timeout,
        memory=limits.memory,
        pids_limit=limits.pids_limit,
        user=workdir.user,
        network=network,
        labels={"org.zipstore-matrix.env": slug, "org.zipstore-matrix.phase": phase},
    )
    try:
        ran = engine.run(spec)
    except ContainerError as exc:
        log.warning("%s %s: the engine could not run the container: %s", phase, slug, exc)
        return Batch(results={t.id: ProbeResult(run=None, record=None, container_error=str(exc)) for t in tasks})
    if ran.exit_code not in (0, None):
        log.warning("%s %s container exited %s:\n%s", phase, slug, ran.exit_code, ran.logs[-2000:])
    results = {t.id: _container_fate(collect(out, t), ran, timeout) for t in tasks}
    return Batch(results=results, env_info=load_json(out / "env.json"))


def _container_fate(result: ProbeResult, ran: RunResult, timeout: float) -> ProbeResult:
    """A task the harness never reported on shares what became of its container (OOM, timeout)."""
    if result.run is not None:
        return result
    if ran.oom_killed:
        return ProbeResult(run={"oom_killed": True, "stderr_tail": ran.logs[-2000:]}, record=result.record)
    if ran.timed_out:
        run = {"timed_out": True, "seconds": timeout, "stderr_tail": ran.logs[-2000:]}
        return ProbeResult(run=run, record=result.record)
    return result
