"""Known upstream issues: the reviewed data file, which cells an entry explains, and when it stops explaining."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.known import issues as known
from runner.report.view import Pair
from runner.results.history import PastCell
from runner.results.model import CellResult, KnownIssue, Results, Side, Status, cell_from_dict, migrate

GDAL_ZSTD = "GDAL 3.13.3 /vsizip/: A file in the ZIP archive uses a unsupported compression method (93)"


def cell(library: str = "gdal", version: str = "3.13.3", reason: str = GDAL_ZSTD, **over: object) -> CellResult:
    fields: dict[str, object] = dict(
        id="w.zipfile-zstd--r.gdal-multidim--int32-random",
        writer=Side(env="w", probe="zipfile-zstd", library="python3", version="3.14.8"),
        reader=Side(env="r", probe="gdal-multidim", library=library, version=version),
        fixture="int32-random",
        status=Status.UNSUPPORTED,
        reason=reason,
    )
    return CellResult(**{**fields, **over})  # type: ignore[arg-type]


def entries(tmp_path: Path, text: str) -> tuple[known.Entry, ...]:
    path = tmp_path / "k.yaml"
    path.write_text(text)
    return known.load(path)


ENTRY = """\
- library: [gdal]
  versions: "<3.14"
  reason: 'unsupported compression method \\(93\\)'
  url: https://github.com/OSGeo/gdal/issues/15053
  title: Support Within a Zstd-Compressed Zip
  state: open
"""


def test_the_shipped_file_loads_and_every_entry_cites_an_issue_or_pull_request() -> None:
    loaded = known.load()
    assert len(loaded) >= 5
    assert all(e.issue.url.startswith("https://github.com/") and e.issue.title for e in loaded)
    assert known.explain(loaded, [cell()]) == 1


def test_an_entry_explains_the_cells_of_its_library_versions_words_and_writer(tmp_path: Path) -> None:
    (entry,) = entries(tmp_path, ENTRY)
    assert entry.explains(cell())
    assert not entry.explains(cell(status=Status.PASS))  # a pass needs no explaining
    assert not entry.explains(cell(version="3.14.0"))  # outside the versions
    assert not entry.explains(cell(library="zarr"))
    assert not entry.explains(cell(reason="unsupported compression method (12)"))
    (narrow,) = entries(tmp_path, ENTRY + "  writer: 7z-*\n")
    assert not narrow.explains(cell()) and narrow.explains(
        cell(writer=Side(env="w", probe="7z-lzma", library="7zip", version="26"))
    )
    cells = [cell(), cell(status=Status.PASS)]
    assert known.explain([entry], cells) == 1
    assert cells[0].known is not None and cells[0].known.url.endswith("/15053") and cells[1].known is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("'unsupported compression method \\(93\\)'", "'('"), "entry 1: reason '(' is not a regular expression"),
        (("state: open", "state: fixed"), "entry 1: state must be one of open, closed, merged"),
        (("https://github.com/OSGeo/gdal/issues/15053", "http://example.org/x"), "entry 1: url must be a GitHub"),
        (('versions: "<3.14"', 'versions: "around 3"'), "entry 1: versions 'around 3' is not a PEP 440 specifier"),
        (("  state: open\n", "  state: open\n  severity: high\n"), "entry 1: unknown field(s) ['severity']"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        entries(tmp_path, ENTRY.replace(*change))


def test_a_cell_an_issue_explained_the_night_before_and_not_now_is_reported(tmp_path: Path) -> None:
    loaded = entries(tmp_path, ENTRY.replace('"<3.14"', '""'))
    before = {cell().id: PastCell(status=Status.UNSUPPORTED, reason=GDAL_ZSTD, reader_version="3.13.3",
                                  writer_version="3.14.8", read_samples=[])}  # fmt: skip
    now = [cell(version="3.14.0", status=Status.PASS, reason="")]
    known.explain(loaded, now)
    (line,) = known.no_longer(loaded, now, before)
    assert "OSGeo/gdal/issues/15053" in line and "at gdal 3.13.3; at 3.14.0 the cell passes (fixed upstream?)" in line
    still = [cell()]
    known.explain(loaded, still)
    assert known.no_longer(loaded, still, before) == []


def test_the_summary_says_which_known_issues_explain_a_pair_and_results_keep_the_link(tmp_path: Path) -> None:
    linked = cell()
    known.explain(known.load(), [linked])
    pair = Pair(writer="python3 3.14.8", reader="gdal 3.13.3", counts={Status.UNSUPPORTED: 1}, cells=[linked])
    assert "known upstream: 1 cell(s): Support Within a Zstd-Compressed Zip (open: https://github.com" in pair.label
    data = {"schema_version": 6, "cells": [{"id": "x"}]}
    assert migrate(data)["cells"] == [{"id": "x", "known": None}]
    assert cell_from_dict(json.loads(json.dumps(asdict(linked)))).known == linked.known  # results.json keeps it


def test_the_page_links_the_issue_in_the_cells_reason_and_title() -> None:
    from runner.report import render
    from tests.report.test_report import GOLDEN

    results = Results.read(GOLDEN / "results.json")
    target = next(c for c in results.cells if c.status is Status.MISMATCH)
    target.known = KnownIssue(url="https://github.com/o/r/issues/1", title="A title", state="open", note="a note")
    page = render.render_html(results, f"fixture-{target.fixture}.html")
    assert 'known upstream: <a href="https://github.com/o/r/issues/1">A title</a> (open; a note)' in page
    assert "(known upstream: A title, open)" in page  # the grid cell's title text
