#!/usr/bin/env python3
"""What a night costs when little changed: the default matrix three nights in a row, side by side in one run.

    python bench/nights.py matrix.yaml [--out /tmp/nights] [--release OLD=NEW]

Images must be built already (run the matrix once). Each night is ``python -m runner MATRIX --no-benchmark``
into the same --out (so the same history), timed as a whole (wall clock, the process's own), and counted
from its results.json:

- ``full_warm_s``: ``--fresh``, every cell measured (what every night cost before reuse);
- ``unchanged_night_s``: the next night, nothing changed: reused cells, and the rotation's share (about
  one in seven) measured again (goal ≤ 60 s);
- ``one_release_night_s``: a night where one environment's version changed (``--release OLD=NEW`` edits a
  copy of the matrix: by default zarr 3.0.10 becomes 3.0.9; its image is built first, not timed): its row
  and column are measured, with the rotation's share; ``one_release_cells_measured`` counts them, and
  ``one_release_cells_touching`` counts the cells that environment decides;
- ``nothing_due_night_s``: the night after, with ``--remeasure-every 1000000``: no key due, every cell reused.
  What reuse itself costs (plan, versions asked of the registries, keys, history, page), without the
  rotation's share; ``rotation_share_s`` is ``unchanged_night_s`` less it.

The store benchmark is left out (``--no-benchmark``): it is a timing, measured every night by design.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RELEASE = 'zarr: ["3.0.10", "3.1.6"]=zarr: ["3.0.9", "3.1.6"]'


def night(matrix: Path, out: Path, *extra: str) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runner", str(matrix), "--out", str(out), "--no-benchmark", *extra],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"night failed ({done.returncode}): {done.stderr[-3000:]}")
    return seconds, json.loads((out / "results.json").read_text())


def counts(results: dict[str, object], slug: str | None = None) -> dict[str, int]:
    cells = results["cells"]
    assert isinstance(cells, list)
    keyed = [c for c in cells if c.get("key")]
    out = {
        "cells": len(cells),
        "keyed": len(keyed),
        "reused": sum(1 for c in keyed if c.get("reused")),
        "measured": sum(1 for c in keyed if not c.get("reused")),
    }
    if slug is not None:
        touching = [c for c in keyed if slug in (c["writer"]["env"], c["reader"]["env"])]
        out["touching"] = len(touching)
        out["touching_measured"] = sum(1 for c in touching if not c.get("reused"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/zipstore-nights"))
    parser.add_argument("--release", default=DEFAULT_RELEASE, metavar="OLD=NEW")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    site = args.out / "site"
    old, new = args.release.split("=", 1)
    text = args.matrix.read_text()
    if old not in text:
        sys.exit(f"--release: {old!r} is not in {args.matrix}")
    released = args.out / "released.yaml"
    released.write_text(text.replace(old, new, 1))
    matrix = args.out / "matrix.yaml"
    matrix.write_text(text)
    before = subprocess.run(
        [sys.executable, "-m", "runner", str(matrix), "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    after = subprocess.run(
        [sys.executable, "-m", "runner", str(released), "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    slugs = {line.split()[0] for line in after.splitlines() if line.startswith("  ") and not line.startswith("   ")}
    slugs -= {line.split()[0] for line in before.splitlines() if line.startswith("  ") and not line.startswith("   ")}
    slug = next(iter(slugs), None)
    # its image first, untimed: a release's build is the registry's time, not the night's
    subprocess.run(
        [sys.executable, "-m", "runner", str(released), "--only", slug or "-", "--out", str(args.out / "build"),
         "--no-benchmark"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    full_s, full = night(matrix, site, "--fresh")
    same_s, same = night(matrix, site)
    release_s, release = night(released, site)
    floor_s, floor = night(released, site, "--remeasure-every", "1000000")
    c_full, c_same, c_release, c_floor = counts(full), counts(same), counts(release, slug), counts(floor)
    print(f"full_warm_s={full_s:.1f} cells={c_full['cells']} measured={c_full['measured']}")
    print(f"unchanged_night_s={same_s:.1f} reused={c_same['reused']} measured={c_same['measured']}")
    print(f"unchanged_vs_full={same_s / full_s:.3f}")
    print(f"one_release_night_s={release_s:.1f} environment={slug}")
    print(f"one_release_cells_measured={c_release['measured']} reused={c_release['reused']}")
    print(
        f"one_release_cells_touching={c_release.get('touching')} of them measured: "
        f"{c_release.get('touching_measured')} (the rest measured: the rotation's share)"
    )
    print(f"nothing_due_night_s={floor_s:.1f} reused={c_floor['reused']} measured={c_floor['measured']}")
    print(f"rotation_share_s={same_s - floor_s:.1f} (unchanged_night_s less nothing_due_night_s)")
    history = site / "history.sqlite"
    print(f"history_mb={history.stat().st_size / 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
