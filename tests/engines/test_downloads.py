"""The download cache the image builds share: which paths it answers and where it fetches them, index pages
forwarded every time with their links pointed at it, files fetched once and then served from disk, caps, and
the builder handing it to every build of a run (as build arguments the Dockerfile declares)."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from runner.engines import downloads
from runner.engines.builder import ImageBuilder
from runner.engines.docker_engine import _gateway
from runner.engines.downloads import DownloadCache, Refused, rewrite, route
from runner.engines.images import image_plan
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.matrix.model import EnvironmentSpec
from runner.results.model import EnvStatus
from tests.support.fake_engine import FakeEngine

TWO = """\
version: 1
fixtures: [int32-random]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["six=={six}"]
    matrix: {six: ["1.16.0", "1.17.0"]}
"""


def two_envs() -> tuple[EnvironmentSpec, ...]:
    return parse_matrix(TWO, "m.yaml", catalog()).environments


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/pypi/simple/zarr/", ("page", "https://pypi.org/simple/zarr/", None)),
        (
            "/pypi/files/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl",
            (
                "file",
                "https://files.pythonhosted.org/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl",
                "pypi/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl",
            ),
        ),
        (
            "/pypi/files/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl.metadata",
            (
                "file",
                "https://files.pythonhosted.org/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl.metadata",
                "pypi/packages/ab/cd/0123/zarr-3.1.6-py3-none-any.whl.metadata",
            ),
        ),
        ("/npm/zarrita", ("page", "https://registry.npmjs.org/zarrita", None)),
        ("/npm/@zarrita%2fstorage", ("page", "https://registry.npmjs.org/@zarrita%2fstorage", None)),
        (
            "/npm/@zarrita/storage/-/storage-0.2.0.tgz",
            (
                "file",
                "https://registry.npmjs.org/@zarrita/storage/-/storage-0.2.0.tgz",
                "npm/@zarrita/storage/-/storage-0.2.0.tgz",
            ),
        ),
    ],
)
def test_a_path_names_one_upstream_and_one_place_on_disk(path: str, want: tuple[str, str, str | None]) -> None:
    assert route(path) == want


@pytest.mark.parametrize(
    "path",
    [
        "/pypi/files/packages/../../etc/passwd",
        "/pypi/files/packages/%2e%2e/x.whl",
        "/pypi/simple/zarr",  # pip asks with the slash; anything else is not pip
        "/pypi/simple/zarr/?x=1",
        "/npm/zarrita/-/../../x.tgz",
        "/npm/zarrita/-/zarrita-1.0.0.exe",
        "/npm/UPPER",
        "/http://evil.example/x",
        "/",
    ],
)
def test_anything_else_is_refused(path: str) -> None:
    with pytest.raises(Refused):
        route(path)


MIRROR = "http://deb.debian.org/debian"


def test_apt_asks_as_of_a_proxy_and_only_debians_mirror_is_answered() -> None:
    deb = "http://deb.debian.org/debian/pool/main/c/chromium/chromium_144.0-1_amd64.deb"
    assert route(deb, MIRROR) == (
        "file",
        deb,
        "debian/deb.debian.org/debian/pool/main/c/chromium/chromium_144.0-1_amd64.deb",
    )
    quoted = "http://deb.debian.org/debian/pool/main/o/openssl/openssl_3.0.20-1%7edeb12u2_amd64.deb"
    assert (
        route(quoted, MIRROR)[2]
        == "debian/deb.debian.org/debian/pool/main/o/openssl/openssl_3.0.20-1~deb12u2_amd64.deb"
    )
    release = "http://deb.debian.org/debian/dists/trixie/InRelease"
    assert route(release, MIRROR) == ("page", release, None)  # the signed index: asked upstream every time
    assert route("http://10.0.0.1:9/pypi/simple/six/", MIRROR, own="10.0.0.1:9") == (
        "page",
        "https://pypi.org/simple/six/",
        None,
    )
    for refused in (
        "http://evil.example/debian/pool/x.deb",
        "https://deb.debian.org/debian/pool/main/x.deb",
        "http://deb.debian.org/elsewhere/pool/x.deb",
        "http://deb.debian.org/debian/pool/main/../../../etc/passwd",
        "http://deb.debian.org/debian/pool/main/%2e%2e/%2e%2e/x.deb",
        "http://deb.debian.org/debian/pool/main/a%2fb.deb",
        "http://deb.debian.org/debian/README",
        "http://10.0.0.2:9/pypi/simple/six/",
    ):
        with pytest.raises(Refused):
            route(refused, MIRROR, own="10.0.0.1:9")


def test_links_in_a_page_point_at_the_cache_and_nothing_else_changes() -> None:
    page = (
        b'<a href="https://files.pythonhosted.org/packages/a/b/x.whl#sha256=00">x</a>'
        b'{"tarball":"https://registry.npmjs.org/zarrita/-/zarrita-0.7.5.tgz","integrity":"sha512-AA"}'
    )
    assert rewrite(page, "http://10.0.0.1:9") == (
        b'<a href="http://10.0.0.1:9/pypi/files/packages/a/b/x.whl#sha256=00">x</a>'
        b'{"tarball":"http://10.0.0.1:9/npm/zarrita/-/zarrita-0.7.5.tgz","integrity":"sha512-AA"}'
    )


class Upstream:
    """What the cache fetches, counted: url -> (status, body)."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, url: str, accept: str) -> tuple[int, str, IO[bytes]]:
        self.asked.append(url)
        status, body = self.answers.get(url, (404, b"Not Found"))
        return status, "text/html", io.BytesIO(body)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[DownloadCache, Upstream]]:
    wheel = "https://files.pythonhosted.org/packages/a/b/six-1.0-py3-none-any.whl"
    upstream = Upstream(
        {
            "https://pypi.org/simple/six/": (200, f'<a href="{wheel}#sha256=00">six</a>'.encode()),
            wheel: (200, b"PK\x03\x04 a wheel"),
        }
    )
    cache = DownloadCache(tmp_path / "downloads", "127.0.0.1", opener=upstream)
    cache.start()
    try:
        yield cache, upstream
    finally:
        cache.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_pages_are_forwarded_every_time_and_files_fetched_once(served: tuple[DownloadCache, Upstream]) -> None:
    cache, upstream = served
    for _ in range(2):
        status, page = get(f"{cache.base}/pypi/simple/six/")
        assert status == 200
        assert f'href="{cache.base}/pypi/files/packages/a/b/six-1.0-py3-none-any.whl#sha256=00"'.encode() in page
    for _ in range(3):
        assert get(f"{cache.base}/pypi/files/packages/a/b/six-1.0-py3-none-any.whl") == (200, b"PK\x03\x04 a wheel")
    assert upstream.asked.count("https://pypi.org/simple/six/") == 2  # the registry decides every time
    assert upstream.asked.count("https://files.pythonhosted.org/packages/a/b/six-1.0-py3-none-any.whl") == 1
    assert (cache.counts.hits, cache.counts.misses, cache.counts.pages) == (2, 1, 2)
    assert (cache.folder / "pypi/packages/a/b/six-1.0-py3-none-any.whl").read_bytes() == b"PK\x03\x04 a wheel"


