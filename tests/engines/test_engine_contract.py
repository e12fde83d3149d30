"""The same assertions against the fake and the real engine, so the fake cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engines.engine import BuildContext, Engine, Mount, RunSpec
from tests.support.fake_engine import FakeEngine

BASE_FAKE = "zipstore-matrix/debian:bookworm"


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str]]:
    if request.param == "fake":
        yield FakeEngine(images={BASE_FAKE}), BASE_FAKE
        return
    from runner.engines.bases import ensure_base
    from runner.engines.docker_engine import DockerEngine

    real = DockerEngine()
    real.info()
    yield real, ensure_base(real, "debian:bookworm").ref


def _tag() -> str:
    return f"zipstore-matrix/contract-test:{uuid.uuid4().hex[:10]}"


def test_info_names_the_engine(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    assert eng.info().name == ("fake" if isinstance(eng, FakeEngine) else "docker")


def test_build_then_has_image_then_remove(engine: tuple[Engine, str]) -> None:
    eng, base = engine
    tag = _tag()
    assert not eng.has_image(tag)
    result = eng.build(
        BuildContext(tag=tag, dockerfile=f"FROM {base}\nCOPY hello.txt /hello.txt\n", files={"hello.txt": b"hi"})
    )
    try:
        assert result.ok, result.error
        assert eng.has_image(tag)
    finally:
        eng.remove_image(tag)
    assert not eng.has_image(tag)


def test_failed_build_reports_the_command_output(engine: tuple[Engine, str]) -> None:
    eng, base = engine
    tag = _tag()
    result = eng.build(BuildContext(tag=tag, dockerfile=f"FROM {base}\nRUN echo no-such-package && exit 1\n"))
    assert not result.ok
    assert result.error and "non-zero code" in result.error
    assert not eng.has_image(tag)


def test_run_propagates_exit_code_and_writes_through_rw_mount(engine: tuple[Engine, str], tmp_path: Path) -> None:
    eng, base = engine
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_text("payload")
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    result = eng.run(
        RunSpec(
            image=base,
            command=("sh", "-c", "cat /in/x.txt > /out/y.txt; exit 3"),
            mounts=(
                Mount(source=str(tmp_path / "in"), target="/in"),
                Mount(source=str(out), target="/out", read_only=False),
            ),
            timeout=60,
            user="65534:65534",
        )
    )
    assert result.exit_code == 3
    assert not result.timed_out
    assert (out / "y.txt").read_text() == "payload"


def test_run_times_out_and_is_killed(engine: tuple[Engine, str]) -> None:
    eng, base = engine
    result = eng.run(RunSpec(image=base, command=("sh", "-c", "sleep 30"), timeout=2))
    assert result.timed_out
    assert result.exit_code is None
    assert result.seconds < 25
