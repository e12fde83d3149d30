"""Real-engine fixtures. Without an engine these tests fail (they never skip): CI must run them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engines.docker_engine import DockerEngine
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.results.model import Results

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    engine = DockerEngine()
    engine.info()  # raises EngineUnavailableError with instructions: a failure, not a skip
    yield engine
    engine.cleanup()


@pytest.fixture(scope="session")
def small_run(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Results:
    plan = make_plan(load_matrix(HERE / "small.yaml", catalog()))
    out = tmp_path_factory.mktemp("site")
    return execute(plan, docker_engine, Options(out=out, work=out / "work"), progress=print)
