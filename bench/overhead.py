#!/usr/bin/env python3
"""What a run spends besides the work it measures: fork server on and off, one container at a time or two,
side by side.

    python bench/overhead.py matrix.yaml                          # every environment, 2 runs per mode
    python bench/overhead.py matrix.yaml --only 'zarr-*' --runs 3

Each run is ``python -m runner MATRIX --no-benchmark`` (images already built: run the matrix once first)
in four modes, interleaved, each into its own folder under --out: ``fork`` (the fork server, ``--jobs
1``), ``fresh`` (``settings.fork: false``, ``--jobs 1``), ``jobs2`` (the fork server, ``--jobs 2``) and
``pairs`` (the fork server, two containers at once with one task each: ``--jobs 2`` and ``settings.jobs:
1``, as many tasks at once as ``fork`` on two CPUs, but one container's start, imports and last task
overlap the other's work). ``--cold`` empties the kernel's page cache before each run (root; what the
first night on a fresh machine meets: every image's files read from disk). Per run it
reads the probes' own accounts: every task's process time (``*.run.json``) and the work its probe timed
(a reader's open and timed reads, a writer's write), and prints one ``name=value`` line per figure:

- ``warm_vs_work_<mode>``: the run's wall time / the work its probes measured (goal ≤ 1.5);
- ``per_probe_overhead_s_<mode>``: read-phase process time minus timed work, per task (goal ≤ 0.05);
- ``read_phase_s_<mode>``: the read phase's summed process time;
- ``fork_speedup``: median wall time without the fork server / with it (both ``--jobs 1``);
- ``jobs2_speedup``: median wall time with ``--jobs 1`` / with ``--jobs 2`` (both with the fork server);
- ``pairs_speedup``: median wall time of ``fork`` / of ``pairs``.

Medians over the runs, with the range. Exit status 0 whatever the numbers; 1 if a run itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import cli
from runner.results.model import Results


def _records(work: Path, phase: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for run_path in sorted((work / "records" / phase).glob("*/*.run.json")):
        probe_path = run_path.with_name(run_path.name.replace(".run.json", ".probe.json"))
        run = json.loads(run_path.read_text())
        probe = json.loads(probe_path.read_text()) if probe_path.is_file() else {}
        out.append((run, probe))
    return out


def _timed(probe: dict[str, Any]) -> float:
    t = probe.get("timings") or {}
    return float(t.get("open_s") or 0) + float(sum(t.get("read_samples") or [])) + float(t.get("write_s") or 0)


def measure(out: Path) -> dict[str, float]:
    results = Results.read(out / "results.json")
    work_dir = out / "work"
    reads = _records(work_dir, "read")
    writes = _records(work_dir, "write")
    read_process = sum(float(r.get("seconds") or 0) for r, _ in reads)
    read_work = sum(_timed(p) for _, p in reads)
    work = read_work + sum(_timed(p) for _, p in writes)
    return {
        "wall_s": results.run.seconds,
        "work_s": work,
        "warm_vs_work": results.run.seconds / work if work else float("nan"),
        "read_phase_s": read_process,
        "per_probe_overhead_s": (read_process - read_work) / len(reads) if reads else float("nan"),
        "tasks": float(len(reads)),
        "forked_share": sum(1 for r, _ in reads if r.get("process") == "forked") / len(reads) if reads else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("matrix", type=Path)
    p.add_argument("--out", type=Path, default=Path("bench-out/overhead"))
    p.add_argument("--runs", type=int, default=2, help="runs per mode, interleaved (default 2)")
    p.add_argument("--only", action="append", default=[], metavar="GLOB")
    p.add_argument("--modes", default="fork,fresh,jobs2", help="which of fork,fresh,jobs2,pairs (default: 3)")
    p.add_argument("--cold", action="store_true", help="empty the page cache before each run (root)")
    args = p.parse_args(argv)
    if args.cold and os.geteuid() != 0:
        p.error("--cold empties the page cache (/proc/sys/vm/drop_caches): run as root")

    data = yaml.safe_load(args.matrix.read_text(encoding="utf-8"))
    # mode: (fork server, containers at once, settings.jobs (tasks per container) or None: the matrix's)
    every = {"fork": (True, 1, None), "fresh": (False, 1, None), "jobs2": (True, 2, None), "pairs": (True, 2, 1)}
    modes = {m: every[m] for m in args.modes.split(",")}
    figures: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, args.runs + 1):
            for mode, (fork, jobs, tasks) in modes.items():
                settings = {**data.get("settings", {}), "fork": fork}
                if tasks is not None:
                    settings["jobs"] = tasks
                variant = {**data, "settings": settings}
                matrix = Path(tmp) / f"{mode}.yaml"
                matrix.write_text(yaml.safe_dump(variant, sort_keys=False), encoding="utf-8")
                out = args.out / f"{mode}-{n}"
                argv_run = [str(matrix), "--no-benchmark", "--out", str(out), f"--jobs={jobs}"]
                argv_run += [f"--only={g}" for g in args.only]
                print(f"# {mode} run {n}: python -m runner {' '.join(argv_run)}", flush=True)
                if args.cold:
                    subprocess.run(["sync"], check=True)
                    Path("/proc/sys/vm/drop_caches").write_text("3\n")
                if cli.main(argv_run) != 0:
                    print(f"{mode} run {n} failed", file=sys.stderr)
                    return 1
                figures[mode].append(measure(out))
                print(f"#   {json.dumps({k: round(v, 3) for k, v in figures[mode][-1].items()})}", flush=True)

    def med(mode: str, key: str) -> str:
        values = [f[key] for f in figures[mode]]
        return f"{statistics.median(values):.3f}  # range {min(values):.3f}..{max(values):.3f}, n={len(values)}"

    for mode in modes:
        for key in ("warm_vs_work", "per_probe_overhead_s", "read_phase_s", "wall_s", "work_s", "forked_share"):
            print(f"{key}_{mode}={med(mode, key)}")
    walls = {mode: statistics.median(f["wall_s"] for f in figures[mode]) for mode in figures}
    if "fresh" in walls and "fork" in walls:
        print(f"fork_speedup={walls['fresh'] / walls['fork']:.2f}")
    if "jobs2" in walls and "fork" in walls:
        print(f"jobs2_speedup={walls['fork'] / walls['jobs2']:.2f}")
    if "pairs" in walls and "fork" in walls:
        print(f"pairs_speedup={walls['fork'] / walls['pairs']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
