"""Real-engine fixtures. Without an engine these tests fail (they never skip): CI must run them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.docker_engine import DockerEngine


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    engine = DockerEngine()
    engine.info()  # raises EngineUnavailableError with instructions: a failure, not a skip
    yield engine
    engine.cleanup()
