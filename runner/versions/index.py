"""Versions decided when the plan is made: the one module that asks a package index.

- A pip requirement written ``NAME=={axis}`` with the axis value ``latest`` (or ``latest-pre``) becomes
  ``NAME==VERSION``: the newest release pip itself finds for the environment's Python, wheels only (what
  the image build installs), through ``pip index versions``. PyPI's simple JSON API adds the upload date.
- An apt environment's packages get the version the suite's package index (``Packages.xz``) lists; the
  image installs exactly that version. A suite's index, parsed, is kept (``~/.cache/zipstore-matrix/indexes``)
  by the SHA-256 the suite's ``InRelease`` gives for it: fetched and parsed again only when that changes.

The image hash covers the resolved versions, so a release rebuilds exactly the environments it touches.
Every answer is recorded (in the history); when no index answers, the last recorded answer is used and
the run says so. With neither, the environment is ``install-failed`` with the reason: never silently
another version.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import lzma
import os
import platform
import re
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from runner.resources import ca_bundle_path

log = logging.getLogger("runner")

DEFAULT_MIRROR = "http://deb.debian.org/debian"
PYPI_SIMPLE = "https://pypi.org/simple"
NPM_REGISTRY = "https://registry.npmjs.org"
#: Caps on what an index may send: a suite's Packages file inflates to ~70 MB today.
MAX_PACKAGES_BYTES = 512 << 20
MAX_SIMPLE_JSON_BYTES = 64 << 20
TIMEOUT_S = 120.0
#: where parsed Debian suite indexes are kept between runs, by the SHA-256 of their Packages.xz
DEFAULT_CACHE = Path("~/.cache/zipstore-matrix/indexes")


class IndexUnavailable(Exception):
    """The index did not answer (network, HTTP error, an answer that cannot be read)."""


@dataclass(frozen=True, kw_only=True)
class Newest:
    version: str
    released: str | None = None
    stale: str = ""  # the index answered, but its own validity had lapsed: said how


@dataclass(frozen=True, kw_only=True)
class DebianIndex:
    """A suite's package index: package -> version, and the dates its signed Release file gives."""

    versions: Mapping[str, str]
    date: datetime | None = None
    valid_until: datetime | None = None

    def stale(self, now: datetime) -> str:
        """Why apt would refuse this index (its Valid-Until has passed), or "" when it is current."""
        if self.valid_until is None or self.valid_until > now:
            return ""
        dated = f"dated {self.date:%Y-%m-%d}, " if self.date else ""
        return f"the mirror's index ({dated}valid until {self.valid_until:%Y-%m-%d}) has expired"


class Index(Protocol):
    """What the resolver asks; the real one talks to PyPI and a Debian mirror, tests pass a fake."""

    def pypi_newest(self, name: str, python: str, pre: bool) -> Newest: ...

    def debian_versions(self, suite: str, arch: str) -> DebianIndex: ...

    def npm_newest(self, name: str, pre: bool) -> Newest: ...


# ----------------------------------------------------------------------------------------- the real index


def _ssl_context() -> ssl.SSLContext:
    path = ca_bundle_path()
    return ssl.create_default_context(cafile=str(path) if path else None)


def _get(url: str, *, cap: int, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=_ssl_context()) as response:
            body: bytes = response.read(cap + 1)
    except (OSError, ValueError) as exc:
        raise IndexUnavailable(f"{url}: {getattr(exc, 'reason', None) or exc}") from exc
    if len(body) > cap:
        raise IndexUnavailable(f"{url}: larger than {cap:,} bytes")
    return body


_PIP_NEWEST = re.compile(r"^(\S+) \(([^)\s]+)\)\s*$", re.M)


