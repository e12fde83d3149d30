"""One download cache for every image build of a run, and of the runs after it: a pull-through cache of the
files pip, uv, npm and apt download (PyPI's wheels, npm's tarballs, Debian's packages), served on the host to
the builds.

A cold run builds ~30 images, and without it each one downloads its own copy of numpy, zarr, numcodecs, the
Node packages, Python and Chromium from Debian... The builds are given this server as their package index
(``PIP_INDEX_URL``, which the pip channel's uv step passes on as its index; ``npm_config_registry``) and apt
its HTTP proxy (``http_proxy``, for the Debian mirror only), as build arguments: the Dockerfile's text, and so
the image's hash, do not change. It forwards the index pages (PyPI's simple pages, npm's package documents,
Debian's ``dists/``) upstream every time, so what a build resolves is the registry's answer of the day; it
keeps each file they name (wheels, tarballs, Debian's ``pool/``) under ``folder`` and serves it from there
from then on. pip and uv check every file against the SHA-256 in the page, npm against the document's
``integrity``, apt against the signed index: a file spoiled on disk fails the build loudly, it is never
installed.

The server answers only these paths, fetches only from these upstreams (it is no open proxy), and caps what
it reads from them; it listens on the address the builds reach the host at (the engine's bridge), never on
all of them.

Opt-in (``--download-cache``): on the default matrix with fast mirrors a filled cache saved nothing and
filling it cost 27 % (bench/coldbuild.py; figures in the README), since it stores each file before serving
it and opens a new upstream connection per file.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import ssl
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

from runner.resources import ca_bundle_path

log = logging.getLogger(__name__)

PYPI_SIMPLE = "https://pypi.org/simple/"
PYPI_FILES = "https://files.pythonhosted.org/"
NPM_REGISTRY = "https://registry.npmjs.org/"
DEBIAN_MIRROR = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PAGE_CAP = 64 << 20  # an index page or package document (numpy's simple page is ~3 MB, big npm documents ~30)
FILE_CAP = 2 << 30  # one wheel or tarball
TIMEOUT_S = 120.0
#: the port asked for first: the builds' arguments name it, and Docker's layer cache keys on them, so the same
#: port night after night lets an unchanged step be reused (another one when it is taken)
PORT = 47031
CHUNK = 1 << 20

_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9@+_][A-Za-z0-9@+_.,=~-]{0,250}$")
_NPM_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]{0,213}$")

#: (url, accept) -> the upstream's response (status, content type, body stream); swapped in tests
Opener = Callable[[str, str], tuple[int, str, IO[bytes]]]


def _open_upstream(url: str, accept: str) -> tuple[int, str, IO[bytes]]:
    path = ca_bundle_path()
    context = ssl.create_default_context(cafile=str(path) if path else None)
    request = urllib.request.Request(url, headers={"Accept": accept or "*/*", "User-Agent": "zipstore-matrix"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", "text/plain"), exc
    return response.status, response.headers.get("Content-Type", "application/octet-stream"), response


class Refused(Exception):
    """A request this cache does not answer: (HTTP status, why)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass
class Counts:
    """What the builds asked of the cache: files served from disk and fetched, and their bytes."""

    hits: int = 0
    misses: int = 0
    bytes_from_cache: int = 0
    bytes_fetched: int = 0
    pages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, hit: bool, size: int) -> None:
        with self.lock:
            if hit:
                self.hits, self.bytes_from_cache = self.hits + 1, self.bytes_from_cache + size
            else:
                self.misses, self.bytes_fetched = self.misses + 1, self.bytes_fetched + size

    def summary(self) -> str:
        return (
            f"{self.hits} file(s) from the cache ({self.bytes_from_cache / 1e6:.0f} MB), {self.misses} fetched "
            f"({self.bytes_fetched / 1e6:.0f} MB), {self.pages} index page(s) forwarded"
        )


