#!/usr/bin/env python3
"""Where a night's measuring time went: the probe tasks it ran, their seconds summed by probe script.

    python bench/costs.py SITE [--work WORK] [--top 20]

Reads what a run leaves in its work folder (``SITE/work`` unless ``--work``): each container's
``jobs/<phase>/<env>/tasks.json`` (task id -> probe script) and ``records/<phase>/<env>/<id>.run.json`` (the
harness's own account: the task's seconds, from its process's start to its end). Only records written since
the run in ``SITE/results.json`` started count: a container that did not run that night leaves the records of
an earlier one, and they are not this night's cost.

Task seconds are process seconds: tasks run side by side (the harness's ``jobs``), so their sum is more than
the wall clock; the shares say which probes a night spends its cores on (what to make cheaper next), not how
long it took. Container starts and fork servers' imports are not in any task: ``other_s`` in the last line is
the run's wall clock times its jobs less the task seconds, an upper bound on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

#: the largest tasks.json / run.json this reads (the harness writes output tails of 4 kB)
CAP = 16 << 20
#: results.json of the default matrix is ~125 MB
RESULTS_CAP = 512 << 20


def _json(path: Path, cap: int = CAP) -> object:
    if path.stat().st_size > cap:
        raise ValueError(f"{path}: larger than {cap:,} bytes")
    return json.loads(path.read_bytes())


def scripts(work: Path) -> dict[tuple[str, str, str], str]:
    """(phase, env, task id) -> the probe script it ran, from every container's tasks.json."""
    out: dict[tuple[str, str, str], str] = {}
    for job in sorted((work / "jobs").glob("*/*/tasks.json")):
        phase, env = job.parent.parent.name, job.parent.name
        doc = _json(job)
        tasks = doc.get("tasks", []) if isinstance(doc, dict) else []
        for task in tasks if isinstance(tasks, list) else []:
            if isinstance(task, dict) and isinstance(task.get("id"), str):
                out[phase, env, task["id"]] = str(task.get("script", "?"))
    return out


def costs(work: Path, since: float) -> dict[tuple[str, str], list[float]]:
    """(phase, probe script) -> the seconds of each task that ended at or after ``since`` (a POSIX time)."""
    named = scripts(work)
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for record in (work / "records").glob("*/*/*.run.json"):
        if record.stat().st_mtime < since:
            continue
        phase, env = record.parent.parent.name, record.parent.name
        doc = _json(record)
        seconds = doc.get("seconds") if isinstance(doc, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            continue
        task = record.name.removesuffix(".run.json")
        out[phase, named.get((phase, env, task), "?")].append(float(seconds))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path)
    parser.add_argument("--work", type=Path, default=None, help="the run's work folder (default: SITE/work)")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    results = _json(args.site / "results.json", RESULTS_CAP)
    run = results.get("run", {}) if isinstance(results, dict) else {}
    started = datetime.fromisoformat(str(run.get("started"))).timestamp()
    wall = float(run.get("seconds") or 0.0)
    jobs = int((run.get("settings") or {}).get("jobs") or 1)
    found = costs(args.work or args.site / "work", started)
    if not found:
        sys.exit(f"no task records written since the run started ({run.get('started')})")
    total = sum(sum(v) for v in found.values())
    print(f"{'phase':<10} {'probe':<34} {'tasks':>7} {'sum_s':>9} {'share':>6} {'median_s':>9} {'p90_s':>8}")
    for (phase, script), seconds in sorted(found.items(), key=lambda kv: -sum(kv[1]))[: args.top]:
        ordered = sorted(seconds)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(
            f"{phase:<10} {script:<34} {len(seconds):>7} {sum(seconds):>9.1f} {sum(seconds) / total:>6.1%} "
            f"{statistics.median(seconds):>9.3f} {p90:>8.3f}"
        )
    tasks = sum(len(v) for v in found.values())
    other = max(0.0, wall * jobs - total)
    print(f"tasks={tasks} task_s={total:.1f} wall_s={wall:.1f} jobs={jobs} other_s<={other:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
