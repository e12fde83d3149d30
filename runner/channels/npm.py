"""The npm channel: packages from the npm registry at exact versions (``zarrita@0.7.5``) under ``/opt/npm``,
run by Debian's Node; Python (for the harness) from the same suite."""

from __future__ import annotations

import re

from runner.channels import steps
from runner.channels.base import Registry
from runner.channels.steps import ImageInput

NEEDS_DEBIAN_BASE = True
VERSIONS_FROM_SUITE = False
TRACKS: Registry | None = "npm"
RUNS_LOCALLY = False

#: an npm package at an exact version: ``zarrita@0.7.5``, ``@zarrita/storage@0.2.0``
_NPM_SPEC = re.compile(
    r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*@[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$"
)


def problem(package: str) -> str | None:
    return None if _NPM_SPEC.match(package) else f"{package!r} is not an exact npm package version (NAME@X.Y.Z)"


def _split(package: str) -> tuple[str, str | None]:
    """(name, version): ``@zarrita/storage@0.2.0`` -> (``@zarrita/storage``, ``0.2.0``); a bare name (a
    tracked entry before its registry answered: ``zarrita``) has no version. A scope's ``@`` is not one."""
    name, at, version = package.rpartition("@")
    return (name, version) if at and name else (package, None)


def library(package: str) -> str:
    """``zarrita@0.7.5`` -> ``zarrita``, ``@zarrita/storage@0.2.0`` -> ``zarrita-storage`` (a bare name too)."""
    return _split(package)[0].lstrip("@").replace("/", "-")


def exact_version(package: str) -> str | None:
    return _split(package)[1]


def slug_head(package: str) -> str:
    version = exact_version(package)
    return library(package) + (f"-{version}" if version else "")


_TRACKED = re.compile(r"^((?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*)@\{(\w+)\}$")


def tracked(template: str) -> tuple[str, str] | None:
    """``zarrita@{zarrita}`` -> (``zarrita``, ``zarrita``); the registry's answer becomes the exact version."""
    match = _TRACKED.match(template)
    return (match.group(1), match.group(2)) if match else None


def pinned(package: str, version: str) -> str:
    return f"{package}@{version}"


def dockerfile(image: ImageInput) -> str:
    """Debian's Node, and npm to install the packages; Python for the harness."""
    return (
        steps.apt(image.apt_update, ["python3", "python3-venv", "nodejs", "npm"])
        + steps.venv()
        + steps.npm(image.packages, image.ca_bundle)
        + steps.wheels(image.pip)
    )
