"""Pure: what changed since the previous run in the history. Cells whose status changed (regressions:
pass to anything else; fixes: anything to pass), cells that appeared or disappeared, environments whose
resolved versions changed, and read-time or benchmark steps that lie outside the previous run's interval
(asv's rule: the intervals of the two medians do not overlap; a bare ratio is not enough on a noisy
machine)."""

from __future__ import annotations

from collections.abc import Mapping

from runner.results import stats
from runner.results.history import PastRun
from runner.results.model import CellChange, Changes, Kind, Measure, Results, Status, Step, VersionChange
from runner.results.stats import Interval

#: A cell's read time is taken a few times, two probes at once, in milliseconds: between two nights of the same
#: matrix on a 2-core machine 67 cells' intervals did not overlap (up to 4.5x, but never by 50 ms or more). A
#: step must also be this large and this far apart to be named.
READ_STEP_FACTOR = 1.5
READ_STEP_FLOOR_S = 0.05
#: Benchmark steps are judged on the ratios to the raw file of the same round: absolute times follow the
#: machine (10-28 % apart on the same two nights), the paired ratios did not move.
BENCH_MEASURES: tuple[Measure, ...] = ("write_ratio", "read_ratio")


def _kind(before: Status, after: Status) -> Kind:
    if before is Status.PASS:
        return Kind.REGRESSION
    return Kind.FIX if after is Status.PASS else Kind.CHANGED


def _interval(samples: list[float]) -> Interval | None:
    return stats.summarize(samples).interval if len(samples) >= 2 else None


def read_step(before: Interval, after: Interval) -> bool:
    """A read-time step: intervals apart, and beyond what two nights of the same matrix differ by."""
    low, high = sorted((before.median, after.median))
    return before.apart(after) and high - low >= READ_STEP_FLOOR_S and high >= READ_STEP_FACTOR * low


def compare(results: Results, past: PastRun) -> Changes:
    changes = Changes(since=past.id, since_started=past.started)
    now = {c.id: c for c in results.cells}
    for cell_id in sorted(set(now) | set(past.cells)):
        cell, old = now.get(cell_id), past.cells.get(cell_id)
        if cell is None:
            assert old is not None
            blank = {"fixture": "", "writer": "", "reader": ""}
            changes.cells.append(CellChange(id=cell_id, kind=Kind.DISAPPEARED, before=old.status, after=None, **blank))
            continue
        where = {"fixture": cell.fixture, "writer": f"{cell.writer.env} · {cell.writer.probe}",
                 "reader": f"{cell.reader.env} · {cell.reader.probe}"}  # fmt: skip
        if old is None:
            changes.cells.append(CellChange(id=cell_id, kind=Kind.APPEARED, before=None, after=cell.status, **where))
            continue
        if old.status is not cell.status:
            kind = _kind(old.status, cell.status)
            changes.cells.append(
                CellChange(id=cell_id, kind=kind, before=old.status, after=cell.status, reason=cell.reason, **where)
            )
        elif cell.status is Status.PASS:
            before, after = _interval(old.read_samples), _interval(cell.timings.get("read_samples", []))
            if before and after and read_step(before, after):
                changes.steps.append(Step(what=cell_id, before=before, after=after))
    for env in results.environments:
        old_libraries = past.environments.get(env.slug)
        if old_libraries is None:
            continue
        for library in sorted(set(env.libraries) | set(old_libraries)):
            a, b = old_libraries.get(library), env.libraries.get(library)
            if a != b:
                changes.versions.append(VersionChange(env=env.slug, library=library, before=a, after=b))
    for bench in results.benchmarks:
        for timing in bench.stores:
            for measure in BENCH_MEASURES:
                summary = timing.summary(measure)
                old_summary = past.benchmarks.get((bench.env, bench.dataset, timing.store, measure))
                if not summary or old_summary is None:
                    continue
                after = summary.interval
                if old_summary.apart(after):
                    what = f"benchmark: {bench.env} · {bench.dataset} · {timing.store} · {measure}"
                    changes.steps.append(Step(what=what, before=old_summary, after=after))
    return changes


def flaky(results: Results, earlier: Mapping[str, tuple[Status, str, str]]) -> list[CellChange]:
    """Cells measured again with an unchanged key (the rotation, or --fresh) whose status is not the one
    that key had: nothing that decides them changed, so the difference is the cell's own (a race, a
    resource limit, a clock): reported, never a silent overwrite."""
    out = []
    for cell in results.cells:
        found = earlier.get(cell.id)
        if found is None or found[0] is cell.status:
            continue
        before, run, started = found
        out.append(
            CellChange(
                id=cell.id,
                kind=Kind.FLAKY,
                fixture=cell.fixture,
                writer=f"{cell.writer.env} · {cell.writer.probe}",
                reader=f"{cell.reader.env} · {cell.reader.probe}",
                before=before,
                after=cell.status,
                reason=f"{before} in run {run} ({started}), {cell.status} now: {cell.reason}"[:2000],
            )
        )
    return out
