"""The apt channel: Debian's own packages of the base's suite (``python3-gdal``), at the version the suite's
index lists when the plan is made; extra wheels (``pip:``) go into a venv that sees them."""

from __future__ import annotations

import re

from runner.channels import steps
from runner.channels.base import Registry
from runner.channels.steps import ImageInput

NEEDS_DEBIAN_BASE = True
VERSIONS_FROM_SUITE = True
TRACKS: Registry | None = None
RUNS_LOCALLY = False

_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def problem(package: str) -> str | None:
    return None if _DEBIAN_PACKAGE.match(package) else f"{package!r} is not a Debian package name"


def library(package: str) -> str:
    return package.removeprefix("python3-")


def exact_version(package: str) -> str | None:
    return None  # the suite's index decides


def slug_head(package: str) -> str:
    return package


def tracked(template: str) -> tuple[str, str] | None:
    return None  # a Debian package's version is the suite's


def pinned(package: str, version: str) -> str:
    return package  # the image pins the suite's version itself (``apt.dockerfile``)


def dockerfile(image: ImageInput) -> str:
    """Debian's packages at the versions the suite's index gave, and a venv that sees them."""
    pinned = [f"{p}={image.versions[p]}" if p in image.versions else p for p in image.packages]
    return (
        steps.apt(image.apt_update, ["python3", "python3-venv", *pinned])
        + steps.venv(system_site_packages=True)
        + steps.wheels(image.pip)
    )
