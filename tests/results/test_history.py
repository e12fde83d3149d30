"""Two runs into the same output folder, a version changed between them: the history remembers, the
page and results.json name exactly that change and its cells, and --fail-on regression says so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.errors import ExitCode, HistoryError
from runner.results import history
from runner.results.model import Results, Status
from tests.support.fake_engine import OK_RUN, FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX, good
from tests.support.site import site_html


def night(tmp_path: Path, zarr: str, behaviour: Any = good, *extra: str) -> int:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    info = {"python": "3.11.2", "distributions": {"zarr": zarr}, "modules": {}}
    engine = FakeEngine(images={BASE}, handler=HostHarness(behaviour, env_info=info))
    return cli.main([str(matrix), "--out", str(tmp_path / "site"), *extra], engine=engine)


def fsspec_breaks(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if task["args"]["role"] == "reader" and task["args"]["method"] == "fsspec":
        return OK_RUN, {"status": "error", "error_type": "ValueError", "message": "zip:: is broken in 9.9.10"}
    return good(task)


def test_the_second_night_names_exactly_what_changed(tmp_path: Path) -> None:
    assert night(tmp_path, "9.9.9") == 0
    first = Results.read(tmp_path / "site" / "results.json")
    assert first.changes is None, "nothing to compare the first run with"
    assert night(tmp_path, "9.9.10", fsspec_breaks, "--fail-on", "regression") == ExitCode.REGRESSION
    second = Results.read(tmp_path / "site" / "results.json")
    changes = second.changes
    assert changes is not None and changes.since == first.run.id
    assert {(v.env, v.library, v.before, v.after) for v in changes.versions} == {
        (e.slug, "zarr", "9.9.9", "9.9.10") for e in second.environments
    }
    fsspec = {c.id for c in second.cells if c.reader.probe == "zarr-fsspec"}
    assert {c.id for c in changes.regressions} == fsspec and len(fsspec) == 6
    assert {(c.before, c.after) for c in changes.regressions} == {(Status.PASS, Status.FAIL)}
    assert [c for c in changes.cells if c.id not in fsspec] == []
    html = site_html(tmp_path / "site")
    assert f"Changed since <code>{first.run.id}</code>" in html
    assert html.count('<span class="regression">regression</span>') == 6
    assert "zarr 9.9.9 → <strong>9.9.10</strong>" in html
    md = (tmp_path / "site" / "matrix.md").read_text()
    assert f"**Changed since `{first.run.id}`**" in md and "6 regression(s)" in md
    raw = json.loads((tmp_path / "site" / "results.json").read_text())
    assert sorted(c["kind"] for c in raw["changes"]["cells"]) == ["regression"] * 6  # strings only in the file


def test_without_the_flag_a_regression_is_a_finding_not_a_failure(tmp_path: Path) -> None:
    assert night(tmp_path, "9.9.9") == 0
    assert night(tmp_path, "9.9.9", fsspec_breaks) == 0


def test_a_night_like_the_last_says_nothing_changed(tmp_path: Path) -> None:
    assert night(tmp_path, "9.9.9") == 0
    assert night(tmp_path, "9.9.9", good, "--fail-on", "regression") == 0
    assert "<strong>Nothing changed</strong>" in site_html(tmp_path / "site")
    assert "): nothing." in (tmp_path / "site" / "matrix.md").read_text()


def test_the_history_keeps_every_night_and_the_page_shows_trends(tmp_path: Path) -> None:
    for zarr, behaviour in (("1", good), ("2", fsspec_breaks), ("3", fsspec_breaks)):
        assert night(tmp_path, zarr, behaviour) == 0
    with sqlite3.connect(tmp_path / "site" / "history.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
        assert len(history.trends(db)) == 12 and db.execute("SELECT count(*) FROM run_cells").fetchone()[0] == 3
    html = site_html(tmp_path / "site")
    assert html.count('<span class="strip"') == 6, "each fsspec cell (a note) shows its last three runs"
    assert '<span class="pass" title="pass"></span><span class="fail" title="fail"></span>' in html


def test_the_history_keeps_the_cells_of_the_last_runs_only_and_one_record_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's cells are one compressed record; the cells of runs older than KEEP_CELLS are dropped (the
    trends show no more, and what changed is asked of the run before), the runs themselves kept."""
    monkeypatch.setattr(history, "KEEP_CELLS", 2)
    for zarr in ("1", "2", "3", "4"):
        assert night(tmp_path, zarr) == 0
    with history.opened(tmp_path / "site" / "history.sqlite") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM run_cells").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 0
        trend = next(iter(history.trends(db).values()))
        assert len(trend.statuses) == 2
        last = Results.read(tmp_path / "site" / "results.json")
        before = history.previous(db, last.run.id)
        assert before is not None and len(before.cells) == len(last.cells) == 12


