"""Versions decided when the plan is made: the one module that asks a package index.

- A pip requirement written ``NAME=={axis}`` with the axis value ``latest`` (or ``latest-pre``) becomes
  ``NAME==VERSION``: the newest release pip itself finds for the environment's Python, wheels only (what
  the image build installs), through ``pip index versions``. PyPI's simple JSON API adds the upload date.
- An apt environment's packages get the version the suite's package index (``Packages.xz``) lists; the
  image installs exactly that version.

The image hash covers the resolved versions, so a release rebuilds exactly the environments it touches.
Every answer is recorded (in the history); when no index answers, the last recorded answer is used and
the run says so. With neither, the environment is ``install-failed`` with the reason: never silently
another version.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import lzma
import platform
import re
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from fnmatch import fnmatch
from typing import Protocol

from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from runner.config import EnvironmentSpec, Matrix, Resolution, Track, debian_suite
from runner.results import EnvironmentResult

log = logging.getLogger("runner")

DEFAULT_MIRROR = "http://deb.debian.org/debian"
PYPI_SIMPLE = "https://pypi.org/simple"
#: Caps on what an index may send: a suite's Packages file inflates to ~70 MB today.
MAX_PACKAGES_BYTES = 512 << 20
MAX_SIMPLE_JSON_BYTES = 64 << 20
TIMEOUT_S = 120.0


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


# ----------------------------------------------------------------------------------------- the real index


def _ssl_context() -> ssl.SSLContext:
    from runner.workdir import ca_bundle_path

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
    """PyPI through pip's own query (``pip index versions``), Debian through the suite's index."""

    def __init__(self, mirror: str = DEFAULT_MIRROR) -> None:
        self.mirror = mirror.rstrip("/")

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
        release = _get(f"{self.mirror}/dists/{suite}/InRelease", cap=4 << 20)
        url = f"{self.mirror}/dists/{suite}/main/binary-{arch}/Packages.xz"
        versions = parse_packages(_inflated_lines(_get(url, cap=64 << 20), url))
        return DebianIndex(versions=versions, **release_dates(release))


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


# ------------------------------------------------------------------------------------------- resolving


def key(kind: str, package: str, where: str, asked: str) -> str:
    """The name a resolution is recorded under: ``pypi zarr py3.13 latest``, ``debian python3-zarr forky``."""
    return " ".join((kind, package, where, asked))


def pypi_key(name: str, python: str | None, asked: str) -> str:
    return key("pypi", name, f"py{python or '3'}", asked)


def debian_key(package: str, suite: str | None, arch: str) -> str:
    return key("debian", package, f"{suite}/{arch}", "suite")


@dataclass(frozen=True, kw_only=True)
class _Question:
    key: str
    package: str
    asked: str
    source: str
    ask: Callable[[], Newest]


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


Suites = dict[tuple[str, str], Callable[[], DebianIndex]]  # (suite, arch) -> its index, fetched once


def _questions(env: EnvironmentSpec, index: Index, suites: Suites) -> Iterator[_Question]:
    if env.tracks:
        python = env.python or "3"
        for name, track in env.tracks:
            pre = track is Track.LATEST_PRE

            def ask(name: str = name, pre: bool = pre) -> Newest:
                return index.pypi_newest(name, python, pre)

            yield _Question(
                key=pypi_key(name, python, str(track)),
                package=name,
                asked=str(track),
                source=f"PyPI, Python {python}, wheels",
                ask=ask,
            )
    suite = env.debian_suite
    if env.channel == "apt" and suite is not None:
        arch = debian_arch()
        fetch = suites.setdefault((suite, arch), _once(lambda: index.debian_versions(suite, arch)))
        for package in env.packages:

            def ask_debian(package: str = package, fetch: Callable[[], DebianIndex] = fetch) -> Newest:
                found = fetch()
                if package not in found.versions:
                    raise LookupError(f"Debian {suite} has no package {package!r} for {arch}")
                return Newest(version=found.versions[package], stale=found.stale(datetime.now(timezone.utc)))

            yield _Question(
                key=debian_key(package, suite, arch),
                package=package,
                asked="suite",
                source=f"Debian {suite} main {arch}",
                ask=ask_debian,
            )


def _once(fn: Callable[[], DebianIndex]) -> Callable[[], DebianIndex]:
    """One download per suite, shared by the environments on it (also when it fails)."""
    import threading

    lock = threading.Lock()
    box: list[DebianIndex | BaseException] = []

    def call() -> DebianIndex:
        with lock:
            if not box:
                try:
                    box.append(fn())
                except IndexUnavailable as exc:
                    box.append(exc)
        value = box[0]
        if isinstance(value, BaseException):
            raise value
        return value

    return call


def _answer(question: _Question, recorded: Mapping[str, Resolution], keep: bool) -> Resolution:
    if keep and question.key in recorded:  # --resume: the run being completed keeps its versions
        return recorded[question.key]
    none = Resolution(package=question.package, asked=question.asked, version=None, source=question.source)
    try:
        newest = question.ask()
    except LookupError as exc:  # the index answered: there is no such package
        return replace(none, resolved_at=_now(), note=str(exc).strip("'\""))
    except IndexUnavailable as exc:
        before = recorded.get(question.key)
        if before is None or before.version is None:
            return replace(none, note=f"no index answered ({exc}) and no earlier resolution is recorded")
        return replace(
            before, recorded=True, note=f"no index answered ({exc}): the resolution recorded at {before.resolved_at}"
        )
    if not _valid(question, newest.version):
        return replace(none, resolved_at=_now(), note=f"the index answered a non-version: {newest.version[:80]!r}")
    return replace(
        none,
        version=newest.version,
        released=newest.released,
        resolved_at=_now(),
        stale=bool(newest.stale),
        note=f"{newest.stale}: installed from it anyway (apt told not to check its validity)" if newest.stale else "",
    )


_DEBIAN_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")


def _valid(question: _Question, version: str) -> bool:
    """An index's answer is untrusted text: it must be a version before it reaches a Dockerfile."""
    if question.asked == "suite":
        return len(version) <= 128 and _DEBIAN_VERSION.match(version) is not None
    try:
        Version(version)
    except InvalidVersion:
        return False
    return len(version) <= 64


