"""Every reader of the default matrix against every archive of shared/external-zips (59 real archives,
broken zips among them) and the generated hostile corpus (23): the run ends with exit 0, every archive
× reader has a cell with a status, the runner's own memory stays under 1 GB, and the page says how each
reader met the hostile archives. Writers write one fixture only: the readers are what is tested here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.plan.planner import make_plan, reader_modes
from runner.results.model import WRITTEN, CellResult, Results, Status
from tests.support.paths import require_external_zips
from tests.support.real import ROOT
from tests.support.site import site_html

pytestmark = pytest.mark.integration
PEAK_LIMIT_KB = 1 << 20  # 1 GB

#: Runs the CLI and writes the process's own peak RSS (KiB) to $PEAK_FILE, whatever the exit.
MEASURED = """\
import os, resource, runpy, sys
sys.argv = ["runner", *sys.argv[1:]]
try:
    runpy.run_module("runner", run_name="__main__")
finally:
    with open(os.environ["PEAK_FILE"], "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""
ONE_FIXTURE = "\nfixtures: [int32-random]\nsettings:"
FILES_ONLY = re.compile(r"\n  access: \[[^\]\n]*\]\n")


@pytest.fixture(scope="module")
def corpus_run(docker_engine: object, tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path, int]:
    shared = require_external_zips()
    tmp = tmp_path_factory.mktemp("corpus")
    matrix = tmp / "matrix.yaml"
    text = (ROOT / "matrix.yaml").read_text().replace("\nsettings:", ONE_FIXTURE, 1)
    # the corpus from local files only: its reads over HTTP are tests/integration/test_http_real.py's question
    text, found = FILES_ONLY.subn("\n  access: [file]\n", text)
    assert found == 1, "matrix.yaml's settings.access line was not found"
    matrix.write_text(text)
    out = tmp / "site"
    peak = tmp / "peak"
    args = [str(matrix), "--out", str(out), "--no-benchmark", "--hostile", "--external", str(shared)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        cwd=ROOT,
        env={**os.environ, "PEAK_FILE": str(peak)},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return Results.read(out / "results.json"), out, int(peak.read_text())


def test_every_archive_meets_every_reader(corpus_run: tuple[Results, Path, int]) -> None:
    results, _, _ = corpus_run
    plan = make_plan(load_matrix(ROOT / "matrix.yaml", catalog()))
    # every reader that reads a local file (the browser reads over HTTP only: it has no cell in a files-only run)
    readers = {(ep.slug, p.id) for ep in plan.environments for p, _ in reader_modes(ep, ("file",))}
    assert {c.access for c in results.cells} == {"file"}
    external = [a for a in results.archives if a.env == "external"]
    assert len(external) == 59 + 23
    unchecked = [a.probe for a in external if not (a.zip_checks and a.zip_checks.checked)]
    assert unchecked == []
    cells = {(c.writer.env, c.writer.probe, c.fixture, c.reader.env, c.reader.probe) for c in results.cells}
    assert len(cells) == len(results.cells) == len(results.archives) * len(readers)
    for a in results.archives:
        for env, probe in readers:
            assert (a.env, a.probe, a.fixture, env, probe) in cells
    assert not [c.reason for c in results.cells if c.reason.startswith("the container could not run")]


def test_the_runner_stays_small_whatever_the_archives(corpus_run: tuple[Results, Path, int]) -> None:
    _, _, peak_kb = corpus_run
    assert peak_kb < PEAK_LIMIT_KB, f"the runner peaked at {peak_kb / 1024:.0f} MB"


def test_the_hostile_corpus_is_met_and_shown(corpus_run: tuple[Results, Path, int]) -> None:
    results, out, _ = corpus_run
    hostile = [c for c in results.cells if c.fixture == "external-hostile"]
    passed = {(c.writer.probe, c.reader.probe) for c in hostile if c.status is Status.PASS}
    for not_a_zip in ("truncated", "zero-bytes", "not-a-zip"):
        assert not [r for a, r in passed if a == not_a_zip], not_a_zip
    # The raw key/bytes reader rightly reads an empty zip as no keys, and a .zarray as its bytes, JSON or not;
    # a reader of arrays has nothing to read in either.
    for no_array in ("empty-zip", "metadata-not-json"):
        assert not [r for a, r in passed if a == no_array and r != "fsspec-mapper"], no_array
    bad_crc = [c for c in hostile if c.writer.probe == "bad-crc" and c.status is Status.PASS]
    assert bad_crc == [], "a reader that returns data from an entry with a bad CRC does not pass"
    html = site_html(out)
    assert 'id="robustness"' in html
    written = [a for a in results.archives if a.env != "external"]
    assert written and all(a.status is WRITTEN or a.status is Status.SKIPPED or a.reason for a in written)


def test_repro_gives_a_fail_a_mismatch_and_a_crash_their_status_again(
    corpus_run: tuple[Results, Path, int], tmp_path: Path
) -> None:
    """python -m runner repro on three cells of this run (the default matrix, the hostile corpus): each is
    measured again on the real engine (its images reused) with the status the run gave it."""
    results, out, _ = corpus_run
    written = [c for c in results.cells if c.writer.env != "external"]
    picks = {
        Status.FAIL: next(c for c in written if c.status is Status.FAIL),
        Status.MISMATCH: next(c for c in written if c.status is Status.MISMATCH),
        Status.CRASH: next(
            c for c in results.cells if c.status is Status.CRASH and c.writer.probe == "attributes-100000-deep"
        ),  # netcdf-c dies (SIGSEGV) on 100,000-deep nested attributes, every time (the default run)
    }
    for status, cell in picks.items():
        done = subprocess.run(
            [sys.executable, "-m", "runner", "repro", cell.id, "--results", str(out / "results.json"),
             "--out", str(tmp_path / status.value), "--external", str(require_external_zips())],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (status, done.stdout[-3000:], done.stderr[-3000:])
        assert f"  now: {status}: " in done.stdout
        assert "--- reproducer (paste into an upstream issue) ---" in done.stdout
        assert "data.zip" in done.stdout.split("--- reproducer")[1]


def test_the_zips_people_make_by_hand_are_made_as_named_and_met_in_each_readers_words(
    corpus_run: tuple[Results, Path, int],
) -> None:
    """The hand-made writers of the default matrix (Info-ZIP, 7-Zip, Python's shutil and zipfile, Finder's
    layout) on int32-random, and what some readers make of them (measured: README.md#the-zips-people-make)."""
    results, _, _ = corpus_run
    made = {a.probe: a for a in results.archives if a.env == "handmade-zips-forky"}
    methods = {probe: set(a.zip_checks.compression) for probe, a in made.items() if a.zip_checks}
    assert methods == {
        "zip-r": {"deflate", "stored"},
        "zip-r0": {"stored"},
        "7z": {"deflate", "stored"},
        "7z-deflate64": {"deflate64", "stored"},
        "7z-bzip2": {"bzip2", "stored"},
        "7z-lzma": {"lzma", "stored"},
        "shutil-zip": {"deflate", "stored"},
        "zipfile-zstd": {"zstd"},
        "zipfile-deflated": {"deflate"},
        "finder-zip": {"deflate"},
    }
    assert {p for p, a in made.items() if a.expected.get("root") == "data.zarr"} == {"zip-r", "finder-zip"}

    def cell(writer: str, reader_env: str, reader: str) -> CellResult:
        return next(
            c
            for c in results.cells
            if (c.writer.env, c.writer.probe, c.reader.env, c.reader.probe)
            == ("handmade-zips-forky", writer, reader_env, reader)
        )

    zarr = "zarr-3.3.0-pip-py3.13"
    for writer in ("zip-r", "finder-zip"):  # given the folder, as a user would have to
        got = cell(writer, zarr, "zarr-zipstore")
        assert got.status is Status.PASS and any("data.zarr/" in n for n in got.notices), got.reason
    deflate64 = cell("7z-deflate64", zarr, "zarr-zipstore")
    assert deflate64.status is Status.UNSUPPORTED
    assert deflate64.reason == "Python 3.13.5's zipfile: NotImplementedError: That compression method is not supported"
    assert cell("zipfile-zstd", zarr, "zarr-zipstore").status is Status.UNSUPPORTED  # Python 3.13
    assert cell("zipfile-zstd", "debian-forky-apt", "xarray-zipstore").status is Status.PASS  # Python 3.14 reads it
    bzip2 = cell("7z-bzip2", "debian-forky-apt", "gdal-multidim")
    assert bzip2.status is Status.UNSUPPORTED and "unsupported compression method (12)" in bzip2.reason
    lzma = cell("7z-lzma", "zarrita-latest-npm-trixie", "zarrita-zip")
    assert lzma.status is Status.UNSUPPORTED and lzma.reason.endswith("unsupported compression method: 14")
