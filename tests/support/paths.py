"""Where the tests find what is not in the repository: the shared corpus beside a CI clone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED = ROOT.parent / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


EXTERNAL_ZIPS = SHARED / "external-zips"


def require_shared(folder: Path) -> Path:
    """A folder of shared/ (beside every CI clone of this project, so missing there is a failure); a user's
    fresh clone, or GitHub's CI (ZIPSTORE_SHARED_OPTIONAL), has no shared/ beside it: skipped, saying why."""
    if not folder.is_dir():
        message = f"{folder} is not beside the repository"
        if in_ci() and not os.environ.get("ZIPSTORE_SHARED_OPTIONAL"):
            pytest.fail(message + " (CI always has shared/)")
        pytest.skip(message)
    return folder


def require_external_zips() -> Path:
    """The shared corpus of real archives."""
    return require_shared(EXTERNAL_ZIPS)
