#!/usr/bin/env python3
"""The runner's own work at 100,000 cells, without probes: a synthetic run, each step timed and its memory
peak measured (tracemalloc, in a second pass so it does not slow the timed one).

    python bench/scale.py [--writers 40] [--readers 252] [--fixtures 5]

The run: WRITERS writer environments × 2 writer probes × FIXTURES fixtures = the archives; READERS reader
(environment, probe) pairs read each: 40 × 2 × 5 × 252 = 100,800 cells, between 40 writer and 212 reader
library versions (8,480 writer × reader pairs). Steps:

- ``plan``: make_plan on the synthetic matrix, and every reader × archive task (``split_reads``);
- ``split``: the same plan as shard 1 of 4 (the split by expected cost);
- ``reuse_lookup``: every cell's key looked up in a store of the previous night's 100,800 records (the
  history's ``measured`` rows, compressed), due or not, and the reused ones decoded;
- ``merge``: two shards of 50,400 cells into one run;
- ``history_write``: the run appended to an SQLite history, its measured records kept;
- ``changes``: what changed since the previous night (read back from the history);
- ``results_write``: results.json written (one line per record, by json's C encoder), side by side with
  ``indented_write``, the way it was written before (a copy of the whole tree, then json's Python encoder,
  which is what ``indent`` takes), 3 times each, interleaved: medians and ``results_write_speedup``;
- ``render``: the whole site; ``first_view_kb`` is index.html (grows with writer × reader pairs, not with
  cells: every cell's detail is on its fixture's page), ``site_mb`` everything.

Prints ``STEP_s`` and ``STEP_peak_mb`` per step, and the sizes.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.phases.reuse import Reuse
from runner.plan import cells as plan_cells
from runner.plan.planner import Archive, make_plan
from runner.report import render
from runner.results import changes, history, merge
from runner.results.model import (
    WRITTEN,
    ArchiveResult,
    CellResult,
    EnvironmentResult,
    Results,
    RunInfo,
    Side,
    Status,
)

ENGINE = {"name": "synthetic", "version": "0", "api_version": "0"}
STATUSES = [Status.PASS] * 6 + [Status.FAIL, Status.UNSUPPORTED, Status.MISMATCH]


def matrix_text(writers: int, readers: int, fixtures: list[str]) -> str:
    """WRITERS zarr environments (writers and readers) and enough fsspec ones to make READERS reader probes."""
    zarr = [f"3.{n // 10}.{n % 10}" for n in range(writers)]
    extra = max(0, readers - 2 * writers)
    fsspec = [f"2026.{n}.0" for n in range(extra)]
    return f"""version: 1
fixtures: {fixtures}
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={{zarr}}"]
    probes: ["zarr-v3", "zarr-zipdir-v3", "zarr-zipstore", "zarr-fsspec"]
    matrix: {{zarr: {zarr}}}
  - base: debian:bookworm
    channel: pip
    packages: ["fsspec=={{fsspec}}"]
    matrix: {{fsspec: {fsspec}}}
"""


def synthetic(plan: Any, run_id: str, shift: int = 0) -> Results:
    """A finished run of the plan: every write written, every read a cell with a status and a key."""
    environments = [
        EnvironmentResult(slug=ep.slug, base=ep.env.base, python="3.11", channel="pip", packages=list(ep.env.packages),
                          image=ep.tag, image_id="sha256:" + hashlib.sha256(ep.tag.encode()).hexdigest(),
                          libraries={ep.env.slug.split("-")[0]: ep.env.slug.split("-")[1]})
        for ep in plan.environments
    ]  # fmt: skip
    archives = []
    for w in plan.writes:
        archives.append(ArchiveResult(
            id=w.id, env=w.env, probe=w.probe.id, library="zarr", version=w.env.split("-")[1], zarr_format=3,
            fixture=w.fixture.name, status=WRITTEN, path=w.archive, sha256="0" * 64, size=12345,
            key=hashlib.sha256(w.id.encode()).hexdigest(),
        ))  # fmt: skip
    readable = [
        Archive(id=a.id, path=a.path or "", fixture=a.fixture, arrays=("data",), zarr_format=3, writer_env=a.env,
                writer_probe=a.probe)
        for a in archives
    ]  # fmt: skip
    by_id = {a.id: a for a in archives}
    cells = []
    n = shift
    for ep in plan.environments:
        tasks, _ = plan_cells.split_reads(ep, readable)
        for t in tasks:
            a = by_id[t.archive.id]
            status = STATUSES[n % len(STATUSES)]
            n += 1
            cells.append(CellResult(
                id=t.cell_id, fixture=a.fixture, status=status,
                writer=Side(env=a.env, probe=a.probe, library="zarr", version=a.version, zarr_format=3),
                reader=Side(env=ep.slug, probe=t.probe.id, library=t.probe.library, version=ep.slug.split("-")[1]),
                reason="" if status is Status.PASS else f"ValueError: synthetic reason {n % 97}",
                timings={"read_s": 0.01, "read_samples": [0.01, 0.011, 0.012]},
                key=hashlib.sha256(t.cell_id.encode()).hexdigest(),
            ))  # fmt: skip
    run = RunInfo(id=run_id, started=f"2026-12-0{1 + shift % 8}T03:17:00+00:00",
                  finished=f"2026-12-0{1 + shift % 8}T04:17:00+00:00", engine=ENGINE,
                  runner_version="0", matrix_sha256=plan.matrix.sha256, matrix_path="synthetic.yaml",
                  settings={"jobs": 2})  # fmt: skip
    return Results(run=run, environments=environments, archives=archives, cells=cells)


def indented(results: Results) -> str:
    """results.json as it was written before: a copy of the whole tree (dataclasses to dicts, leaves not
    copied), then ``json.dumps(indent=1)``, which takes json's encoder in Python."""

    def plain(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    data = plain(results)
    data = {"schema_version": data.pop("schema_version"), **data}
    return json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False, default=str) + "\n"


