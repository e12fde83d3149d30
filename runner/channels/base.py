"""The channel protocol and what a channel tells the image: the one definition every channel module meets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

ChannelName = Literal["pip", "apt", "npm"]
CHANNEL_NAMES: frozenset[str] = frozenset(get_args(ChannelName))


@dataclass(frozen=True, kw_only=True)
class Install:
    """What an image installs, as the Dockerfile template takes it."""

    apt: tuple[str, ...] = ()  # Debian packages (python3 and python3-venv among them when there are any)
    pip: tuple[str, ...] = ()  # requirements for the image's virtual environment
    npm: tuple[str, ...] = ()  # NAME@VERSION, under /opt/npm
    system_site_packages: bool = False  # the venv sees the Debian packages' Python modules


class Channel(Protocol):
    """One way of installing packages. Implemented by a module (``pip.py``, ``apt.py``, ``npm.py``)."""

    #: the packages come from (or need) the base's Debian suite: the base must be ``debian:SUITE``
    NEEDS_DEBIAN_BASE: bool
    #: the suite's package index decides every package's version (recorded, and installed exactly)
    VERSIONS_FROM_SUITE: bool
    #: a package may be written ``NAME=={axis}`` with ``latest``/``latest-pre``, resolved by PyPI
    TRACKS_PYPI: bool
    #: the local engine (no Docker) can make this environment as a virtual environment on the host
    RUNS_LOCALLY: bool

    def problem(self, package: str) -> str | None:
        """Why ``package`` is not a package entry of this channel (None: it is)."""
        ...

    def library(self, package: str) -> str:
        """The library a package provides, as probes name it (``python3-netcdf4`` -> ``netcdf4``)."""
        ...

    def exact_version(self, package: str) -> str | None:
        """The version the entry pins exactly, or None when the installer (or the suite) decides."""
        ...

    def slug_head(self, package: str) -> str:
        """The first package as a default slug starts with (``zarr-2.18.7``, ``python3-gdal``)."""
        ...

    def install(self, packages: Sequence[str], versions: Mapping[str, str]) -> Install:
        """What the image installs for these packages; ``versions``: a resolved version per package."""
        ...