def route(path: str, mirror: str = DEBIAN_MIRROR, own: str = "") -> tuple[str, str, str | None]:
    """A request path -> (kind, upstream URL, cache path relative to the folder, or None for a page that is
    always forwarded). A proxy request (apt's: an absolute URL) is answered for the Debian ``mirror`` only, and
    for this server's own address (``own``, host:port) as its path. Raises :class:`Refused` for anything else;
    pure."""
    parsed = urllib.parse.urlsplit(path)
    if parsed.query or parsed.fragment or ".." in parsed.path:
        raise Refused(404, "not a path of this cache")
    if parsed.scheme:
        debian = urllib.parse.urlsplit(mirror.rstrip("/") + "/")
        if parsed.scheme == "http" and parsed.netloc == own:
            return route(parsed.path, mirror)
        if (parsed.scheme, parsed.netloc) != (debian.scheme, debian.netloc) or not parsed.path.startswith(debian.path):
            raise Refused(403, "not a mirror this cache serves")
        plain = urllib.parse.unquote(parsed.path)  # apt quotes + and ~ in versions (%2b, %7e)
        if ".." in plain or "%2f" in parsed.path.lower() or not all(_SEGMENT.match(p) for p in plain.split("/")[1:]):
            raise Refused(404, "not a path of this cache")
        below = plain[len(debian.path) :]
        if below.startswith("pool/") and below.endswith(".deb"):  # a package: one name, one content
            return "file", path, f"debian/{parsed.netloc}{plain}"
        if below.startswith("dists/"):
            return "page", path, None
        raise Refused(404, "not a path of this cache")
    parts = parsed.path.split("/")[1:]
    if len(parts) == 4 and parts[:2] == ["pypi", "simple"] and parts[3] == "" and _PROJECT.match(parts[2]):
        return "page", f"{PYPI_SIMPLE}{parts[2]}/", None
    if len(parts) >= 4 and parts[:2] == ["pypi", "files"] and all(_SEGMENT.match(p) for p in parts[2:]):
        rest = "/".join(parts[2:])
        return "file", PYPI_FILES + rest, "pypi/" + rest
    if parts[:1] == ["npm"] and len(parts) >= 2:
        name = urllib.parse.unquote("/".join(parts[1:]))
        if "/-/" in name:  # a tarball: NAME/-/FILE.tgz
            package, _, file = name.partition("/-/")
            if _NPM_NAME.match(package) and _SEGMENT.match(file) and file.endswith(".tgz"):
                return "file", f"{NPM_REGISTRY}{package}/-/{file}", f"npm/{package}/-/{file}"
        elif _NPM_NAME.match(name):
            return "page", NPM_REGISTRY + name.replace("/", "%2f"), None
    raise Refused(404, "not a path of this cache")


def rewrite(body: bytes, base: str) -> bytes:
    """An index page whose file links point here instead of upstream (the rest of the page untouched)."""
    return body.replace(PYPI_FILES.encode(), f"{base}/pypi/files/".encode()).replace(
        NPM_REGISTRY.encode(), f"{base}/npm/".encode()
    )


