"""The channel protocol and what a channel tells the image: the one definition every channel module meets."""

from __future__ import annotations

from typing import Literal, Protocol, get_args

from runner.channels.steps import ImageInput

ChannelName = Literal["pip", "apt", "npm", "browser"]
CHANNEL_NAMES: frozenset[str] = frozenset(get_args(ChannelName))
#: where ``latest``/``latest-pre`` is asked: PyPI (through pip) or the npm registry
Registry = Literal["pypi", "npm"]


class Channel(Protocol):
    """One way of installing packages. Implemented by a module (``pip.py``, ``apt.py``, ``npm.py``)."""

    #: the packages come from (or need) the base's Debian suite: the base must be ``debian:SUITE``
    NEEDS_DEBIAN_BASE: bool
    #: the suite's package index decides every package's version (recorded, and installed exactly)
    VERSIONS_FROM_SUITE: bool
    #: the registry that resolves a package whose version is an axis valued ``latest``/``latest-pre``
    #: (``NAME=={axis}`` for pip, ``NAME@{axis}`` for npm); None: no version is tracked (apt: the suite's)
    TRACKS: Registry | None
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

    def tracked(self, template: str) -> tuple[str, str] | None:
        """A package entry whose whole version is one axis: (the package without it, the axis's name)."""
        ...

    def pinned(self, package: str, version: str) -> str:
        """The entry of ``package`` at exactly ``version`` (``zarr==3.4.2``, ``zarrita@0.7.5``)."""
        ...

    def dockerfile(self, image: ImageInput) -> str:
        """The Dockerfile steps that install the packages (``steps.py`` has the shared ones)."""
        ...