class PackageIndex:
    """PyPI through pip's own query (``pip index versions``), Debian through the suite's index, npm through
    the registry's package document."""

    def __init__(
        self, mirror: str = DEFAULT_MIRROR, npm_registry: str = NPM_REGISTRY, cache: Path | None = DEFAULT_CACHE
    ) -> None:
        self.mirror = mirror.rstrip("/")
        self.npm_registry = npm_registry.rstrip("/")
        self.cache = cache.expanduser() if cache is not None else None

    def npm_newest(self, name: str, pre: bool) -> Newest:
        """``latest``: the registry's ``latest`` dist-tag (what ``npm install NAME`` installs); ``latest-pre``:
        the version published last, pre-releases included. The date is the registry's ``time`` of it."""
        url = f"{self.npm_registry}/{name.replace('/', '%2f')}"
        try:
            doc = json.loads(_get(url, cap=MAX_SIMPLE_JSON_BYTES, accept="application/json"))
        except ValueError as exc:
            raise IndexUnavailable(f"{url}: not JSON ({exc})") from exc
        return newest_npm(doc, pre, url)

    def pypi_newest(self, name: str, python: str, pre: bool) -> Newest:
        command = [sys.executable, "-m", "pip", "index", "versions", name, "--python-version", python]
        command += ["--only-binary=:all:", "--disable-pip-version-check", "--no-input"] + (["--pre"] if pre else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise IndexUnavailable(f"pip index versions {name}: no answer in {TIMEOUT_S:.0f}s") from exc
        match = _PIP_NEWEST.search(done.stdout)
        if done.returncode != 0 or match is None:
            words = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()
            raise IndexUnavailable(f"pip index versions {name} --python-version {python}: {' '.join(words[-2:])}")
        version = match.group(2)
        return Newest(version=version, released=self.pypi_released(name, version))

    def pypi_released(self, name: str, version: str) -> str | None:
        """The first upload of ``version`` (PEP 691/700 simple JSON); None when PyPI does not say."""
        url = f"{PYPI_SIMPLE}/{canonicalize_name(name)}/"
        try:
            body = _get(url, cap=MAX_SIMPLE_JSON_BYTES, accept="application/vnd.pypi.simple.v1+json")
            files = json.loads(body).get("files", [])
        except (IndexUnavailable, ValueError, AttributeError) as exc:
            log.debug("release date of %s %s: %s", name, version, exc)
            return None
        wanted = Version(version)
        times = sorted(
            str(f["upload-time"])
            for f in files
            if isinstance(f, dict) and f.get("upload-time") and _file_version(str(f.get("filename", ""))) == wanted
        )
        return times[0][:10] if times else None

    def debian_versions(self, suite: str, arch: str) -> DebianIndex:
        """The suite's ``Packages.xz``, parsed: kept in the cache by the SHA-256 the suite's ``InRelease``
        gives for it, so an index that has not changed since the last run is neither downloaded nor parsed
        again (~10 MB and ~1.4 s of parsing a suite). Only a file whose bytes match that hash is kept."""
        release = _get(f"{self.mirror}/dists/{suite}/InRelease", cap=4 << 20)
        path = f"main/binary-{arch}/Packages.xz"
        url = f"{self.mirror}/dists/{suite}/{path}"
        sha256 = release_sha256(release, path)
        kept = self.cache / f"debian-{sha256}.json" if self.cache is not None and sha256 else None
        versions = _kept_versions(kept) if kept is not None else None
        if versions is None:
            data = _get(url, cap=64 << 20)
            versions = parse_packages(_inflated_lines(data, url))
            if kept is not None and hashlib.sha256(data).hexdigest() == sha256:
                _keep_versions(kept, versions)
        return DebianIndex(versions=versions, **release_dates(release))


def newest_npm(doc: object, pre: bool, where: str) -> Newest:
    """Pure: the answer in an npm registry package document (untrusted: every field is checked)."""
    if not isinstance(doc, dict):
        raise IndexUnavailable(f"{where}: not a package document")
    if doc.get("error"):
        raise LookupError(f"the npm registry has no such package: {str(doc['error'])[:200]}")
    tags, times, versions = doc.get("dist-tags"), doc.get("time"), doc.get("versions")
    times = times if isinstance(times, dict) else {}
    if pre:
        published = [(str(t), str(v)) for v, t in times.items() if isinstance(versions, dict) and v in versions]
        version = max(published)[1] if published else None
    else:
        version = tags.get("latest") if isinstance(tags, dict) else None
    if not isinstance(version, str) or not version:
        raise IndexUnavailable(f"{where}: no {'version' if pre else 'latest dist-tag'} in the package document")
    released = times.get(version)
    return Newest(version=version, released=str(released)[:10] if isinstance(released, str) else None)


def release_sha256(text: bytes, path: str) -> str | None:
    """The SHA-256 a Release/InRelease file gives for ``path`` (in its ``SHA256:`` list), or None."""
    listed = False
    for line in text.split(b"\n"):
        if not line.startswith(b" "):
            listed = line.rstrip() == b"SHA256:"
            continue
        fields = line.split()
        if listed and len(fields) == 3 and fields[2] == path.encode() and _SHA256.fullmatch(fields[0]):
            return fields[0].decode("ascii")
    return None


_SHA256 = re.compile(rb"[0-9a-f]{64}")
#: suites' indexes kept (each ~2 MB): the oldest beyond this are removed
KEPT_INDEXES = 16


def _kept_versions(path: Path) -> dict[str, str] | None:
    """A suite's versions kept by an earlier run, or None (none kept, or not a file this module wrote)."""
    try:
        if path.stat().st_size > MAX_PACKAGES_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return None
    return data


def _keep_versions(path: Path, versions: Mapping[str, str]) -> None:
    """Keep a suite's versions for later runs (written whole or not at all); a cache that cannot be written
    costs the next run a download, nothing else."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(versions, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
        kept = sorted(path.parent.glob("debian-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEPT_INDEXES:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("could not keep %s: %s", path, exc)


def release_dates(text: bytes) -> dict[str, datetime | None]:
    """``Date`` and ``Valid-Until`` of a Release/InRelease file (RFC 2822 dates), None where absent."""
    from email.utils import parsedate_to_datetime

    out: dict[str, datetime | None] = {"date": None, "valid_until": None}
    for line in text.split(b"\n", 200)[:200]:
        field, _, value = line.decode("utf-8", "replace").partition(": ")
        name = {"Date": "date", "Valid-Until": "valid_until"}.get(field)
        if name:
            with contextlib.suppress(TypeError, ValueError):
                out[name] = parsedate_to_datetime(value.strip())
    return out


def _file_version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def _inflated_lines(data: bytes, where: str) -> Iterator[bytes]:
    """The lines of an xz file, inflated as they are read (a suite's index is ~70 MB inflated: it is never
    held whole), capped at :data:`MAX_PACKAGES_BYTES` in all and 1 MiB a line."""
    seen = 0
    try:
        with lzma.open(io.BytesIO(data)) as fh:
            while line := fh.readline(1 << 20):
                seen += len(line)
                if seen > MAX_PACKAGES_BYTES:
                    raise IndexUnavailable(f"{where}: inflates past {MAX_PACKAGES_BYTES:,} bytes")
                yield line.rstrip(b"\n")
    except (lzma.LZMAError, EOFError) as exc:
        raise IndexUnavailable(f"{where}: not an xz file ({exc})") from exc


def parse_packages(lines: Iterable[bytes]) -> dict[str, str]:
    """A Debian ``Packages`` index, line by line -> package -> version (the highest, should one appear
    twice)."""
    out: dict[str, str] = {}
    name = version = None
    for line in _ended(lines):
        if not line.strip():
            if name and version:
                out[name] = version if name not in out else max(out[name], version, key=_debian_key)
            name = version = None
        elif line.startswith(b"Package: "):
            name = line[9:].strip().decode("utf-8", "replace")
        elif line.startswith(b"Version: "):
            version = line[9:].strip().decode("utf-8", "replace")
    return out


def _ended(lines: Iterable[bytes]) -> Iterator[bytes]:
    yield from lines
    yield b""


def _debian_key(version: str) -> tuple[int, str]:
    """Good enough to break a tie between two stanzas of one suite (epoch first, then the text)."""
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    return (int(epoch) if epoch.isdigit() else 0, rest)


def debian_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
