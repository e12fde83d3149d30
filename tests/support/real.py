"""Helpers of the real-engine tests: the repository's paths, and the self-test probe run through the same
``run_tasks`` every phase uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runner.engines.container import Limits, run_tasks
from runner.engines.docker_engine import DockerEngine
from runner.engines.engine import Mount
from runner.engines.workdir import Workdir
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.plan.planner import make_plan
from runner.protocol import ProbeResult, Task

ROOT = Path(__file__).resolve().parent.parent.parent
INTEGRATION = ROOT / "tests" / "integration"
T = TypeVar("T")


def wait_until(found: Callable[[], T], what: str, timeout: float = 600, every: float = 0.05) -> T:
    """Poll for an event (a container running, a line logged) instead of sleeping a fixed time, until
    ``found()`` is truthy (an empty list is not found); fail naming it if it never comes."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"{what}: not seen in {timeout:.0f}s"
        time.sleep(every)
    return value


def run_in_container(
    engine: DockerEngine,
    tmp_path: Path,
    tasks: list[Task],
    memory: str = "4g",
    mounts: tuple[Mount, ...] = (),
    pids_limit: int = 1024,
    phase: str = "selftest",
    jobs: int = 1,
) -> dict[str, ProbeResult]:
    """The self-test probe through the same run_tasks every phase uses, one probe at a time."""
    image = make_plan(load_matrix(INTEGRATION / "small.yaml", catalog())).environments[1].tag
    assert engine.has_image(image)
    batch = run_tasks(
        engine,
        Workdir.prepare(tmp_path / "work"),
        image=image,
        slug=phase,
        phase=phase,
        tasks=tasks,
        mounts=mounts,
        limits=Limits(memory=memory, pids_limit=pids_limit),
        jobs=jobs,
    )
    return dict(batch.results)


def selftest(action: str, timeout: float = 60, **args: object) -> Task:
    return Task(id=action, script="selftest_probe.py", timeout=timeout, args={"action": action, **args})
