#!/usr/bin/env python3
"""What the in-container harness adds to every task, this tree's against another revision's, side by side on
the host (the harness is standard library only: no engine, no image).

    python bench/harness.py --against 331e77c [--tasks 300] [--rounds 5]

Each round runs TASKS trivial self-test tasks (``selftest_probe.py``, action ``ok``: a record and nothing
else) through each harness in turn, two at a time as in a container on 2 cores, once with the fork server and
once with a fresh interpreter per task; the revisions alternate within the round, so both meet the same
machine. What a task costs beyond its own work is what the harness waits, forks and writes around it: a
night's ~6,000 reads pay it each. Prints one ``name=value`` line per figure, medians over the rounds with the
range:

- ``per_task_ms_<mode>_<tree|against>``: the run's wall time over its tasks;
- ``task_seconds_ms_<mode>_<tree|against>``: the median task's own ``seconds`` in its run.json (from its
  start to the harness seeing its end);
- ``speedup_<mode>``: the other revision's wall time over this tree's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBES = "runner/probes"


def checkout(revision: str, into: Path) -> Path:
    """The probes folder of ``revision`` (git archive), unpacked under ``into``."""
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, PROBES], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / PROBES


def run(probes: Path, tasks: int, fork: bool, scratch: Path) -> tuple[float, float]:
    """(wall seconds, median task seconds) of one harness run of ``tasks`` trivial tasks."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    out = folder / "out"
    out.mkdir()
    spec = {
        "jobs": 2,
        "fork": fork,
        "tasks": [
            {"id": f"t{i}", "script": "selftest_probe.py", "args": {"action": "ok"}, "timeout": 60}
            for i in range(tasks)
        ],
    }
    (folder / "tasks.json").write_text(json.dumps(spec))
    env = {**os.environ, "ZIPSTORE_NO_CGROUP": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(probes / "harness.py"), str(folder / "tasks.json"), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wall = time.perf_counter() - started
    seconds = [json.loads((out / f"t{i}.run.json").read_text())["seconds"] for i in range(tasks)]
    return wall, statistics.median(seconds)


def figure(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", required=True, metavar="REV", help="the git revision whose harness to compare")
    p.add_argument("--tasks", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if args.tasks < 1 or args.rounds < 1:
        p.error("need --tasks >= 1 and --rounds >= 1")

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        trees = {"tree": ROOT / PROBES, "against": checkout(args.against, scratch / "against")}
        wall: dict[str, list[float]] = {}
        task: dict[str, list[float]] = {}
        for n in range(args.rounds):
            for mode, fork in (("fork", True), ("fresh", False)):
                order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
                for name, probes in order:
                    w, t = run(probes, args.tasks, fork, scratch)
                    wall.setdefault(f"{mode}_{name}", []).append(w)
                    task.setdefault(f"{mode}_{name}", []).append(t)
    print(f"# {args.tasks} trivial tasks, 2 at a time, {args.rounds} rounds; this tree against {args.against}")
    for key in sorted(wall):
        print(f"per_task_ms_{key}={figure([1000 * w / args.tasks for w in wall[key]])}")
        print(f"task_seconds_ms_{key}={figure([1000 * t for t in task[key]])}")
    for mode in ("fork", "fresh"):
        ratios = [a / b for a, b in zip(wall[f"{mode}_against"], wall[f"{mode}_tree"], strict=True)]
        print(f"speedup_{mode}={figure(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