class DownloadCache:
    """The server, for the builds of a run: ``start()`` on the address the builds reach the host at, then
    :meth:`buildargs` for each build, ``stop()`` at the end of the run."""

    def __init__(
        self, folder: Path, host: str, port: int = 0, opener: Opener = _open_upstream, mirror: str = DEBIAN_MIRROR
    ) -> None:
        self.folder = folder
        self.mirror = mirror
        self.host = host
        self.port = port
        self.opener = opener
        self.counts = Counts()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def netloc(self) -> str:
        """The address the builds reach this server at (``host:port``)."""
        return f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.netloc}"

    def buildargs(self) -> Mapping[str, str]:
        """What a build is given: its Dockerfile declares the first three as ``ARG``s, so pip and npm read
        them; the proxy variables are Docker's own build arguments (apt reads ``http_proxy``; pip and npm
        reach this server directly, ``no_proxy``)."""
        return {
            "PIP_INDEX_URL": f"{self.base}/pypi/simple/",
            "PIP_TRUSTED_HOST": self.netloc,
            "npm_config_registry": f"{self.base}/npm/",
            "http_proxy": f"{self.base}/",
            "no_proxy": self.host,
        }

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cache = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                cache.answer(self)

            def do_HEAD(self) -> None:
                cache.head(self)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("download cache: " + format, *args)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="download-cache", daemon=True)
        self._thread.start()
        log.info("download cache for image builds: %s (%s)", self.base, self.folder)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            kind, upstream, cached = route(handler.path, self.mirror, self.netloc)
            if kind == "page":
                self._page(handler, upstream)
            else:
                assert cached is not None
                self._file(handler, upstream, self.folder / cached)
        except Refused as exc:
            self._say(handler, exc.status, str(exc))
        except (OSError, ValueError) as exc:  # upstream unreachable, a timeout, a cap: the build says it
            log.warning("download cache: %s: %s", handler.path[:200], exc)
            self._say(handler, 502, f"upstream: {exc}")

    def head(self, handler: BaseHTTPRequestHandler) -> None:
        """uv asks about a wheel before it fetches it (does the server serve byte ranges, to read the wheel's
        metadata from its end?). The answer: a file of the cache (its length once kept), no ranges, so uv fetches
        it whole; a page is only fetched. Nothing is fetched upstream, nothing counted."""
        try:
            kind, _, cached = route(handler.path, self.mirror, self.netloc)
            status = 200 if kind == "file" else 405
        except Refused as exc:
            status, cached = exc.status, None
        handler.send_response(status)
        handler.send_header("Accept-Ranges", "none")
        if status == 405:
            handler.send_header("Allow", "GET")
        elif status == 200 and cached is not None and (self.folder / cached).is_file():
            handler.send_header("Content-Length", str((self.folder / cached).stat().st_size))
        handler.end_headers()

    def _page(self, handler: BaseHTTPRequestHandler, upstream: str) -> None:
        status, content_type, stream = self.opener(upstream, handler.headers.get("Accept", ""))
        with stream:
            body = stream.read(PAGE_CAP + 1)
        if len(body) > PAGE_CAP:
            raise Refused(502, f"{upstream}: larger than {PAGE_CAP:,} bytes")
        if status == 200:
            if upstream.startswith((PYPI_SIMPLE, NPM_REGISTRY)):  # Debian's indexes go as they are
                body = rewrite(body, self.base)
            with self.counts.lock:
                self.counts.pages += 1
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(body)

    def _file(self, handler: BaseHTTPRequestHandler, upstream: str, path: Path) -> None:
        hit = path.is_file()
        if not hit:
            status, content_type, stream = self.opener(upstream, "*/*")
            with stream:
                if status != 200:
                    body = stream.read(4096)
                    handler.send_response(status)
                    handler.send_header("Content-Type", content_type)
                    handler.send_header("Content-Length", str(len(body)))
                    handler.end_headers()
                    handler.wfile.write(body)
                    return
                self._keep(stream, path)
        size = path.stat().st_size
        self.counts.add(hit, size)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        with path.open("rb") as fh:
            shutil.copyfileobj(fh, handler.wfile, CHUNK)

    def _keep(self, stream: IO[bytes], path: Path) -> None:
        """The upstream's bytes to ``path``, whole or not at all (two builds asking at once both write; the
        last rename wins, with the same bytes)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                while block := stream.read(CHUNK):
                    total += len(block)
                    if total > FILE_CAP:
                        raise Refused(502, f"larger than {FILE_CAP:,} bytes")
                    out.write(block)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _say(handler: BaseHTTPRequestHandler, status: int, why: str) -> None:
        body = why.encode("utf-8", "replace")[:2000]
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
