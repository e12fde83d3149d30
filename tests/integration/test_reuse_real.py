"""Reuse on the real engine: a second night like the first reuses every cell but the rotation's share, and
after one image is rebuilt under the same tag (another image id: what it holds may differ) exactly the
cells that image decides are measured again (its row and its column), with the rotation's share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner import cli
from runner.engines.docker_engine import DockerEngine
from runner.results.model import Results
from tests.phases.test_reuse import due_keys
from tests.support.real import INTEGRATION

pytestmark = pytest.mark.integration


def night(matrix: Path, out: Path, engine: DockerEngine) -> Results:
    assert cli.main([str(matrix), "--out", str(out), "--no-benchmark"], engine=engine) == 0
    return Results.read(out / "results.json")


def due(out: Path) -> Callable[[Results], set[str]]:
    return due_keys(out)


def test_a_night_measures_what_changed(docker_engine: DockerEngine, tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"  # small.yaml's environments (their images shared), one fixture
    matrix.write_text(
        (INTEGRATION / "small.yaml").read_text().replace("fixtures: [int32-random, float32-nan-fill, sharded]",
                                                          "fixtures: [int32-random]")
    )  # fmt: skip
    out = tmp_path / "site"
    first = night(matrix, out, docker_engine)
    keyed = {c.id: c.key for c in first.cells if c.key}
    assert keyed and all(c.reused is None for c in first.cells)

    due_two = due(out)
    second = night(matrix, out, docker_engine)
    assert {c.id for c in second.cells if c.reused} == {i for i, k in keyed.items() if k not in due_two(second)}
    assert {c.id: c.status for c in second.cells} == {c.id: c.status for c in first.cells}

    rebuilt = next(e for e in second.environments if e.slug.startswith("zarr-3.1.6"))
    docker_engine.client.images.remove(rebuilt.image, force=True)  # built again under the same tag
    due_three = due(out)
    third = night(matrix, out, docker_engine)
    again = next(e for e in third.environments if e.slug == rebuilt.slug)
    assert again.image == rebuilt.image and again.image_id != rebuilt.image_id and again.cached is False
    measured = {c.id for c in third.cells if c.key and c.reused is None}
    decided = {c.id for c in third.cells if c.key and rebuilt.slug in (c.writer.env, c.reader.env)}
    assert decided and decided <= measured
    rotation = {c.id for c in third.cells if c.key and c.id not in decided and keyed.get(c.id) in due_three(third)}
    assert measured - decided == rotation, "nothing else is measured again but the rotation's share"