def head(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_asked_before_it_is_fetched_a_file_offers_no_ranges_and_costs_nothing(
    served: tuple[DownloadCache, Upstream],
) -> None:
    # uv 0.13.9 asks HEAD of a wheel whose index gives no metadata file, and failed on the 501 it got before
    cache, upstream = served
    wheel = f"{cache.base}/pypi/files/packages/a/b/six-1.0-py3-none-any.whl"
    status, headers = head(wheel)
    assert status == 200 and headers["Accept-Ranges"] == "none" and "Content-Length" not in headers
    assert get(wheel) == (200, b"PK\x03\x04 a wheel")
    status, headers = head(wheel)
    assert status == 200 and headers["Content-Length"] == str(len(b"PK\x03\x04 a wheel")), "its length once kept"
    assert head(f"{cache.base}/pypi/simple/six/")[0] == 405 and head(f"{cache.base}/elsewhere")[0] == 404
    assert upstream.asked == ["https://files.pythonhosted.org/packages/a/b/six-1.0-py3-none-any.whl"]
    assert (cache.counts.hits, cache.counts.misses, cache.counts.pages) == (0, 1, 0)


def test_what_the_cache_does_not_answer_or_upstream_lacks_is_said_and_kept_nowhere(
    served: tuple[DownloadCache, Upstream],
) -> None:
    cache, _ = served
    assert get(f"{cache.base}/pypi/files/packages/../x.whl")[0] == 404
    status, body = get(f"{cache.base}/pypi/files/packages/a/b/gone-1.0-py3-none-any.whl")
    assert (status, body) == (404, b"Not Found")  # the upstream's answer, not a file on disk
    assert not (cache.folder / "pypi/packages/a/b/gone-1.0-py3-none-any.whl").exists()


def test_a_file_over_the_cap_is_refused_and_leaves_no_part_behind(
    served: tuple[DownloadCache, Upstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, upstream = served
    upstream.answers["https://files.pythonhosted.org/packages/a/b/big-1.0-py3-none-any.whl"] = (200, b"x" * 100)
    monkeypatch.setattr(downloads, "FILE_CAP", 10)
    status, body = get(f"{cache.base}/pypi/files/packages/a/b/big-1.0-py3-none-any.whl")
    assert status == 502 and b"larger than 10 bytes" in body
    assert list((cache.folder / "pypi/packages/a/b").iterdir()) == []


def test_every_build_of_a_run_is_given_the_cache_through_arguments_its_dockerfile_declares(tmp_path: Path) -> None:
    engine = FakeEngine(images={"debian:bookworm"}, build_host="127.0.0.1")
    builder = ImageBuilder(
        engine, ca=None, rebuild=False, allow_bootstrap=False, progress=lambda _: None, downloads=tmp_path
    )
    for spec in two_envs():
        result = builder.ensure(spec, image_plan(spec).tag, "1/2")
        assert result.status is EnvStatus.OK
    assert builder._cache is not None
    base = builder._cache.base
    assert [b.buildargs.get("PIP_INDEX_URL") for b in engine.builds] == [f"{base}/pypi/simple/"] * 2
    for name in set(engine.builds[0].buildargs) - {"http_proxy", "no_proxy"}:  # Docker's own: no ARG needed
        assert f"ARG {name}\n" in engine.builds[0].dockerfile  # else the classic builder drops it
    assert get(f"{base}/nothing")[0] == 404  # one server for the run, up until the run closes it
    builder.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/nothing", timeout=2)


@pytest.mark.parametrize(("host", "folder"), [(None, True), ("127.0.0.1", False)])
def test_without_an_address_for_builds_or_with_the_cache_off_builds_download_for_themselves(
    tmp_path: Path, host: str | None, folder: bool
) -> None:
    engine = FakeEngine(images={"debian:bookworm"}, build_host=host)
    builder = ImageBuilder(
        engine,
        ca=None,
        rebuild=False,
        allow_bootstrap=False,
        progress=lambda _: None,
        downloads=tmp_path if folder else None,
    )
    spec = two_envs()[0]
    builder.ensure(spec, image_plan(spec).tag, "1/1")
    assert engine.builds and "PIP_INDEX_URL" not in engine.builds[0].buildargs
    builder.close()


@pytest.mark.parametrize(
    ("config", "gateway"),
    [
        ([{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}], "172.17.0.1"),
        ([{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"}], "10.9.0.254"),
        ([{"Subnet": "172.17.0.0/16"}], "172.17.0.1"),  # Docker 20.10's default bridge names no gateway
        ([{"Subnet": "fd00::/64"}], None),
        ([{"Subnet": "not a subnet"}], None),
        ([], None),
    ],
)
def test_the_builds_reach_the_host_at_the_bridges_gateway_or_its_subnets_first_address(
    config: list[dict[str, str]], gateway: str | None
) -> None:
    assert _gateway(config) == gateway