def test_a_history_of_the_schema_before_is_read_and_a_broken_record_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs recorded with a row per cell (schema 4) stay readable after the migration; a run's record that
    does not inflate to cells (the history comes back from a published page) is left out with a warning."""
    path = tmp_path / "h.sqlite"
    with sqlite3.connect(path) as db:
        for version in range(1, 5):
            for statement in history.MIGRATIONS[version]:
                db.execute(statement)
        db.execute("PRAGMA user_version = 4")
        db.execute("INSERT INTO runs VALUES ('r1', '2026-11-01', '2026-11-01', 'm', 'v')")
        db.execute("INSERT INTO cells VALUES ('r1', 'c1', 'f', 'w', 'r', '1', '2', 'pass', '', 0.5, '[0.5]')")
    with history.opened(path) as db:
        db.execute("INSERT INTO runs VALUES ('r2', '2026-11-02', '2026-11-02', 'm', 'v')")
        db.execute("INSERT INTO run_cells VALUES ('r2', ?)", (b"not zlib",))
        old = history.previous(db, "r3")
        assert old is not None and old.id == "r2" and old.cells == {}
        assert "the cells of run r2 are not readable" in caplog.text
        assert history.trends(db)["c1"].statuses == [Status.PASS]
        first = history.previous(db, "r2")
        assert first is not None and first.cells["c1"].read_samples == [0.5]


def test_a_history_newer_than_the_runner_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {history.SCHEMA + 1}")
    with pytest.raises(HistoryError, match="newer"), history.opened(path):
        pass


def test_a_step_is_named_only_beyond_the_noise_of_two_identical_nights() -> None:
    from runner.results.changes import read_step
    from runner.results.stats import Interval

    assert not read_step(Interval(0.010, 0.009, 0.011), Interval(0.030, 0.029, 0.031)), "3x, but 20 ms: noise here"
    assert not read_step(Interval(0.200, 0.190, 0.210), Interval(0.260, 0.255, 0.265)), "60 ms, but 1.3x"
    assert not read_step(Interval(0.200, 0.100, 0.400), Interval(0.400, 0.350, 0.450)), "2x, but the intervals overlap"
    assert read_step(Interval(0.200, 0.190, 0.210), Interval(0.400, 0.390, 0.420))
    assert read_step(Interval(0.400, 0.390, 0.420), Interval(0.200, 0.190, 0.210)), "a speed-up is a step too"


def test_benchmark_steps_are_judged_on_ratios_to_raw_not_on_absolute_times() -> None:
    from runner.results.changes import compare
    from runner.results.history import PastRun
    from runner.results.model import BenchmarkResult, RunInfo, StoreTiming
    from runner.results.stats import Interval, Summary

    def summary(median: float) -> Summary:
        low, high = median * 0.98, median * 1.02
        return Summary(n=7, median=median, q1=low, q3=high, low=low, high=high, coverage=0.98, noisy=False)

    timing = StoreTiming(store="zipstore", status=Status.PASS, write=summary(2.0), write_ratio=summary(3.0))
    bench = BenchmarkResult(id="b", env="e", dataset="d", status=Status.PASS, stores=[timing])
    run = RunInfo(id="r2", started="", finished="x", engine={}, runner_version="", matrix_sha256="", matrix_path="",
                  settings={})  # fmt: skip
    results = Results(run=run, environments=[], archives=[], cells=[], benchmarks=[bench])
    moved_machine = {
        ("e", "d", "zipstore", "write"): Interval(1.0, 0.98, 1.02),
        ("e", "d", "zipstore", "write_ratio"): Interval(3.0, 2.9, 3.1),
    }
    past = PastRun(id="r1", started="", environments={}, cells={}, benchmarks=moved_machine)
    assert compare(results, past).steps == [], "the whole machine was twice as slow: not a step"
    moved_store = {**moved_machine, ("e", "d", "zipstore", "write_ratio"): Interval(1.5, 1.45, 1.55)}
    steps = compare(results, PastRun(id="r1", started="", environments={}, cells={}, benchmarks=moved_store)).steps
    assert [s.what for s in steps] == ["benchmark: e · d · zipstore · write_ratio"]
