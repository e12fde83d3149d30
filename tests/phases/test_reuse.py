"""Nights that cost what changed (the fake engine): a cell whose key the history has measured is reused,
but for the rotating share due tonight; a changed image re-measures exactly the cells it decides;
--fresh measures everything; an unchanged key with another status is flaky, not a regression."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.known import issues as known
from runner.plan import keys
from runner.results import history
from runner.results.model import Results, Status
from tests.support.fake_engine import OK_RUN, FakeEngine, HostHarness
from tests.support.matrices import BASE, good

MATRIX = """\
version: 1
fixtures: [int32-random, sharded]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}"]
    probes: ["zarr-v?", "zarr-zipstore", "zarr-fsspec"]
    matrix: {zarr: ["2.18.7", "%s"]}
"""


def night(tmp_path: Path, newer: str = "3.1.6", behaviour: Any = good, *extra: str) -> Results:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % newer)
    engine = FakeEngine(images={BASE}, handler=HostHarness(behaviour))
    assert cli.main([str(matrix), "--out", str(tmp_path / "site"), "--no-benchmark", *extra], engine=engine) == 0
    return Results.read(tmp_path / "site" / "results.json")


def due_tonight(tmp_path: Path, every: int = 7) -> Callable[[Results], set[str]]:
    return due_keys(tmp_path / "site", every)


def due_keys(site: Path, every: int = 7) -> Callable[[Results], set[str]]:
    """Before a night, the history's account; given that night's results, the keys of the cells the rotation
    was to measure again: those measured before whose archive's slot is tonight's (the slots spread tonight's
    archive keys, ``keys.ring_slots``), or that waited ``every`` nights."""
    night_no, store = history.measured(site / "history.sqlite")
    nights = {k: m.night for k, m in store.items()}

    def due(tonight: Results) -> set[str]:
        slots = keys.ring_slots([a.key for a in tonight.archives if a.key], every)
        archive = {(a.env, a.probe, a.fixture): a.key for a in tonight.archives}
        out = set()
        for cell in tonight.cells:
            slot = archive.get((cell.writer.env, cell.writer.probe, cell.fixture), "")
            if cell.key in nights and slot and keys.due(slots[slot], nights[cell.key], night_no, every):
                out.add(cell.key)
        return out

    return due


def test_a_night_like_the_last_reuses_every_cell_but_those_due(tmp_path: Path) -> None:
    first = night(tmp_path)
    measured = [c for c in first.cells if c.key]
    assert measured and all(c.reused is None for c in first.cells)
    assert all(a.key for a in first.archives if a.status != Status.SKIPPED)
    due = due_tonight(tmp_path)
    second = night(tmp_path)
    reused = {c.id for c in second.cells if c.reused is not None}
    assert reused == {c.id for c in measured if c.key not in due(second)}
    assert all(c.reused.run == first.run.id for c in second.cells if c.reused)
    assert {c.id: c.status for c in second.cells} == {c.id: c.status for c in first.cells}
    assert {c.id: c.key for c in second.cells} == {c.id: c.key for c in first.cells}, "the keys repeat"
    page = (tmp_path / "site" / "fixture-int32-random.html").read_text()
    assert f"reused: measured in run {first.run.id}" in page


def test_every_cell_is_measured_again_within_every_nights(tmp_path: Path) -> None:
    first = night(tmp_path, "3.1.6", good, "--remeasure-every", "3")
    keyed = {c.id for c in first.cells if c.key}
    measured: set[str] = set()
    reused = 0
    for _ in range(3):
        due = due_tonight(tmp_path, 3)
        tonight = night(tmp_path, "3.1.6", good, "--remeasure-every", "3")
        again = {c.key for c in tonight.cells if c.key and c.reused is None}
        assert again == due(tonight), "each night measures exactly the share due (which: the archives' slots)"
        measured |= {c.id for c in tonight.cells if c.key and c.reused is None}
        reused += len([c for c in tonight.cells if c.reused])
    assert measured == keyed and reused > 0


def test_a_changed_image_remeasures_exactly_the_cells_it_decides(tmp_path: Path) -> None:
    first = night(tmp_path, "3.1.6")
    due = due_tonight(tmp_path)
    second = night(tmp_path, "3.1.7")  # one environment's version changed: its image, its row and column
    changed = {e.slug for e in second.environments if e.slug.startswith("zarr-3.1.7")}
    assert len(changed) == 1
    measured = {c.id for c in second.cells if c.key and c.reused is None}
    touching = {c.id for c in second.cells if c.key and (c.writer.env in changed or c.reader.env in changed)}
    old_keys = {c.id: c.key for c in first.cells}
    assert touching <= measured
    assert measured - touching == {c.id for c in second.cells if c.key and old_keys.get(c.id) in due(second)}
    written = {(a.env, a.probe, a.fixture) for a in second.archives if a.key and a.reused is None}
    read = {(c.writer.env, c.writer.probe, c.fixture) for c in second.cells if c.key and c.reused is None}
    assert written == read, "an archive is written when, and only when, a cell of it is measured"


def test_fresh_measures_everything_and_an_unchanged_key_with_another_status_is_flaky(tmp_path: Path) -> None:
    night(tmp_path)

    def fsspec_flakes(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if task["args"]["role"] == "reader" and task["args"]["method"] == "fsspec":
            return OK_RUN, {"status": "error", "error_type": "OSError", "message": "Too many open files"}
        return good(task)

    second = night(tmp_path, "3.1.6", fsspec_flakes, "--fresh")
    assert all(c.reused is None for c in second.cells)
    assert second.changes is not None
    flaky = {c.id for c in second.changes.flaky}
    fsspec = {c.id for c in second.cells if c.reader.probe == "zarr-fsspec" and c.status is Status.FAIL}
    assert flaky == fsspec and flaky
    assert second.changes.regressions == [], "nothing that decides them changed: flaky, not regressed"
    html = (tmp_path / "site" / "index.html").read_text()
    assert html.count('<span class="flaky">flaky</span>') == len(flaky)
    assert "flaky cell(s)" in (tmp_path / "site" / "feed.xml").read_text()


def test_a_flaky_cell_is_no_sign_that_a_known_issue_was_fixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zarr 3.0.6 on an entry zipfile cannot inflate says one thing or another for the same archive (its
    metadata reads race): a known issue that matched one night's words and not the next's is not fixed."""
    entries = tmp_path / "known.yaml"
    entries.write_text(
        "- library: [zarr]\n  versions: ''\n  reason: 'NotImplementedError: That compression method'\n"
        "  url: https://github.com/zarr-developers/zarr-python/issues/1\n  title: an issue\n  state: open\n"
        "  checked: 2026-12-05\n"
    )
    load = known.load
    monkeypatch.setattr(known, "load", lambda path=entries: load(path))

    def fsspec_fails(record: dict[str, Any]) -> Any:
        def behaviour(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
            if task["args"]["role"] == "reader" and task["args"]["method"] == "fsspec":
                return OK_RUN, record
            return good(task)

        return behaviour

    inflate = "Python 3.13.5's zipfile: NotImplementedError: That compression method is not supported"
    first = night(tmp_path, "3.1.6", fsspec_fails({"status": "unsupported", "message": inflate}))
    explained = {c.id for c in first.cells if c.known is not None}
    assert explained
    missing = {"status": "error", "error_type": "KeyError", "message": "There is no item named 'data/.zarray'"}
    second = night(tmp_path, "3.1.6", fsspec_fails(missing), "--fresh")
    assert second.changes is not None
    assert explained <= {c.id for c in second.changes.flaky}
    assert second.changes.known_fixed == [], "flaky, so not fixed upstream"


def test_remeasure_every_must_be_positive(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % "3.1.6")
    engine = FakeEngine(images={BASE}, handler=HostHarness(good))
    assert cli.main([str(matrix), "--out", str(tmp_path / "s"), "--remeasure-every", "0"], engine=engine) == 2


@pytest.mark.parametrize("every", [1, 7])
def test_the_ring_spreads_the_archives_evenly_over_the_nights(every: int) -> None:
    import hashlib

    ks = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(258)]
    slots = keys.ring_slots(ks, every)
    for night_no in range(1, 8):
        tonight = sum(keys.due(slots[k], night_no - 1, night_no, every) for k in ks)
        assert tonight == len(ks) if every == 1 else tonight in (36, 37), "258 archives: 36 or 37 a night"
    assert all(keys.due(slots[k], 0, every, every) for k in ks), "none waits longer than every nights"
    assert keys.ring_slots(reversed(ks), every) == slots, "the order they come in does not matter"


