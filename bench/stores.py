#!/usr/bin/env python3
"""Run the store benchmark twice (or more) back to back and print the runs side by side.

    python bench/stores.py matrix.yaml                       # default size, every zarr environment
    python bench/stores.py matrix.yaml --size 10000          # the original 10 000 x 10 000 int32 (400 MB)
    python bench/stores.py matrix.yaml --only 'zarr-3.1.6*' --runs 3

Each run is ``python -m runner MATRIX --benchmark-only`` into its own folder under --out. For every
environment, dataset and store the script prints the median and 95 % interval of each run, the change
between runs, whether the intervals overlap ("agree"), and each store's ratio to the raw file. The last
line counts how many measures agree: on a noisy machine that, not any single number, says whether the
benchmark can be trusted. Exit status 0 whatever the numbers; 1 if a run itself failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import cli
from runner.results import benchmark
from runner.results.model import Results


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("matrix", type=Path)
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="runs go to OUT/run-1, OUT/run-2, ...")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--size", type=int, default=None, help="synthetic int32 array side (default: the matrix's)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default: the matrix's)")
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help="environments (repeatable)")
    p.add_argument("--compare", nargs=2, type=Path, metavar="RESULTS", help="only compare two results.json files")
    args = p.parse_args(argv)

    if args.compare:
        paths = list(args.compare)
    else:
        paths = []
        for n in range(1, max(2, args.runs) + 1):
            out = args.out / f"run-{n}"
            argv_run = [str(args.matrix), "--benchmark-only", "--out", str(out)]
            argv_run += [f"--only={glob}" for glob in args.only]
            if args.size is not None:
                argv_run += ["--bench-size", str(args.size)]
            if args.repeats is not None:
                argv_run += ["--bench-repeats", str(args.repeats)]
            print(f"# run {n}: python -m runner {' '.join(argv_run)}", flush=True)
            code = cli.main(argv_run)
            if code != 0:
                print(f"run {n} failed with exit code {code}", file=sys.stderr)
                return 1
            paths.append(out / "results.json")

    runs = [Results.read(path) for path in paths]
    first = runs[0]
    for n, later in enumerate(runs[1:], 2):
        rows = benchmark.compare(first.benchmarks, later.benchmarks)
        print(f"\n# run 1 vs run {n}: median [95 % interval], ms for times, x raw for ratios")
        header = f"{'environment':42} {'dataset':15} {'store':14} {'measure':12}"
        print(f"{header} {'run 1':>30} {'run ' + str(n):>30} {'change':>7}  agree")
        for row in rows:
            scale = 1e3 if not row.measure.endswith("ratio") else 1.0
            a, b = row.first, row.second
            one = f"{a.median * scale:9.3f} [{a.low * scale:.3f}–{a.high * scale:.3f}]"
            two = f"{b.median * scale:9.3f} [{b.low * scale:.3f}–{b.high * scale:.3f}]"
            print(
                f"{row.env[:42]:42} {row.dataset[:15]:15} {row.store:14} {row.measure:12} {one:>30} {two:>30} "
                f"{row.change:6.2f}x  {'yes' if row.agree else 'NO'}"
            )
        agree = sum(r.agree for r in rows)
        ratios = [r for r in rows if r.measure.endswith("ratio") and r.store != benchmark.BASELINE]
        times = [r for r in rows if not r.measure.endswith("ratio")]
        print(
            f"\n{agree}/{len(rows)} measures agree within their intervals "
            f"(times {sum(r.agree for r in times)}/{len(times)}, "
            f"ratios to raw {sum(r.agree for r in ratios)}/{len(ratios)})"
        )
        if times:
            changes = sorted(abs(r.change - 1) for r in times)
            print(f"median |change| of times between runs: {changes[len(changes) // 2] * 100:.1f} %")
            raw = sorted(r.change for r in times if r.store == benchmark.BASELINE)
            if raw:  # the baseline moving means the machine moved, not the stores
                print(
                    f"the raw file itself took {raw[len(raw) // 2]:.2f}x as long in run {n} (median over "
                    f"{len(raw)} raw timings): absolute times follow the machine; ratios to raw cancel it"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
