"""The tests' pytest plugin (as tox's ``tox.pytest``): the order (unit tests, then the real engine), the
guards every unit test runs under (no real engine, no package index), and the shared fixtures. Shared
code that is not a fixture lives in ``tests/support/``; no test module imports another."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.matrices import BASE, MATRIX, Behaviour, good
from tests.support.paths import require_external_zips


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/report/golden/* from the output")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests first, real-engine tests after (as tox does): fast feedback, then the slow truth."""
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)


@pytest.fixture(autouse=True)
def _no_accidental_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that reaches for the real Docker engine fails loudly instead of building for minutes."""
    if request.node.get_closest_marker("integration"):
        return
    import docker.api.client

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to use the real Docker engine; mark it @pytest.mark.integration")

    # Every client the SDK makes goes through APIClient: guard there, so no import path slips past.
    monkeypatch.setattr(docker.api.client.APIClient, "__init__", refuse)


@pytest.fixture(autouse=True)
def _no_package_index(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests resolve versions against a fixed fake index, never PyPI or a Debian mirror."""
    if request.node.get_closest_marker("integration"):
        return
    from runner.versions import index
    from tests.support.fake_index import DEFAULT

    monkeypatch.setattr(index, "PackageIndex", lambda *args, **kwargs: DEFAULT)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def good_probe() -> Behaviour:
    """A probe that writes and reads back the small fixture perfectly (``tests/support/matrices.py``)."""
    return good


@pytest.fixture
def small_matrix(tmp_path: Path) -> Path:
    """The two-environment zarr matrix most unit tests run, as a file."""
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return path


@pytest.fixture
def fake_engine(good_probe: Behaviour) -> FakeEngine:
    """The fake engine with the small matrix's base image, running the real harness on this host."""
    return FakeEngine(images={BASE}, handler=HostHarness(good_probe))


@pytest.fixture
def external_zips() -> Path:
    """The shared corpus of real archives (skipped on a clone without shared/ beside it, failed in CI)."""
    return require_external_zips()
