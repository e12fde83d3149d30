"""Faults of the run itself, on the fake engine: whatever stops a run, what it measured is saved, its
containers are removed, the exit code says why, and --resume completes it with the same run id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.engines.engine import RunResult, RunSpec
from runner.errors import EngineLostError, Interrupted
from runner.results.model import Results
from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX, good


class Flaky(FakeEngine):
    """Fails once, the way it is told, when the read phase reaches an environment matching ``at``."""

    def __init__(self, fail: BaseException | None, at: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail, self.at = fail, at
        self.cleanups = 0

    def run(self, spec: RunSpec) -> RunResult:
        labels = spec.labels
        if (
            self.fail is not None
            and labels.get("org.zipstore-matrix.phase") == "read"
            and self.at in labels.get("org.zipstore-matrix.env", "")
        ):
            fail, self.fail = self.fail, None
            raise fail
        return super().run(spec)

    def cleanup(self, owner: str | None = None) -> int:
        self.cleanups += 1
        return 0


def run_cli(tmp_path: Path, engine: FakeEngine, *extra: str) -> int:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    return cli.main([str(matrix), "--out", str(tmp_path / "site"), *extra], engine=engine)


def saved(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "site" / "results.json").read_text())
    return data


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (EngineLostError("the engine stopped answering"), 6),
        (KeyboardInterrupt(), 130),
        (Interrupted("SIGTERM", 143), 143),
        (OSError(28, "No space left on device"), 7),
    ],
    ids=["engine-lost", "ctrl-c", "sigterm", "disk-full"],
)
def test_a_stopped_run_saves_what_it_measured_and_resume_completes_it(
    tmp_path: Path, fault: BaseException, code: int
) -> None:
    sim = HostHarness(good)
    engine = Flaky(fault, at="zarr-3.1.6", images={BASE}, handler=sim)
    assert run_cli(tmp_path, engine) == code
    assert engine.cleanups >= 2, "containers are removed at the start and when the run stops"
    stopped = saved(tmp_path)
    assert stopped["run"]["finished"] == ""
    assert len(stopped["archives"]) == 3
    first = {c["id"] for c in stopped["cells"]}
    assert len(first) == 6 and all("zarr-2.18.7-pip-py3.11.zarr" in c.split("--")[1] for c in first)

    reads_before = sum(1 for t in sim.tasks if t["args"]["role"] == "reader")
    writes_before = sum(1 for t in sim.tasks if t["args"]["role"] == "writer")
    assert run_cli(tmp_path, engine, "--resume") == 0
    done = Results.read(tmp_path / "site" / "results.json")
    assert done.run.id == stopped["run"]["id"] and done.run.finished and len(done.run.resumed) == 1
    assert len(done.cells) == 12 and first <= {c.id for c in done.cells}
    assert all(c.status == "pass" for c in done.cells)
    reads = [t for t in sim.tasks if t["args"]["role"] == "reader"][reads_before:]
    assert len(reads) == 6, "only the cells the stopped run lacked are read again"
    assert sum(1 for t in sim.tasks if t["args"]["role"] == "writer") == writes_before, "no archive is rewritten"


def test_resume_refuses_another_matrix_and_a_missing_run(tmp_path: Path, fake_engine: FakeEngine) -> None:
    engine = fake_engine
    assert run_cli(tmp_path, engine, "--resume") == 2  # nothing to resume
    assert run_cli(tmp_path, engine) == 0
    (tmp_path / "m.yaml").write_text(MATRIX.replace("3.1.6", "3.1.5"))
    code = cli.main([str(tmp_path / "m.yaml"), "--out", str(tmp_path / "site"), "--resume"], engine=engine)
    assert code == 2


def test_a_full_work_disk_stops_the_run_before_probes_crash_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage
    calls = {"n": 0}

    def filling(path: Any) -> Any:
        calls["n"] += 1
        usage = real(path)
        return usage._replace(free=0) if calls["n"] > 2 else usage  # full once two containers have run

    monkeypatch.setattr(shutil, "disk_usage", filling)
    assert run_cli(tmp_path, FakeEngine(images={BASE}, handler=HostHarness(good))) == 7
    stopped = saved(tmp_path)
    assert stopped["archives"] and not any(c["status"] == "crash" for c in stopped["cells"])