def test_a_key_that_comes_or_goes_moves_few_others() -> None:
    """A release replaces a few archive keys; the others keep their slots but for a few next to a cut, so a
    release night does not set the whole rotation going again."""
    import hashlib

    ks = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(258)]
    before = keys.ring_slots(ks, 7)
    after = keys.ring_slots(ks[7:] + [hashlib.sha256(f"new {n}".encode()).hexdigest() for n in range(7)], 7)
    moved = [k for k in ks[7:] if after[k] != before[k]]
    assert len(moved) <= 6 * 7, "at most 7 places next to each of the 6 cuts"
    assert all(abs(after[k] - before[k]) == 1 for k in moved), "into a neighbouring slot"


def test_an_archive_from_outside_is_checked_once_while_its_bytes_stay(tmp_path: Path) -> None:
    import zipfile

    corpus = tmp_path / "corpus" / "zarr"
    corpus.mkdir(parents=True)
    with zipfile.ZipFile(corpus / "someone__example.zip", "w") as zf:
        zf.writestr(".zgroup", '{"zarr_format": 2}')
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % "3.1.6")
    checked = []
    for _ in range(2):
        harness = HostHarness(good)
        engine = FakeEngine(images={BASE}, handler=harness)
        args = [str(matrix), "--out", str(tmp_path / "site"), "--no-benchmark", "--external", str(corpus.parent),
                "--remeasure-every", "1000"]  # fmt: skip
        assert cli.main(args, engine=engine) == 0
        checked.append([t["args"]["archive"] for t in harness.tasks if t["args"]["role"] == "checker"])
        results = Results.read(tmp_path / "site" / "results.json")
    outside = next(a for a in results.archives if a.env == "external")
    assert any(a.endswith("someone__example.zip") for a in checked[0])
    slots = keys.ring_slots([a.key for a in results.archives if a.key], 1000)
    assert (outside.reused is None) == keys.due(slots[outside.key], 0, 1, 1000)  # due tonight: slot 1 of 1000
    if outside.reused is not None:  # its record (and its ZIP checks) reused: not checked again
        assert not any(a.endswith("someone__example.zip") for a in checked[1])
        assert outside.zip_checks is not None and outside.path and outside.path.startswith("external/0/")


