"""The local engine without uv or a network: paths, limits, what it will not build, and the real harness
run through it on this host."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runner.engines.engine import BuildContext, LocalRecipe, Mount, RunSpec
from runner.engines.images import PYTHON, REPOSITORY
from runner.engines.local_engine import LocalEngine, _translate, find_python, memory_bytes
from runner.protocol import Task, collect, job_file
from runner.resources import probes_dir
from runner.results.model import Status


def test_memory_sizes_are_read_as_docker_reads_them() -> None:
    assert memory_bytes("4g") == 4 << 30 and memory_bytes("512m") == 512 << 20 and memory_bytes("1024") == 1024
    with pytest.raises(ValueError, match="not a memory size"):
        memory_bytes("lots")


def test_container_paths_become_host_paths_and_nothing_else_does() -> None:
    paths = {"/artifacts": "/h/art", "/out": "/h/out", PYTHON: "/v/bin/python"}
    task = {"archive": "/artifacts/a/b.zip", "record": "/out/x.json", "other": "/output/y", "n": 3, "l": ["/out"]}
    assert _translate(task, paths) == {
        "archive": "/h/art/a/b.zip",
        "record": "/h/out/x.json",
        "other": "/output/y",
        "n": 3,
        "l": ["/h/out"],
    }


def test_this_python_is_found_and_a_missing_one_is_not() -> None:
    assert find_python(f"{sys.version_info.major}.{sys.version_info.minor}") == sys.executable
    assert find_python("2.1") is None


@pytest.mark.parametrize(
    ("recipe", "why"),
    [
        (LocalRecipe(python="3.11", unsupported="apt packages need Docker"), "wheels only; apt packages need Docker"),
        (LocalRecipe(python="2.1", requirements=("zarr",)), "this host has no Python 2.1"),
    ],
)
def test_what_the_local_engine_cannot_build_is_skipped_with_the_reason(
    tmp_path: Path, recipe: LocalRecipe, why: str
) -> None:
    built = LocalEngine(tmp_path).build(BuildContext(tag=f"{REPOSITORY}:x-1", dockerfile="", local=recipe))
    assert not built.ok and built.skipped is not None and why in built.skipped


def test_the_harness_runs_through_the_local_engine_with_its_limits(tmp_path: Path) -> None:
    """A "venv" that is this interpreter: the engine's path translation, environment and limits, for real."""
    engine = LocalEngine(tmp_path / "venvs")
    tag = f"{REPOSITORY}:selftest-1"
    venv = engine._dir(tag)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "env.json").write_text(json.dumps({"python": "local", "distributions": {}}))
    (venv / "ready").write_text(tag)
    assert engine.has_image(tag) and engine.has_image("debian:bookworm")
    job, out = tmp_path / "job", tmp_path / "out"
    job.mkdir()
    out.mkdir()
    tasks = [
        Task(id=action, script="selftest_probe.py", timeout=t, args={"action": action})
        for action, t in (("ok", 30), ("segfault", 30), ("hang", 0.5), ("oom", 30))
    ]
    (job / "tasks.json").write_text(job_file(tasks, 2))
    ran = engine.run(
        RunSpec(
            image=tag,
            command=(PYTHON, "/probes/harness.py", "/job/tasks.json", "/out"),
            mounts=(
                Mount(source=str(probes_dir()), target="/probes"),
                Mount(source=str(job), target="/job"),
                Mount(source=str(out), target="/out", read_only=False),
            ),
            memory="1g",
            timeout=60,
        )
    )
    assert ran.exit_code == 0, ran.logs
    assert json.loads((out / "env.json").read_text())["python"] == "local"  # the venv's account, not /opt's
    results = {t.id: collect(out, t) for t in tasks}
    assert results["ok"].verdict() is None
    statuses = {k: v.status for k, r in results.items() if (v := r.verdict()) is not None}
    # under setrlimit the hog meets MemoryError (a clean fail), not the kernel's OOM killer
    assert statuses == {"segfault": Status.CRASH, "hang": Status.TIMEOUT, "oom": Status.FAIL}
    oom = results["oom"].verdict()
    assert oom is not None and "MemoryError" in oom.reason