def measure(name: str, fn: Callable[[], Any], figures: dict[str, float]) -> Any:
    started = time.perf_counter()
    value = fn()
    figures[f"{name}_s"] = time.perf_counter() - started
    tracemalloc.start()
    fn()
    figures[f"{name}_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=40)
    parser.add_argument("--readers", type=int, default=252)
    parser.add_argument("--fixtures", type=int, default=5)
    args = parser.parse_args(argv)
    fixtures = [name for name, f in catalog().items() if not f.spec.get("needs")][: args.fixtures]
    tmp = Path(tempfile.mkdtemp(prefix="zipstore-scale-"))
    path = tmp / "synthetic.yaml"
    path.write_text(matrix_text(args.writers, args.readers, fixtures))
    matrix = load_matrix(path, catalog())
    figures: dict[str, float] = {}

    def plan_all() -> Any:
        plan = make_plan(matrix)
        return plan, synthetic(plan, "night-1")

    plan, night1 = measure("plan", plan_all, figures)
    measure("split", lambda: make_plan(matrix, (), shard=__import__("runner").results.model.Shard(1, 4)), figures)
    print(f"cells={len(night1.cells)} archives={len(night1.archives)} environments={len(night1.environments)}")

    db_path = tmp / "history.sqlite"
    with history.opened(db_path) as db:
        history.append(db, night1)
        history.record_measured(db, night1, 0)
    night_no, store = history.measured(db_path)
    night2 = synthetic(plan, "night-2", shift=1)  # every status moved by one: many changes

    def lookup() -> int:
        reuse = Reuse(store=store, night=night_no, every=7)
        taken = 0
        for cell in night2.cells:
            found = reuse.take(cell.key)
            if found is not None:
                found.record()
                taken += 1
        return taken

    taken = measure("reuse_lookup", lookup, figures)
    print(f"reused={taken} due={len(night2.cells) - taken}")

    half = len(night2.cells) // 2

    def shards() -> list[tuple[str, Results]]:
        out = []
        for k, part in enumerate((night2.cells[:half], night2.cells[half:]), 1):
            r = copy.copy(night2)
            r.run = replace(night2.run, shard=f"{k}/2", id=f"night-2-s{k}")
            r.cells = part
            r.archives = night2.archives if k == 1 else []
            out.append((f"shard-{k}.json", r))
        return out

    parts = shards()
    merged = measure("merge", lambda: merge.merge(parts), figures)

    def write_history() -> None:
        target = tmp / f"h-{time.perf_counter_ns()}.sqlite"
        with history.opened(target) as db:
            history.append(db, night1)
            history.append(db, merged)
            history.record_measured(db, merged, 1)

    measure("history_write", write_history, figures)

    def what_changed() -> Any:
        with history.opened(db_path) as db:
            past = history.previous(db, merged.run.id)
            assert past is not None
            return changes.compare(merged, past)

    found = measure("changes", what_changed, figures)
    print(f"changes_cells={len(found.cells)}")
    merged.changes = found
    timed: dict[str, list[float]] = {"results_write": [], "indented_write": []}
    for _ in range(3):
        for name, write in (("results_write", merged.to_json), ("indented_write", lambda: indented(merged))):
            started = time.perf_counter()
            text = write()
            timed[name].append(time.perf_counter() - started)
            figures[f"{name}_mb"] = len(text.encode()) / 1e6
    for name, times in timed.items():
        figures[f"{name}_s"] = statistics.median(times)
        print(f"{name}_runs_s={','.join(f'{t:.2f}' for t in times)}")
    figures["results_write_speedup"] = figures["indented_write_s"] / figures["results_write_s"]
    files = measure("render", lambda: render.site_files(merged), figures)
    sizes = {name: len(content if isinstance(content, bytes) else content.encode()) for name, content in files}
    for key, value in figures.items():
        print(f"{key}={value:.2f}")
    print(f"first_view_kb={sizes['index.html'] / 1e3:.0f}")
    print(f"largest_fixture_page_mb={max(v for k, v in sizes.items() if k.startswith('fixture-')) / 1e6:.1f}")
    print(f"site_mb={sum(sizes.values()) / 1e6:.1f} files={len(sizes)}")
    print(f"history_mb={db_path.stat().st_size / 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
