"""--shard K/N and 'merge': every share run alone on the fake engine, merged, equals the single-machine run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from runner.cli import main
from runner.errors import ConfigError
from runner.plan.split import assign
from runner.results.model import Results, Shard
from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.matrices import BASE, good

MATRIX = """\
version: 1
fixtures: [int32-random, nested-groups]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}"]
    probes: ["zarr-v?", "zarr-zipstore", "zarr-fsspec"]
    matrix: {zarr: ["2.18.7", "3.0.10", "3.1.6"]}
  - base: debian:bookworm
    channel: pip
    packages: ["fsspec==2026.9.0"]
"""


def engine() -> FakeEngine:
    return FakeEngine(images={BASE}, handler=HostHarness(good))


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX)
    external = tmp_path / "external"
    external.mkdir()
    for n in range(4):
        with zipfile.ZipFile(external / f"other-{n}.zip", "w") as zf:
            zf.writestr(".zgroup", '{"zarr_format": 2}')
    return path


def run(matrix: Path, out: Path, *extra: str) -> int:
    external = matrix.parent / "external"
    return main(
        [str(matrix), "--out", str(out), "--no-benchmark", "--external", str(external), *extra], engine=engine()
    )


def cells(path: Path) -> dict[str, str]:
    return {c.id: c.status.value for c in Results.read(path).cells}


def test_shards_merge_to_the_single_machine_run(matrix: Path, tmp_path: Path) -> None:
    assert run(matrix, tmp_path / "whole") == 0
    for k in (1, 2, 3):
        assert run(matrix, tmp_path / f"shard-{k}", "--shard", f"{k}/3") == 0
        assert not (tmp_path / f"shard-{k}" / "index.html").exists()  # a share waits for the merge
    shares = [cells(tmp_path / f"shard-{k}" / "results.json") for k in (1, 2, 3)]
    assert all(shares) and sum(len(s) for s in shares) == len(set().union(*shares))  # disjoint, none empty
    parts = [str(tmp_path / f"shard-{k}" / "results.json") for k in (3, 1, 2)]  # any order
    assert main(["merge", *parts, "--out", str(tmp_path / "merged")]) == 0
    merged = Results.read(tmp_path / "merged" / "results.json")
    whole = Results.read(tmp_path / "whole" / "results.json")
    assert cells(tmp_path / "merged" / "results.json") == cells(tmp_path / "whole" / "results.json")
    assert {a.id for a in merged.archives} == {a.id for a in whole.archives}
    assert [s["shard"] for s in merged.run.shards] == ["1/3", "2/3", "3/3"]
    assert (tmp_path / "merged" / "index.html").is_file() and (tmp_path / "merged" / "history.sqlite").is_file()


def test_the_split_is_balanced_and_the_same_everywhere() -> None:
    costs = {"a": 10.0, "b": 9.0, "c": 2.0, "d": 1.0, "e": 1.0}
    split = assign(costs, 2)
    assert split == assign(dict(reversed(list(costs.items()))), 2)  # the order given does not matter
    loads = [sum(c for u, c in costs.items() if split[u] == k) for k in (1, 2)]
    assert sorted(loads) == [11.0, 12.0]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_a_shard_that_is_not_k_of_n_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="expected K/N"):
        Shard.parse(text)


def test_merge_refuses_what_is_not_one_run(matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for k in (1, 2):
        assert run(matrix, tmp_path / f"s{k}", "--shard", f"{k}/2") == 0
    s1, s2 = (str(tmp_path / f"s{k}" / "results.json") for k in (1, 2))
    out = ["--out", str(tmp_path / "merged")]
    assert main(["merge", s1, *out]) == 2
    assert "shard 1/2 of 2, but 1 file(s) were given" in capsys.readouterr().err
    assert main(["merge", s1, s1, *out]) == 2
    assert "shard 1/2 is also" in capsys.readouterr().err
    assert main(["merge", s1, str(tmp_path / "nope.json"), *out]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = json.loads(Path(s2).read_text())
    other["run"]["split"] = {"zarr-2.18.7-pip-py3.11": 2}
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["merge", s1, str(tmp_path / "other.json"), *out]) == 2
    assert "split the writers differently" in capsys.readouterr().err
    assert run(matrix, tmp_path / "whole") == 0
    assert main(["merge", str(tmp_path / "whole" / "results.json"), *out]) == 2
    assert "was not run with --shard" in capsys.readouterr().err
    assert not (tmp_path / "merged" / "results.json").exists()


def test_resume_keeps_to_its_shard(matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(matrix, tmp_path / "s", "--shard", "1/2") == 0
    assert run(matrix, tmp_path / "s", "--shard", "2/2", "--resume") == 2
    assert "results to complete are of shard 1/2" in capsys.readouterr().err


def test_a_shard_that_measures_nothing_still_leaves_its_finished_results(matrix: Path, tmp_path: Path) -> None:
    """A shard's results.json is what 'merge' reads: a shard whose cells are all reused (nothing measured,
    so no checkpoint is due) still writes it, finished."""
    fake = engine()
    site = tmp_path / "site"
    common = [str(matrix), "--no-benchmark", "--external", str(matrix.parent / "external")]
    assert main([*common, "--out", str(site)], engine=fake) == 0
    runs = len(fake.runs)
    reuse = ["--history", str(site / "history.sqlite"), "--remeasure-every", "1000000", "--shard", "1/2"]
    assert main([*common, "--out", str(tmp_path / "s1"), *reuse], engine=fake) == 0
    share = Results.read(tmp_path / "s1" / "results.json")
    assert len(fake.runs) == runs, "nothing was measured"
    assert share.run.finished and share.cells and all(c.reused for c in share.cells if c.key)
