"""What a published site may carry: nothing of the machine it was made on (home paths, tokens), and
nothing from a probe or an archive that a browser would run (see tests/report/test_browser.py for the page
in a real browser)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.results.redact import REDACTED, Redactor
from tests.support.fake_engine import OK_RUN, FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX, good

TOKEN = "ghp_ZipstoreTestToken0123456789"


def test_the_redactor_removes_home_paths_and_secret_values() -> None:
    environ = {"GITHUB_TOKEN": TOKEN, "PATH": "/usr/bin", "DB_PASSWORD": "x"}
    redact = Redactor.from_environment(environ, Path("/home/ci"))
    text = f'home /home/ci/.keras/mnist.npz, "/home/ci", token {TOKEN}; /home/cider stays'
    assert redact(text) == f'home ~/.keras/mnist.npz, "~", token {REDACTED}; /home/cider stays'
    assert redact("/usr/bin and x") == "/usr/bin and x", "short or non-secret values are left alone"


def test_a_published_site_carries_no_home_path_and_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home" / "someone"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZIPSTORE_API_TOKEN", TOKEN)

    def leaky(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if task["args"]["role"] == "reader" and task["args"]["method"] == "fsspec":
            message = f"cannot open {home}/.netrc with token={TOKEN}"
            return OK_RUN, {"status": "error", "error_type": "OSError", "message": message}
        return good(task)

    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "site"
    engine = FakeEngine(images={BASE}, handler=HostHarness(leaky))
    assert cli.main([str(matrix), "--out", str(out)], engine=engine) == 0
    published = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"results.json", "index.html", "matrix.md", "matrix-full.md", "history.sqlite"} <= set(published)
    for name, data in published.items():
        assert str(home).encode() not in data and TOKEN.encode() not in data, name
    assert b"cannot open ~/.netrc with token=[redacted]" in published["results.json"]
    # the history's records are compressed: their text is checked inflated
    with sqlite3.connect(out / "history.sqlite") as db:
        records = [
            zlib.decompress(b)
            for (b,) in db.execute("SELECT cells FROM run_cells UNION ALL SELECT record FROM measured")
        ]
    assert any(b"cannot open ~/.netrc with token=[redacted]" in r for r in records)
    assert not any(str(home).encode() in r or TOKEN.encode() in r for r in records)
