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


def require_external_zips() -> Path:
    """The shared corpus of real archives: beside every CI clone, so missing there is a failure; a
    user's fresh clone has no shared/ beside it, so there the test is skipped, saying why."""
    if not EXTERNAL_ZIPS.is_dir():
        message = f"{EXTERNAL_ZIPS} is not beside the repository"
        if in_ci() and not os.environ.get("ZIPSTORE_SHARED_OPTIONAL"):  # GitHub's CI has no shared/
            pytest.fail(message + " (CI always has shared/)")
        pytest.skip(message)
    return EXTERNAL_ZIPS
