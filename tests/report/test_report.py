"""Rendered reports against golden files. Regenerate with ``pytest --update-golden`` and review the diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.matrix.fixtures import catalog
from runner.report import format, render
from runner.report import view as report
from runner.results.model import SCHEMA_VERSION, EnvStatus, Results, Status
from runner.results.probe_data import ZipChecks

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def results() -> Results:
    return Results.read(GOLDEN / "results.json")


def whole_site(results: Results) -> str:
    """Every HTML page of the site as one text (the first view, a page per fixture, the benchmark's)."""
    return "\n".join(render.render_pages(results).values())


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("index.html", render.render_html),
        ("fixture-int32-random.html", lambda r: render.render_html(r, "fixture-int32-random.html")),
        ("matrix.md", render.render_markdown),
        ("matrix-full.md", render.render_full_markdown),
    ],
)
def test_rendered_report_matches_golden(results: Results, name: str, render: object, update_golden: bool) -> None:
    text = render(results)  # type: ignore[operator]
    golden = GOLDEN / name
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{name} differs from golden; run pytest --update-golden"


def test_grids_put_writers_in_rows_and_readers_in_columns(results: Results) -> None:
    grids = report.grids(results)
    assert [g.fixture for g in grids] == [f for f in catalog() if f in {a.fixture for a in results.archives}]
    grid = grids[0]
    for row in grid.rows:
        for col, cell in zip(grid.columns, row.cells, strict=True):
            if cell is not None:
                assert (cell.reader.env, cell.reader.probe, cell.access) == col.key
                assert (cell.writer.env, cell.writer.probe) == (row.archive.env, row.archive.probe)


def test_every_noteworthy_cell_has_one_footnote_and_one_anchor(results: Results) -> None:
    notes = report.noteworthy(results)
    assert notes and all(c.status != "pass" or c.warnings for c in notes)
    html = whole_site(results)
    md = render.render_full_markdown(results)
    for n, cell in enumerate(notes, 1):
        assert html.count(f'id="cell-{cell.id}"') == 1
        assert md.count(f"[^{n}]:") == 1


def test_html_escapes_library_messages(results: Results) -> None:
    results.cells[0].status, results.cells[0].reason = Status.FAIL, "<script>alert(1)</script>"
    html = whole_site(results)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_markdown_pipes_in_reasons_do_not_break_tables(results: Results) -> None:
    results.cells[0].status, results.cells[0].reason = Status.FAIL, "a | b\nc"
    assert "a \\| b c" in render.render_full_markdown(results)


def test_results_round_trip_and_refuse_unknown_schema(results: Results, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    results.write(path)
    again = Results.read(path)
    assert again.to_json() == results.to_json()
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and next(iter(data)) == "schema_version"
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version 99"):
        Results.from_dict(data)


def test_results_json_has_one_line_per_record(results: Results, tmp_path: Path) -> None:
    """grep and diff find a cell: each archive and cell is one line, a JSON object of its own."""
    results.cells[1].reason = "two\nlines, and ünïcode"
    path = tmp_path / "r.json"
    results.write(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    for cell in results.cells:
        (line,) = [line for line in lines if f'"id": "{cell.id}"' in line and '"writer"' in line]
        assert json.loads(line.rstrip(","))["reason"] == cell.reason
    assert len(lines) >= len(results.cells) + len(results.archives) + len(results.environments)
    assert json.loads(path.read_text(encoding="utf-8"))["cells"][1]["reason"] == "two\nlines, and ünïcode"


@pytest.mark.parametrize(("value", "text"), [(2.5, "2.50 s"), (0.0123, "12.3 ms"), (0.0000042, "4.2 µs"), (None, "")])
def test_format_seconds(value: object, text: str) -> None:
    assert format.format_seconds(value) == text


def test_failed_reader_environment_is_one_note_not_a_column(results: Results) -> None:
    victim = results.environments[0]
    victim.status, victim.reason = EnvStatus.INSTALL_FAILED, "ERROR: ResolutionImpossible"
    for cell in results.cells:
        if cell.reader.env == victim.slug:
            cell.status, cell.reason = Status.INSTALL_FAILED, victim.reason
    grid = report.grids(results)[0]
    assert victim.slug not in {col.env for col in grid.columns}
    assert grid.failed_readers == [victim.slug]
    assert all(c.reader.env != victim.slug for c in report.noteworthy(results))
    assert "their images did not build" in render.render_full_markdown(results)


def test_column_groups_follow_column_order(results: Results) -> None:
    grid = report.grids(results)[0]
    spans = grid.column_groups
    assert sum(n for _, n in spans) == len(grid.columns)
    assert [env for env, _ in spans] == list(dict.fromkeys(col.env for col in grid.columns))


def test_fixture_sections_follow_the_catalog_whatever_the_archive_order(results: Results) -> None:
    expected = [g.fixture for g in report.grids(results)]
    results.archives.reverse()
    assert [g.fixture for g in report.grids(results)] == expected
    assert expected.index("int32-random") < expected.index("sharded")


def test_an_archive_whose_checks_did_not_complete_still_renders(results: Results) -> None:
    archive = next(a for a in results.archives if a.zip_checks)
    archive.zip_checks = ZipChecks.unchecked("timeout: no answer")
    html = whole_site(results)
    assert "the ZIP checks did not complete: timeout: no answer" in html
    assert "the ZIP checks did not complete" in render.render_full_markdown(results)


def test_robustness_counts_how_each_reader_met_the_hostile_archives(results: Results) -> None:
    from runner.results.model import Status

    template = results.cells[0]
    hostile = []
    for n, (status, executed) in enumerate(
        [(Status.FAIL, False), (Status.CRASH, False), (Status.MISMATCH, False), (Status.FAIL, True)]
    ):
        cell = type(template)(**{**template.__dict__, "id": f"h{n}", "fixture": "external-hostile"})
        cell.writer = type(template.writer)(**{**template.writer.__dict__, "probe": f"case-{n}"})
        cell.status, cell.executed_code = status, executed
        hostile.append(cell)
    results.cells += hostile
    rows = report.robustness(results)
    assert len(rows) == 1
    row = rows[0]
    assert (row.count("clean error"), row.count("crash"), row.count("wrong data"), row.count("code executed")) == (
        2,
        1,
        1,
        1,
    )
    assert row.archives["code executed"] == [f"case-3 ({template.reader.probe})"]
    html = render.render_html(results)
    assert 'id="robustness"' in html and "code executed" in html
    assert "## Robustness" in render.render_full_markdown(results)
    assert 'id="robustness"' not in render.render_html(Results.read(GOLDEN / "results.json"))


def test_a_run_renders_the_templates_it_started_with(
    results: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every template is compiled when a run starts, the partials and static files too: editing any of them
    while the run goes on does not reach its page."""
    import shutil

    from runner import resources

    html, markdown = render.render_html(results), render.render_markdown(results)  # the templates as they are
    copy = tmp_path / "templates"
    shutil.copytree(resources.data_dir("templates"), copy)
    monkeypatch.setattr(render, "_templates_dir", lambda: str(copy))
    render.load_templates()  # the run starts
    for edited in ("index.html.j2", "matrix.md.j2", "index/details.html.j2", "static/page.css", "static/summary.js"):
        (copy / edited).write_text("edited while the run went on\n")
    assert render.render_html(results) == html and render.render_markdown(results) == markdown