def test_a_history_record_that_is_not_one_is_measured_again(tmp_path: Path) -> None:
    """The history comes back from a published page: a garbled or bomb-sized record is not reused."""
    import sqlite3
    import zlib

    first = night(tmp_path)
    victims = [c for c in first.cells if c.key][:2]
    with sqlite3.connect(tmp_path / "site" / "history.sqlite") as db:
        db.execute("UPDATE measured SET record = ? WHERE key = ?", (b"not zlib", victims[0].key))
        bomb = zlib.compress(b"[" * (history.RECORD_CAP + 10), 9)
        db.execute("UPDATE measured SET record = ? WHERE key = ?", (bomb, victims[1].key))
    second = night(tmp_path)
    again = {c.id: c for c in second.cells}
    assert all(again[v.id].reused is None and again[v.id].status is v.status for v in victims)


def test_a_night_with_nothing_due_starts_no_container_and_writes_results_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reuse itself costs: with every result reused, no container runs (not even an empty writer's),
    an archive whose manifest inflates past a cell's cap (65,536 entries: 5.5 MB) is reused too, and
    results.json is written once, with the finished run, not at every phase's end."""
    import sqlite3
    import zlib

    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % "3.1.6")
    site = tmp_path / "site"
    args = [str(matrix), "--out", str(site), "--no-benchmark", "--remeasure-every", "1000000"]
    engine = FakeEngine(images={BASE}, handler=HostHarness(good))
    assert cli.main(args, engine=engine) == 0
    first = Results.read(site / "results.json")
    big = next(a for a in first.archives if a.key)
    with sqlite3.connect(site / "history.sqlite") as db:
        (blob,) = db.execute("SELECT record FROM measured WHERE key = ?", (big.key,)).fetchone()
        record = json.loads(zlib.decompress(blob))
        record["manifest"] = {f"many/c/{i // 256}/{i % 256}": "0" * 64 for i in range(65536)}
        assert len(json.dumps(record)) > history.RECORD_CAP
        db.execute(
            "UPDATE measured SET record = ? WHERE key = ?", (zlib.compress(json.dumps(record).encode()), big.key)
        )
    writes: list[str] = []
    original = Results.write

    def counted(self: Results, path: Path, *rest: Any, **kw: Any) -> None:
        writes.append(self.run.finished)
        original(self, path, *rest, **kw)

    monkeypatch.setattr(Results, "write", counted)
    runs = len(engine.runs)
    assert cli.main(args, engine=engine) == 0
    second = Results.read(site / "results.json")
    assert len(engine.runs) == runs, "no container ran"
    assert all(a.reused is not None for a in second.archives if a.key)
    assert len(next(a for a in second.archives if a.id == big.id).manifest) == 65536
    assert all(c.reused is not None for c in second.cells if c.key)
    assert len(writes) == 1 and writes[0], "one write, of the finished run"
