from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/* from the current output")


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
    from tests.fake_index import DEFAULT

    monkeypatch.setattr(index, "PackageIndex", lambda *args, **kwargs: DEFAULT)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


EXTERNAL_ZIPS = SHARED / "external-zips"


def require_external_zips() -> Path:
    """The shared corpus of real archives: beside every CI clone, so missing there is a failure; a
    user's fresh clone has no shared/ beside it, so there the test is skipped, saying why."""
    if not EXTERNAL_ZIPS.is_dir():
        message = f"{EXTERNAL_ZIPS} is not beside the repository"
        if in_ci() and not os.environ.get("ZIPSTORE_SHARED_OPTIONAL"):  # GitHub's CI has no shared/
            pytest.fail(message + " (CI always has shared/)")
        pytest.skip(message)
    return EXTERNAL_ZIPS
