"""The pipeline against the fake engine: every status path, without Docker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runner.engines.builder import install_error
from runner.errors import BaseImageError
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.results.model import EnvStatus, Results, Status
from tests.support.fake_engine import OK_RUN, FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX, expected_for, good


def run(
    tmp_path: Path,
    behaviour: Any = good,
    text: str = MATRIX,
    engine: FakeEngine | None = None,
    **container: Any,
) -> tuple[Results, FakeEngine]:
    sim = HostHarness(behaviour, container=container)
    engine = engine or FakeEngine(images={BASE}, handler=sim)
    engine.handler = sim
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    saved: list[Results] = []
    results = execute(
        plan,
        engine,
        Options(out=tmp_path, work=tmp_path / "work"),
        progress=lambda m: None,
        checkpoint=saved.append,
    )
    assert saved, "checkpoints must be written as the run goes"
    return results, engine


def statuses(results: Results) -> dict[str, str]:
    return {c.id: c.status for c in results.cells}


def test_all_pass_builds_each_image_once_and_crosses_everything(tmp_path: Path) -> None:
    results, engine = run(tmp_path)
    assert len(engine.builds) == 2
    # writers: zarr 2 -> v2; zarr 3 -> v2 + v3: 3 archives; readers: 2 per env x 2 envs = 4 -> 12 cells
    assert len(results.archives) == 3 and all(a.status == "written" for a in results.archives)
    assert len(results.cells) == 12 and set(statuses(results).values()) == {"pass"}
    assert all(a.sha256 and a.zip_checks and a.zip_checks.crc_ok for a in results.archives)
    assert results.environments[0].libraries == {"zarr": "9.9.9"}
    # second run: same hashes, nothing rebuilt
    _, engine2 = run(tmp_path, engine=engine)
    assert len(engine2.builds) == 2


def test_probe_runs_locked_down(tmp_path: Path) -> None:
    _, engine = run(tmp_path)
    spec = engine.runs[0]
    assert not spec.network and spec.read_only and spec.user and not spec.user.startswith("0:")
    mounts = {m.target: m for m in spec.mounts}
    assert mounts["/probes"].read_only and mounts["/job"].read_only and not mounts["/out"].read_only
    write_mounts = {m.target: m.read_only for m in engine.runs[0].mounts}
    read_mounts = {m.target: m.read_only for m in engine.runs[-1].mounts}
    assert write_mounts["/artifacts"] is False and read_mounts["/artifacts"] is True


def test_every_failure_mode_becomes_its_status(tmp_path: Path) -> None:
    def behaviour(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        args = task["args"]
        if args["role"] == "writer":
            return good(task)
        if args["zarr_format"] == 3 and args["method"] == "zipstore":
            return OK_RUN, {"status": "unsupported", "message": "format 3"}
        if args["method"] == "fsspec" and args["zarr_format"] == 3:
            return {
                **OK_RUN,
                "exit_code": None,
                "signal": "SIGSEGV",
                "stderr_tail": "Segmentation fault",
            }, None
        if args["method"] == "fsspec":
            return {**OK_RUN, "timed_out": True, "seconds": 300}, None
        observed = expected_for(task)
        observed["arrays"]["data"] = dict(observed["arrays"]["data"], sha256="0" * 64)
        return OK_RUN, {"status": "ok", **observed}

    results, _ = run(tmp_path, behaviour)
    seen = set(statuses(results).values())
    assert {"unsupported", "crash", "timeout", "mismatch"} <= seen
    crash = next(c for c in results.cells if c.status == "crash")
    assert crash.reason == "killed by SIGSEGV: Segmentation fault"


def test_install_failure_marks_its_cells_and_the_rest_goes_on(tmp_path: Path) -> None:
    text = MATRIX.replace(
        '["2.18.7", "3.1.6"]',
        '["2.18.7", "3.1.6"]}\n  - {base: "debian:bookworm", channel: pip, packages: ["no-such-package==1.0", "zarr"]',
    )
    results, _ = run(tmp_path, text=text.replace("}}", "}"))
    bad = next(e for e in results.environments if e.slug.startswith("no-such-package"))
    assert bad.status == "install-failed"
    assert "no-such-package was not found in the package registry" in bad.reason
    failed = [c for c in results.cells if "no-such-package" in c.id]
    assert failed and all(c.status == "install-failed" for c in failed)
    assert any(c.status == "pass" for c in results.cells)


def test_missing_base_image_is_install_failed_with_the_reason(tmp_path: Path) -> None:
    text = MATRIX + '  - {base: "example.invalid/nothing:1", channel: pip, packages: ["zarr==3.1.6"]}\n'
    results, _ = run(tmp_path, text=text)
    bad = next(e for e in results.environments if e.base == "example.invalid/nothing:1")
    assert bad.status is EnvStatus.INSTALL_FAILED and "could not be pulled" in bad.reason
    assert {c.status for c in results.cells if bad.slug in c.id} == {Status.INSTALL_FAILED}
    assert any(c.status is Status.PASS for c in results.cells)


def test_no_base_at_all_is_exit_5_with_the_environments_saved(tmp_path: Path) -> None:
    text = MATRIX.replace("debian:bookworm", "example.invalid/nothing:1")
    saved: list[Results] = []
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    with pytest.raises(BaseImageError, match="could not be pulled") as raised:
        execute(plan, FakeEngine(), Options(out=tmp_path, work=tmp_path / "work"), lambda m: None, saved.append)
    assert raised.value.exit_code == 5
    assert saved and {e.status for e in saved[-1].environments} == {EnvStatus.INSTALL_FAILED}


def test_container_killed_midway_keeps_finished_records(tmp_path: Path) -> None:
    def behaviour(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if task["args"]["role"] == "writer":
            return good(task)
        if task["args"]["method"] == "fsspec":
            return None, None  # never reported: the container ran out of memory before it
        return good(task)

    results, _ = run(tmp_path, behaviour, oom_killed=True)
    by_method = {c.reader.probe: c.status for c in results.cells}
    assert by_method == {"zarr-zipstore": "pass", "zarr-fsspec": "oom"}


def test_unwritten_archives_give_skipped_cells_with_the_writer_reason(tmp_path: Path) -> None:
    def behaviour(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if task["args"]["role"] == "writer" and task["args"].get("zarr_format") == 3:
            return OK_RUN, {"status": "unsupported", "message": "no sharding here"}
        return good(task)

    results, _ = run(tmp_path, behaviour)
    skipped = [c for c in results.cells if c.status == "skipped"]
    assert len(skipped) == 4
    assert skipped[0].reason == "the writer could not produce this archive (unsupported: no sharding here)"


def test_bootstrap_is_tried_after_local_and_pull(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from runner.engines import bases

    calls: list[str] = []

    def bootstrap(engine: FakeEngine, suite: str) -> None:
        calls.append(suite)
        engine.images.add(bases.bootstrap_ref(suite))

    monkeypatch.setattr(bases, "bootstrap", bootstrap)
    engine = FakeEngine()
    resolved = bases.ensure_base(engine, "debian:trixie")
    assert (resolved.ref, resolved.how, calls) == (
        "zipstore-matrix/debian:trixie",
        "bootstrapped",
        ["trixie"],
    )
    assert bases.ensure_base(engine, "debian:trixie").how == "local-bootstrap"
    pulled = FakeEngine(pullable={"debian:trixie"})
    assert bases.ensure_base(pulled, "debian:trixie").how == "pulled"
    assert bases.ensure_base(pulled, "debian:trixie").how == "local"


def test_install_error_prefers_the_installers_words() -> None:
    log = (
        "Step 5/7 : RUN pip install x\nCollecting x\nERROR: Could not find a version that satisfies x==9\n"
        "ERROR: No matching distribution found for x==9\n"
    )
    text = install_error(log, "The command '/bin/sh -c pip install x' returned a non-zero code: 1")
    assert text.splitlines() == [
        "ERROR: Could not find a version that satisfies x==9",
        "ERROR: No matching distribution found for x==9",
        "The command '/bin/sh -c pip install x' returned a non-zero code: 1",
    ]
    assert (
        install_error("E: Unable to locate package python3-nope\n", None) == "E: Unable to locate package python3-nope"
    )


def test_install_error_keeps_pips_explanation_without_colour_or_advice() -> None:
    log = (
        "Step 6/8 : RUN pip install zarr==2.18.7 numcodecs==0.16.6\n ---> Running in c71347db498c\n"
        "Collecting zarr==2.18.7\n"
        "\x1b[91mERROR: Cannot install numcodecs==0.16.6 and zarr==2.18.7 because these package versions have "
        "conflicting dependencies.\n\x1b[0m\nThe conflict is caused by:\n    The user requested numcodecs==0.16.6\n"
        "    zarr 2.18.7 depends on numcodecs!=0.14.0, !=0.14.1, <0.16 and >=0.10.0\n\n"
        "To fix this you could try to:\n1. loosen the range of package versions you've specified\n"
        "2. remove package versions to allow pip attempt to solve the dependency conflict\n\n"
        "\x1b[91mERROR: ResolutionImpossible: for help visit https://pip.pypa.io/x\n"
        "\x1b[0mRemoving intermediate container c71347db498c\n"
    )
    assert install_error(log, "The command returned a non-zero code: 1").splitlines() == [
        "ERROR: Cannot install numcodecs==0.16.6 and zarr==2.18.7 because these package versions have "
        "conflicting dependencies.",
        "The conflict is caused by:",
        "    The user requested numcodecs==0.16.6",
        "    zarr 2.18.7 depends on numcodecs!=0.14.0, !=0.14.1, <0.16 and >=0.10.0",
        "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/x",
        "The command returned a non-zero code: 1",
    ]


def test_install_error_keeps_uvs_explanation() -> None:
    # uv 0.13.9's words without a terminal (as in a build), for the conflict above
    said = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because zarr==2.18.7 depends on one of:\n"
        "             numcodecs>=0.10.0,<0.14.0\n"
        "             numcodecs>0.14.1,<0.16\n"
        "         and you require zarr==2.18.7, we can conclude that you require one of:\n"
        "             numcodecs>=0.10.0,<0.14.0\n"
        "             numcodecs>0.14.1,<0.16\n\n"
        "         And because you require numcodecs==0.16.6, we can conclude that your requirements are"
        " unsatisfiable.\n"
    )
    log = f"Step 11/14 : RUN /opt/uv/bin/uv pip install zarr==2.18.7\n ---> Running in 0c1\nUsing Python 3.11.2\n{said}"
    text = install_error(log, "The command returned a non-zero code: 1")
    assert text.splitlines()[0] == "error: No solution found when resolving dependencies"
    assert "we can conclude that your requirements are unsatisfiable." in text and "Using Python" not in text


def test_probes_are_snapshotted_per_run_and_hashed(tmp_path: Path) -> None:
    results, engine = run(tmp_path)
    probes = next(m for m in engine.runs[0].mounts if m.target == "/probes")
    assert Path(probes.source) == tmp_path / "work" / "probes"
    assert (tmp_path / "work" / "probes" / "harness.py").is_file()
    assert len(results.run.probes_sha256) == 64


def test_containers_at_once_record_the_same_cells_in_the_same_order(tmp_path: Path) -> None:
    """--jobs 2: containers of two environments run together; the results are those of one at a time."""
    text = MATRIX.replace('["2.18.7", "3.1.6"]', '["2.18.7", "3.0.10", "3.1.6"]')
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    outcomes = []
    for containers in (1, 2):
        sim = HostHarness(good)
        out = tmp_path / str(containers)
        options = Options(out=out, work=out / "work", containers=containers)
        results = execute(plan, FakeEngine(images={BASE}, handler=sim), options, lambda m: None)
        outcomes.append([(c.id, c.status, c.reason, c.reader.version) for c in results.cells])
        assert len(sim.jobs) == 1 + 3 + 3  # the checks, a write and a read container per environment
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0]) == 5 * 6 and {s for _, s, _, _ in outcomes[0]} == {Status.PASS}


def test_checkpoints_within_a_phase_wait_in_proportion_to_their_cost(tmp_path: Path) -> None:
    """A checkpoint rewrites all of results.json: one after every image and container cost minutes a night
    on a large matrix. Within a phase one waits for CHECKPOINT_SPACING times the last one's cost; a phase's
    end and the run's end save when something was measured since the last write."""

    def saves(cost: float) -> list[str]:
        finished: list[str] = []

        def checkpoint(results: Results) -> None:
            time.sleep(cost)
            finished.append(results.run.finished)

        plan = make_plan(parse_matrix(MATRIX, "m.yaml", catalog()))
        engine = FakeEngine(images={BASE}, handler=HostHarness(good))
        out = tmp_path / str(cost)
        execute(plan, engine, Options(out=out, work=out / "work"), progress=lambda m: None, checkpoint=checkpoint)
        return finished

    free, costly = saves(0.0), saves(0.25)  # 0.25 s: the next one within a phase waits 5 s
    # the first, which says what one costs, then the ends of the phases that measured: images, write,
    # checks, read (no archive from outside, no benchmark: the run's end has nothing new to save)
    assert len(costly) == 1 + 4
    assert len(free) > 1 + 4  # one after every image and every container, when they cost nothing
    assert not any(costly) and not any(free), "the finished run is publish's to write"
