"""A corpus of malformed matrix files: each is refused with exit code 2, naming the file, the line and
what is wrong, and none is expanded in memory first (aliases, depth and size are refused up front).
How long each takes and how much memory it needs is measured in bench/malformed.py, not here."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from runner.cli import main
from runner.errors import ConfigError
from runner.matrix.fixtures import catalog
from runner.matrix.load import MAX_DEPTH, load_matrix
from tests.support.malformed import CORPUS


@pytest.mark.parametrize(("name", "content", "line", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_matrix_is_refused_with_where_and_what(
    tmp_path: Path, name: str, content: bytes, line: int | None, words: str
) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as raised:
            load_matrix(path, catalog())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(raised.value)
    assert message.startswith(str(path)), message
    if line is not None:
        assert f"{path}:{line}:" in message, message
    assert words in message, message
    assert peak < 100 << 20, f"{name}: {peak / 1e6:.0f} MB to refuse"


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert MAX_DEPTH >= 8  # the schema's own nesting fits comfortably


def test_every_malformed_matrix_is_exit_2_from_the_command_line(tmp_path: Path) -> None:
    for name, content, _, _ in CORPUS:
        path = tmp_path / "m.yaml"
        path.write_bytes(content)
        assert main([str(path), "--list"]) == 2, name
