"""Locate the data directories (``templates/``, ``docker/``, ``runner/probes``) in a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``templates`` or ``docker``: inside the wheel (``runner/_data``) or at the top of a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"runner data directory {name!r} not found next to {_PACKAGE}")


def probes_dir() -> Path:
    return _PACKAGE / "probes"


def schema_path() -> Path:
    return _PACKAGE / "schema" / "matrix.schema.json"
