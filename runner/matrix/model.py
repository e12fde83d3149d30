"""The matrix as the runner knows it: frozen models of a validated ``matrix.yaml`` (settings, the
benchmark, environments) and the names and versions they carry. Loading and validating is ``load.py``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from runner.channels import ChannelName, Registry, channel
from runner.matrix.datasets import DEFAULT_DATASETS
from runner.probes import Access

YamlPath = tuple[str | int, ...]

#: Python of each Debian suite's ``python3`` package: used for slugs and to refuse impossible pins.
#: testing (forky) and unstable (sid) moved to 3.14 in 2026.
DEBIAN_PYTHON = {
    "buster": "3.7",
    "bullseye": "3.9",
    "bookworm": "3.11",
    "trixie": "3.13",
    "forky": "3.14",
    "testing": "3.14",
    "sid": "3.14",
    "unstable": "3.14",
}


class Track(str, Enum):
    """What an index was asked for a package, when the plan is made. ``latest`` and ``latest-pre`` are axis
    values (``NAME=={axis}``); ``suite`` is how every Debian package is resolved, never written."""

    LATEST = "latest"  # the newest final release
    LATEST_PRE = "latest-pre"  # the newest release, pre-releases included
    SUITE = "suite"  # whatever the Debian suite's index lists (apt packages)

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, kw_only=True)
class Tracked:
    """A package whose version an index decides when the plan is made (``zarr=={zarr}`` with zarr: latest)."""

    name: str  # as the registry knows it: ``zarr`` (canonical), ``@zarrita/storage``
    track: Track
    registry: Registry


@dataclass(frozen=True, kw_only=True)
class Resolution:
    """A version an index gave for a package of an environment, when the plan was made."""

    package: str  # as installed: ``zarr`` (pip) or ``python3-zarr`` (apt)
    asked: Track
    version: str | None  # None: no index answered and nothing was recorded
    source: str  # ``PyPI, Python 3.13`` / ``Debian forky main amd64``
    released: str | None = None  # the index's date for this version (PyPI upload time), if it gives one
    resolved_at: str = ""  # when the index said so (UTC, ISO 8601)
    registry: Registry | None = None  # who was asked a tracked version (None: the Debian suite's index)
    recorded: bool = False  # True: the index was unreachable; this is the last resolution recorded
    stale: bool = False  # True: the index answered but its validity had lapsed (an expired Debian Release)
    note: str = ""  # why a recorded resolution was used, why there is none, or how the index was stale

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resolution:
        """From ``results.json``: what was asked becomes a :class:`Track` again (strings live in files only)."""
        return cls(**{**data, "asked": Track(data["asked"])})


@dataclass(frozen=True, kw_only=True)
class Location:
    file: str
    path: YamlPath
    line: int | None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {format_path(self.path) or '(top level)'}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    probe_timeout: float = 300.0
    memory: str = "4g"
    pids_limit: int = 1024
    read_repeats: int = 3
    scale: int = 1
    jobs: int = 0  # probe processes at once per container; 0 = one per CPU
    #: start what a probe needs once per container (harness.py): a Python probe is forked from a process that
    #: imported its library, a page opens in the container's one Chromium; off: everything fresh per task
    fork: bool = True
    #: how readers are given each archive: a local path, and over HTTP from the run's servers (runner/served)
    access: tuple[Access, ...] = ("file",)
    server_base: str = "debian:bookworm"  # the servers' image: this suite's nginx

    @property
    def server(self) -> EnvironmentSpec:
        """The servers' image as an environment: Debian's nginx (run as a service, never as a probe)."""
        return EnvironmentSpec(
            slug="http-server",
            base=self.server_base,
            channel="apt",
            packages=("nginx",),
            python=python_of(self.server_base),
        )


@dataclass(frozen=True, kw_only=True)
class BenchmarkSettings:
    """The store benchmark: which datasets, how often, how big, and where stores are written."""

    datasets: tuple[str, ...] = DEFAULT_DATASETS
    repeats: int = 7  # timed rounds, after the warm-up
    warmup: int = 1  # untimed rounds first (imports, allocator, page cache)
    size: int = 2000  # the synthetic int32 array is size x size (the original benchmark: 10 000)
    compressor: str = "none"  # the same codec for every store; "none" isolates the store's own cost
    storage: Literal["tmpfs", "disk"] = "tmpfs"  # where stores live: container memory, or a bind mount
    timeout: float = 1800.0  # seconds per dataset per environment
    mnist: str | None = None  # IDX file (.gz or not) or Keras mnist.npz; None: Keras cache, then download
    download: bool = True  # may MNIST be fetched when no local copy exists
    #: the image package-shipped datasets are loaded in (by their packages' own loaders)
    loader_base: str = "debian:bookworm"
    loader_packages: tuple[str, ...] = ("numpy==2.4.6", "scikit-learn==1.9.1", "matplotlib==3.11.2")
    #: Debian packages of the loader image (data shipped by Debian, e.g. dataset-fashion-mnist)
    loader_apt: tuple[str, ...] = ("dataset-fashion-mnist",)

    @property
    def loader(self) -> EnvironmentSpec:
        """The loader image as an environment: Debian packages (if any) plus pip wheels on top."""
        return EnvironmentSpec(
            slug="dataset-loader",
            base=self.loader_base,
            channel="apt" if self.loader_apt else "pip",
            packages=self.loader_apt or self.loader_packages,
            pip=self.loader_packages if self.loader_apt else (),
            python=python_of(self.loader_base),
        )

    mnist_source: Location | None = field(default=None, compare=False)  # where benchmark.mnist was set


@dataclass(frozen=True, kw_only=True)
class EnvironmentSpec:
    """One environment = one image: base + channel + pinned package set."""

    slug: str
    base: str
    channel: ChannelName
    packages: tuple[str, ...]
    pip: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()  # globs over probe ids; empty = every probe of the declared libraries
    python: str | None = None
    source: Location | None = field(default=None, compare=False)
    #: packages whose version a registry decides when the plan is made (``zarr=={zarr}``, zarr: latest)
    tracks: tuple[Tracked, ...] = ()
    #: what the indexes answered (filled by ``runner.resolve``; apt packages are always resolved)
    resolved: tuple[Resolution, ...] = ()
    #: why this environment cannot be built as asked (a tracked version no index gave, none recorded)
    unresolved: str | None = None

    @property
    def asked(self) -> dict[str, str]:
        """Package -> what was asked for where an index decides (``{"zarr": "latest"}``)."""
        return {t.name: str(t.track) for t in self.tracks}

    @property
    def libraries(self) -> frozenset[str]:
        """Canonical names of the libraries this environment declares (``python3-gdal`` -> ``gdal``)."""
        return frozenset(self.pins)

    @property
    def pins(self) -> dict[str, str | None]:
        """Library -> exact pinned version, or None where the version is left to the installer or the suite."""
        entries = [(p, channel(self.channel)) for p in self.packages] + [(p, channel("pip")) for p in self.pip]
        return {how.library(package): how.exact_version(package) for package, how in entries}

    @property
    def debian_suite(self) -> str | None:
        return debian_suite(self.base)


@dataclass(frozen=True, kw_only=True)
class Matrix:
    path: str
    sha256: str
    settings: Settings
    environments: tuple[EnvironmentSpec, ...]
    fixtures: tuple[str, ...] | None
    benchmark: BenchmarkSettings | None = None  # None: the matrix has no benchmark section
    #: fixture -> the writers (``ENV-GLOB.PROBE-GLOB``) that write it; a costly fixture has no others
    writers_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def format_path(path: YamlPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def debian_suite(base: str) -> str | None:
    name, _, tag = base.partition(":")
    if name in ("debian", "docker.io/library/debian") and tag:
        return tag.split("-")[0]
    return None


def library_name(package: str, channel_name: ChannelName) -> str:
    """The library a package provides: ``zarr==2.18.7`` -> ``zarr``, ``python3-netcdf4`` -> ``netcdf4``,
    ``zarrita@0.7.5`` -> ``zarrita``, ``@zarrita/storage@0.2.0`` -> ``zarrita-storage``."""
    return channel(channel_name).library(package)


_PYTHON_TAG = re.compile(r"^(?:.*/)?python:(\d+\.\d+)")


def python_of(base: str) -> str | None:
    suite = debian_suite(base)
    if suite is not None:
        return DEBIAN_PYTHON.get(suite)
    match = _PYTHON_TAG.match(base)
    return match.group(1) if match else None
