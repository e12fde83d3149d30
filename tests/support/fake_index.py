"""A package index with no network: what ``runner.resolve`` asks in unit tests, answered from tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from runner.versions.index import DebianIndex, IndexUnavailable, Newest


@dataclass
class FakeIndex:
    #: (name, python) -> (final, pre-release); a name missing here is "not on PyPI" (unavailable)
    pypi: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    debian: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: npm name -> (latest dist-tag, published last); a name missing here is "not answered" (unavailable)
    npm: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    valid_until: datetime | None = None
    down: bool = False  # no index answers at all
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def pypi_newest(self, name: str, python: str, pre: bool) -> Newest:
        self.asked.append(("pypi", name, python, "pre" if pre else "final"))
        if self.down or (name, python) not in self.pypi:
            raise IndexUnavailable(f"pip index versions {name}: connection refused")
        final, prerelease = self.pypi[(name, python)]
        return Newest(version=prerelease if pre else final, released="2026-10-27")

    def npm_newest(self, name: str, pre: bool) -> Newest:
        self.asked.append(("npm", name, "pre" if pre else "final"))
        if self.down or name not in self.npm:
            raise IndexUnavailable(f"https://registry.npmjs.org/{name}: connection refused")
        final, prerelease = self.npm[name]
        return Newest(version=prerelease if pre else final, released="2026-11-12")

    def debian_versions(self, suite: str, arch: str) -> DebianIndex:
        self.asked.append(("debian", suite, arch))
        if self.down or suite not in self.debian:
            raise IndexUnavailable(f"http://mirror/dists/{suite}/InRelease: connection refused")
        return DebianIndex(
            versions=self.debian[suite], date=datetime(2026, 10, 30, tzinfo=timezone.utc), valid_until=self.valid_until
        )


#: What every unit test's runner sees unless a test says otherwise: the apt packages the test matrices
#: name, at fixed versions, and no tracked pip package.
DEFAULT = FakeIndex(
    pypi={("zarr", "3.13"): ("3.4.2", "3.5.0rc1"), ("numcodecs", "3.13"): ("0.17.1", "0.17.1")},
    debian={
        suite: {
            "python3-gdal": "3.6.2+dfsg-1+b2",
            "python3-netcdf4": "1.6.2-1+b1",
            "python3-zarr": "3.4.1-2",
            "python3-numcodecs": "0.17.0+ds-2",
            "dataset-fashion-mnist": "0.0~git20200523-2",
        }
        for suite in ("bullseye", "bookworm", "trixie", "forky", "sid", "testing")
    },
)
