from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import cli
from runner.cli import main
from runner.errors import ExitCode
from runner.results.model import SCHEMA_VERSION
from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX
from tests.support.site import site_html


def write(tmp_path: Path, text: str = MATRIX) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_list_prints_the_plan_and_touches_no_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(write(tmp_path)), "--list"]) == 0
    out = capsys.readouterr().out
    assert "zarr-2.18.7-pip-py3.11" in out and "image zipstore-matrix/env:" in out


def test_bad_matrix_exits_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MATRIX.replace("channel: pip", "channel: conda"))
    assert cli.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5: environments[0].channel" in err


def test_nothing_selected_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(write(tmp_path)), "--only", "gdal-*"]) == 3
    assert "matches no environment" in capsys.readouterr().err


def test_no_engine_exits_4_and_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.engines.docker_engine import DockerEngine
    from runner.errors import EngineUnavailableError

    class Down(DockerEngine):
        def info(self):  # type: ignore[no-untyped-def]
            raise EngineUnavailableError("No Docker engine is reachable (refused).\napt-get install -y docker.io")

    assert cli.main([str(write(tmp_path)), "--out", str(tmp_path / "site")], engine=Down()) == 4
    assert "apt-get install -y docker.io" in capsys.readouterr().err


def test_full_run_writes_json_html_and_markdown(tmp_path: Path, fake_engine: FakeEngine) -> None:
    engine = fake_engine
    out = tmp_path / "site"
    assert cli.main([str(write(tmp_path)), "--out", str(out)], engine=engine) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and len(data["cells"]) == 12
    assert {"id", "started", "finished", "engine", "runner_version", "matrix_sha256"} <= set(data["run"])
    assert "ZipStore compatibility matrix" in site_html(out)
    assert (out / "matrix.md").read_text().startswith("# ZipStore compatibility matrix")


def test_internal_error_exits_1_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(task: dict[str, object]) -> tuple[None, None]:
        raise RuntimeError("harness exploded")

    engine = FakeEngine(images={BASE}, handler=HostHarness(broken))
    assert cli.main([str(write(tmp_path)), "--out", str(tmp_path / "s")], engine=engine) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: harness exploded" in err and "Traceback" not in err


def test_unit_tests_cannot_reach_the_real_engine() -> None:
    from runner.engines.docker_engine import DockerEngine

    with pytest.raises(AssertionError, match=r"mark it @pytest\.mark\.integration"):
        DockerEngine().info()


def test_relative_out_directory_gives_absolute_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeEngine
) -> None:
    """The README's command uses the default --out site: a relative path that Docker cannot mount."""
    monkeypatch.chdir(tmp_path)
    engine = fake_engine
    assert cli.main([str(write(tmp_path))], engine=engine) == 0
    assert all(Path(m.source).is_absolute() for spec in engine.runs for m in spec.mounts)
    assert (tmp_path / "site" / "index.html").is_file()


def test_benchmark_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)  # no benchmark section
    assert cli.main([str(path), "--benchmark-only"]) == 3
    assert "no selected environment" in capsys.readouterr().err
    assert cli.main([str(path), "--bench-size", "0"]) == 2
    assert "--bench-size 0: must be at least 1" in capsys.readouterr().err
    # the size flag alone switches the benchmark on, with the size asked for
    path = write(tmp_path, MATRIX.replace('"zarr-fsspec"]', '"zarr-fsspec", "zarr-bench"]'))
    assert cli.main([str(path), "--list", "--bench-size", "10000", "--bench-repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "benchmark: zarr-bench" in out and "3 timed round(s), synthetic size 10000" in out
    with pytest.raises(SystemExit):
        cli.main([str(path), "--benchmark-only", "--no-benchmark"])


def test_benchmark_only_runs_no_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.matrix import datasets
    from tests.support.fake_engine import OK_RUN

    monkeypatch.setattr(datasets, "KERAS_CACHE", tmp_path / "none.npz")
    monkeypatch.setenv("HOME", str(tmp_path))  # the dataset cache lives under ~/.cache
    text = MATRIX.replace("environments:", "benchmark:\n  datasets: [int32-random]\n  repeats: 2\nenvironments:")
    text = text.replace('"zarr-fsspec"]', '"zarr-fsspec", "zarr-bench"]')
    times = [0.01, 0.02]
    record = {
        "status": "ok",
        "nbytes": 16,
        "stores": {"raw": {"status": "ok", "write_s": times, "read_s": times}},
        "warnings": [],
    }
    engine = FakeEngine(images={BASE}, handler=HostHarness(lambda task: (OK_RUN, record)))
    out = tmp_path / "site"
    assert cli.main([str(write(tmp_path, text)), "--benchmark-only", "--out", str(out)], engine=engine) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["cells"] == [] and data["archives"] == []
    assert {b["env"] for b in data["benchmarks"]} == {"zarr-2.18.7-pip-py3.11", "zarr-3.1.6-pip-py3.11"}
    assert (out / "bench-int32-random.svg").is_file()


def test_a_bad_shard_is_a_usage_error_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["matrix.yaml", "--shard", "3/2", "--list"])
    assert stopped.value.code == ExitCode.CONFIG
    assert "argument --shard: expected K/N with 1 <= K <= N" in capsys.readouterr().err


def test_run_is_the_default_command_and_merge_is_one(tmp_path: Path) -> None:
    from runner.cli import parse

    assert parse(["m.yaml", "--list"]).command == "run" and parse(["run", "m.yaml"]).matrix == Path("m.yaml")
    merged = parse(["merge", "a.json", "b.json", "--out", str(tmp_path)])
    assert merged.command == "merge" and merged.results == [Path("a.json"), Path("b.json")]
