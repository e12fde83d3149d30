"""Versions decided when the plan is made (pure, given an :class:`~runner.versions.index.Index`): what each
environment asks, the answers or the recorded ones when no index answers, and the environment pinned to them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from fnmatch import fnmatch

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from runner.channels import Channel, Registry, channel
from runner.matrix.model import EnvironmentSpec, Matrix, Resolution, Track, debian_suite
from runner.results.model import EnvironmentResult
from runner.versions.index import (
    DebianIndex,
    Index,
    IndexUnavailable,
    Newest,
    debian_arch,
)


def key(kind: str, package: str, where: str, asked: Track) -> str:
    """The name a resolution is recorded under: ``pypi zarr py3.13 latest``, ``debian python3-zarr forky``."""
    return " ".join((kind, package, where, asked.value))


def pypi_key(name: str, python: str | None, asked: Track) -> str:
    return key("pypi", name, f"py{python or '3'}", asked)


def npm_key(name: str, asked: Track) -> str:
    return key("npm", name, "registry", asked)


def debian_key(package: str, suite: str | None, arch: str) -> str:
    return key("debian", package, f"{suite}/{arch}", Track.SUITE)


@dataclass(frozen=True, kw_only=True)
class _Question:
    key: str
    package: str
    asked: Track
    source: str
    ask: Callable[[], Newest]
    registry: Registry | None = None  # None: the Debian suite's index


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


Suites = dict[tuple[str, str], Callable[[], DebianIndex]]  # (suite, arch) -> its index, fetched once


def _questions(env: EnvironmentSpec, index: Index, suites: Suites) -> Iterator[_Question]:
    python = env.python or "3"
    for tracked in env.tracks:
        pre = tracked.track is Track.LATEST_PRE
        if tracked.registry == "npm":

            def ask_npm(name: str = tracked.name, pre: bool = pre) -> Newest:
                return index.npm_newest(name, pre)

            yield _Question(
                key=npm_key(tracked.name, tracked.track),
                package=tracked.name,
                asked=tracked.track,
                source="npm registry",
                ask=ask_npm,
                registry="npm",
            )
            continue

        def ask(name: str = tracked.name, pre: bool = pre) -> Newest:
            return index.pypi_newest(name, python, pre)

        yield _Question(
            key=pypi_key(tracked.name, python, tracked.track),
            package=tracked.name,
            asked=tracked.track,
            source=f"PyPI, Python {python}, wheels",
            ask=ask,
            registry="pypi",
        )
    suite = env.debian_suite
    if channel(env.channel).VERSIONS_FROM_SUITE and suite is not None:
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
                asked=Track.SUITE,
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
        return replace(recorded[question.key], registry=question.registry)
    none = Resolution(
        package=question.package,
        asked=question.asked,
        version=None,
        source=question.source,
        registry=question.registry,
    )
    try:
        newest = question.ask()
    except LookupError as exc:  # the index answered: there is no such package
        return replace(none, resolved_at=_now(), note=str(exc).strip("'\""))
    except IndexUnavailable as exc:
        before = recorded.get(question.key)
        if before is None or before.version is None:
            return replace(none, note=f"no index answered ({exc}) and no earlier resolution is recorded")
        return replace(  # the history keeps the answer by its question's key, not who was asked
            before,
            recorded=True,
            registry=question.registry,
            note=f"no index answered ({exc}): the resolution recorded at {before.resolved_at}",
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
_SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$")  # what the npm channel installs


def _valid(question: _Question, version: str) -> bool:
    """An index's answer is untrusted text: it must be a version before it reaches a Dockerfile."""
    if question.asked is Track.SUITE:
        return len(version) <= 128 and _DEBIAN_VERSION.match(version) is not None
    if question.registry == "npm":
        return len(version) <= 64 and _SEMVER.match(version) is not None
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
    """Pure: the environment with its tracked entries pinned to what the registries answered."""
    answers = tuple(answers)
    versions = {(a.registry, a.package): a.version for a in answers if a.asked is not Track.SUITE}
    missing = [a for a in answers if a.version is None]
    tracked = {(t.registry, t.name) for t in env.tracks}

    def pinned(how: Channel, entry: str) -> str:
        """An entry left bare by the matrix loader because a registry decides its version, pinned."""
        if how.TRACKS is None:
            return entry
        name = canonicalize_name(Requirement(entry).name) if how.TRACKS == "pypi" else entry
        version = versions.get((how.TRACKS, name))
        return how.pinned(entry, version) if (how.TRACKS, name) in tracked and version else entry

    own = channel(env.channel)
    unresolved = None
    if missing:
        unresolved = "; ".join(f"{a.package} ({a.asked}, {a.source}): {a.note}" for a in missing)
    return replace(
        env,
        packages=tuple(pinned(own, p) for p in env.packages),
        pip=tuple(pinned(channel("pip"), p) for p in env.pip),
        resolved=answers,
        unresolved=unresolved,
    )


def recorded_in(environments: Iterable[EnvironmentResult]) -> dict[str, Resolution]:
    """The answers a ``results.json``'s environments carry, by key (what ``--resume`` keeps)."""
    out: dict[str, Resolution] = {}
    for env in environments:
        for r in env.resolved:
            if r.asked is Track.SUITE:
                out[debian_key(r.package, debian_suite(env.base), debian_arch())] = r
            elif r.registry == "npm":
                out[npm_key(r.package, r.asked)] = r
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
