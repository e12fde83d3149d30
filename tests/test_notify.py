"""The nightly's regressions issue (``python -m runner notify``) against a local stand-in for GitHub's API
that records every request: opened on a night with regressions, kept while a listed cell still fails
(though it is no longer a *regression*), closed when they all pass; a refused token is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import cli, notify
from runner.errors import ExitCode
from runner.results.model import CellChange, Changes, Kind, Results, Status
from tests.support.fake_github import FakeGitHub, fake_github

GOLDEN = Path(__file__).parent / "report" / "golden" / "results.json"


def night(tmp_path: Path, name: str, failing: set[str], regressed: set[str]) -> Path:
    """The golden run with the cells in ``failing`` failing, and ``regressed`` of them new tonight."""
    results = Results.read(GOLDEN)
    results.run.id = name
    for cell in results.cells:
        if cell.id in failing:
            cell.status, cell.reason = Status.FAIL, f"KeyError: 'zarr.json' ({name})"
        elif cell.status is not Status.PASS:
            cell.status, cell.reason = Status.PASS, ""
    results.changes = Changes(
        since="yesterday",
        since_started="2026-12-01T03:17:00+00:00",
        cells=[
            CellChange(
                id=c.id,
                kind=Kind.REGRESSION,
                fixture=c.fixture,
                writer=c.writer.env,
                reader=c.reader.env,
                before=Status.PASS,
                after=Status.FAIL,
                reason=c.reason,
            )
            for c in results.cells
            if c.id in regressed
        ],
    )
    path = tmp_path / f"{name}.json"
    results.write(path)
    return path


def run(fake: FakeGitHub, results: Path, token: str | None = None) -> int:
    import os

    os.environ["GITHUB_TOKEN"] = token or fake.token
    try:
        return cli.main(["notify", "--results", str(results), "--repo", fake.repo, "--api", fake.url])
    finally:
        del os.environ["GITHUB_TOKEN"]


def test_the_issue_is_opened_kept_while_a_cell_fails_and_closed_when_all_pass(tmp_path: Path) -> None:
    ids = [c.id for c in Results.read(GOLDEN).cells[:3]]
    with fake_github() as fake:
        assert run(fake, night(tmp_path, "n0", set(), set())) == ExitCode.OK
        assert [m for m, _, _ in fake.requests] == ["GET"] and not fake.issues  # nothing to say, nothing said
        assert fake.repos == {fake.repo}

        assert run(fake, night(tmp_path, "n1", set(ids[:2]), set(ids[:2]))) == ExitCode.OK
        assert list(fake.issues) == [1]
        issue = fake.issues[1]
        assert issue["title"] == notify.TITLE and issue["labels"] == [notify.LABEL] and issue["state"] == "open"
        assert notify.tracked_ids(issue["body"]) == ids[:2]
        assert "KeyError: 'zarr.json' (n1)" in issue["body"] and "python -m runner repro" in issue["body"]

        # the next night they still fail, but are no regressions any more (fail -> fail); a third regresses
        assert run(fake, night(tmp_path, "n2", set(ids), {ids[2]})) == ExitCode.OK
        assert list(fake.issues) == [1], "one issue, updated, not a second one"
        assert notify.tracked_ids(fake.issues[1]["body"]) == [ids[2], ids[0], ids[1]]
        assert fake.requests[-1][:2] == ("PATCH", f"/repos/{fake.repo}/issues/1")

        assert run(fake, night(tmp_path, "n3", {ids[1]}, set())) == ExitCode.OK
        assert notify.tracked_ids(fake.issues[1]["body"]) == [ids[1]] and fake.issues[1]["state"] == "open"

        assert run(fake, night(tmp_path, "n4", set(), set())) == ExitCode.OK
        assert fake.issues[1]["state"] == "closed"
        assert fake.comments[1] == ["Night `n4`: every cell this issue listed passes again (or left the matrix)."]
        assert [m for m, _, _ in fake.requests[-3:]] == ["GET", "POST", "PATCH"]

        # a later regression opens a new issue: the closed one is history
        assert run(fake, night(tmp_path, "n5", {ids[0]}, {ids[0]})) == ExitCode.OK
        assert fake.issues[2]["state"] == "open" and fake.issues[1]["state"] == "closed"


def test_a_refused_token_is_a_clear_error_naming_the_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_github() as fake:
        assert run(fake, night(tmp_path, "n1", set(), set()), token="wrong") == ExitCode.API
    said = capsys.readouterr().err
    assert f"GET {fake.url}/repos/{fake.repo}/issues" in said and "HTTP 401" in said and "Bad credentials" in said


def test_an_issue_body_it_did_not_write_is_read_as_listing_nothing() -> None:
    assert notify.tracked_ids("edited by hand") == []
    assert notify.tracked_ids("<!-- zipstore-regressions: [1, 2 -->") == []
    assert notify.tracked_ids('<!-- zipstore-regressions: ["a", 3, "b"] -->') == ["a", "b"]


def test_no_token_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    code = cli.main(["notify", "--results", str(night(tmp_path, "n", set(), set())), "--repo", "a/b"])
    assert code == ExitCode.CONFIG