def resolve(
    matrix: Matrix,
    index: Index,
    recorded: Mapping[str, Resolution],
    only: Sequence[str] = (),
    jobs: int = 8,
    keep: bool = False,
) -> tuple[Matrix, dict[str, Resolution]]:
    """The matrix with every selected environment's versions resolved, and the answers by key (to record).

    ``keep``: use ``recorded`` answers without asking (``--resume`` completes a run with its own versions).
    """
    selected = [e for e in matrix.environments if not only or any(fnmatch(e.slug, g) for g in only)]
    suites: Suites = {}
    asked = {e.slug: list(_questions(e, index, suites)) for e in selected}
    unique = {q.key: q for questions in asked.values() for q in questions}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        answers = dict(zip(unique, pool.map(lambda q: _answer(q, recorded, keep), unique.values()), strict=True))
    environments = tuple(
        apply(env, [answers[q.key] for q in asked[env.slug]]) if env.slug in asked else env
        for env in matrix.environments
    )
    return replace(matrix, environments=environments), answers


def apply(env: EnvironmentSpec, answers: Iterable[Resolution]) -> EnvironmentSpec:
    """Pure: the environment with its tracked requirements pinned to what the index answered."""
    answers = tuple(answers)
    versions = {canonicalize_name(a.package): a.version for a in answers if a.asked != "suite"}
    missing = [a for a in answers if a.version is None]

    def pinned(requirement: str) -> str:
        name = canonicalize_name(Requirement(requirement).name)
        version = versions.get(name)
        return f"{requirement}=={version}" if name in dict(env.tracks) and version else requirement

    packages = tuple(pinned(p) for p in env.packages) if env.channel == "pip" else env.packages
    unresolved = None
    if missing:
        unresolved = "; ".join(f"{a.package} ({a.asked}, {a.source}): {a.note}" for a in missing)
    return replace(
        env, packages=packages, pip=tuple(pinned(p) for p in env.pip), resolved=answers, unresolved=unresolved
    )


def recorded_in(environments: Iterable[EnvironmentResult]) -> dict[str, Resolution]:
    """The answers a ``results.json``'s environments carry, by key (what ``--resume`` keeps)."""
    out: dict[str, Resolution] = {}
    for env in environments:
        for raw in env.resolved:
            r = Resolution(**raw)
            if r.asked == "suite":
                out[debian_key(r.package, debian_suite(env.base), debian_arch())] = r
            else:
                out[pypi_key(r.package, env.python, r.asked)] = r
    return out


def describe(env: EnvironmentSpec) -> str:
    """One line per resolution, for ``--list`` and the log."""
    parts = []
    for r in env.resolved:
        if r.version is None:
            parts.append(f"{r.package} {r.asked}: unresolved ({r.note})")
            continue
        when = f", released {r.released}" if r.released else ""
        how = f" [recorded: {r.note}]" if r.recorded else (f" [{r.note}]" if r.note else "")
        parts.append(f"{r.package} {r.asked} -> {r.version} ({r.source}{when}){how}")
    return "; ".join(parts)
