"""The pip channel: wheels from PyPI in the image's virtual environment (``zarr==2.18.7``)."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runner.channels import steps
from runner.channels.base import Registry
from runner.channels.steps import ImageInput

NEEDS_DEBIAN_BASE = False
VERSIONS_FROM_SUITE = False
TRACKS: Registry | None = "pypi"
RUNS_LOCALLY = True


def problem(package: str) -> str | None:
    try:
        req = Requirement(package)
    except InvalidRequirement as exc:
        return f"{package!r} is not a PEP 508 requirement: {exc}"
    if req.url:
        return f"{package!r}: direct URL requirements are not allowed; pin a version from PyPI"
    if ";" in package or any(c in package for c in "$`\\\n"):
        return f"{package!r}: environment markers and shell characters are not allowed"
    return None


def library(package: str) -> str:
    return canonicalize_name(Requirement(package).name)


def exact_version(package: str) -> str | None:
    specifiers = Requirement(package).specifier
    return next((s.version for s in specifiers if s.operator in ("==", "===") and "*" not in s.version), None)


def slug_head(package: str) -> str:
    req = Requirement(package)
    pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
    return canonicalize_name(req.name) + (f"-{pins[0]}" if pins else "")


_TRACKED = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9._,\s-]*\])?)\s*==\s*\{(\w+)\}\s*$")


def tracked(template: str) -> tuple[str, str] | None:
    """``zarr=={zarr}`` -> (``zarr``, ``zarr``); extras stay with the name (``ngff-zarr[validate]``)."""
    match = _TRACKED.match(template)
    return (match.group(1).strip(), match.group(2)) if match else None


def pinned(package: str, version: str) -> str:
    return f"{package}=={version}"


def dockerfile(image: ImageInput) -> str:
    return steps.python_if_missing() + steps.venv() + steps.uv_wheels([*image.packages, *image.pip])
