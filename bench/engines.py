#!/usr/bin/env python3
"""The same small pip matrix on the local engine (uv virtual environments, no Docker) and on Docker, side
by side: wall time and whether every cell's status agrees.

    python bench/engines.py                   # tests/integration/local.yaml, 3 runs each
    python bench/engines.py MATRIX --runs 5

Each engine first runs once untimed (images and virtual environments built, caches warm), then the runs
alternate. One ``name=value`` line per figure: ``local_s`` and ``docker_s`` (median wall time, with the
range), ``local_vs_docker`` (their ratio) and ``statuses_identical`` (1 when every cell of the pip
environments has the same status on both engines, else 0 and the differing cells listed; apt ones are
skipped on the local engine by design and not compared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import cli
from runner.results.model import Results

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "integration" / "local.yaml"  # pip environments and one apt: skipped locally


def run(matrix: Path, engine: str, out: Path) -> tuple[float, dict[str, str]]:
    started = time.monotonic()
    code = cli.main([str(matrix), "--engine", engine, "--no-benchmark", "--out", str(out)])
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"{engine} run failed with exit code {code}")
    return seconds, {c.id: c.status.value for c in Results.read(out / "results.json").cells}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("matrix", type=Path, nargs="?", default=None, help="default: tests/integration/local.yaml")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench-out/engines"))
    args = p.parse_args(argv)
    matrix = args.matrix or SMALL
    times: dict[str, list[float]] = {"local": [], "docker": []}
    statuses: dict[str, dict[str, str]] = {}
    for engine in times:  # warm-up: builds and caches, not timed
        run(matrix, engine, args.out / f"{engine}-warmup")
    for n in range(1, args.runs + 1):
        for engine in times:
            seconds, statuses[engine] = run(matrix, engine, args.out / f"{engine}-{n}")
            times[engine].append(seconds)
            print(f"# {engine} run {n}: {seconds:.1f}s", flush=True)
    for engine, values in times.items():
        print(
            f"{engine}_s={statistics.median(values):.2f}  # range {min(values):.2f}..{max(values):.2f}, n={len(values)}"
        )
    print(f"local_vs_docker={statistics.median(times['local']) / statistics.median(times['docker']):.2f}")
    pip = {k for k, v in statuses["local"].items() if v != "skipped" or statuses["docker"].get(k) == "skipped"}
    differ = sorted(k for k in pip if statuses["local"][k] != statuses["docker"].get(k))
    print(f"statuses_identical={int(not differ and statuses['local'].keys() == statuses['docker'].keys())}")
    print(f"cells_compared={len(pip)}")
    for cell in differ[:20]:
        print(f"#   differs: {cell}: local {statuses['local'][cell]}, docker {statuses['docker'].get(cell)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
