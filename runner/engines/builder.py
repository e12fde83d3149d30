"""Images: one ``ensure()`` per environment (reuse by content hash, else build), its base had once per run,
and an installer's failure kept in the installer's own words."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.engines.bases import ensure_base
from runner.engines.downloads import PORT, Counts, DownloadCache
from runner.engines.engine import Engine
from runner.engines.images import build_context, image_plan
from runner.errors import BaseImageError
from runner.matrix.model import EnvironmentSpec
from runner.results.model import EnvironmentResult, EnvStatus

log = logging.getLogger("runner")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DOCKER_NOISE = re.compile(r"^\s*(---> |Removing intermediate container|Step \d+/\d+ :)")
_PIP_ADVICE = re.compile(r"^(To fix this you could try to:|\d\. (loosen the range|remove package versions))")


def install_error(log_text: str, error: str | None) -> str:
    """pip's, uv's or apt's own explanation from a failed build log, not Docker's summary.

    From the failed step's first ERROR/E:/error: line to its end (pip's "The conflict is caused by:" lines,
    uv's "cause:" lines included), without colour codes, Docker's step chatter or pip's generic advice.
    """
    lines = [_ANSI.sub("", line).rstrip() for line in log_text.splitlines()]
    steps = [i for i, line in enumerate(lines) if line.lstrip().startswith("Step ")]
    step = lines[steps[-1] + 1 :] if steps else lines
    first = next((i for i, line in enumerate(step) if re.match(r"^\s*(ERROR:|E: |error:)", line)), None)
    picked = step[first:] if first is not None else [line for line in step if line.strip()][-8:]
    picked = [line for line in picked if line.strip() and not _DOCKER_NOISE.match(line) and not _PIP_ADVICE.match(line)]
    text = "\n".join(dict.fromkeys(picked))
    if error and error not in text:
        text = f"{text}\n{error}" if text else error
    return text.strip()


def libraries_from_info(info: dict[str, Any]) -> dict[str, str]:
    """Resolved versions of the libraries under test (and the C libraries under them)."""
    out: dict[str, str] = {}
    dists = info.get("distributions", {})
    for name in (
        "zarr",
        "numcodecs",
        "numpy",
        "xarray",
        "fsspec",
        "h5py",
        "netcdf4",
        "gdal",
        "tensorstore",
        "ngff-zarr",
        "zarrista",
        "obstore",
        "bioio-ome-zarr",
        "zarrnii",
    ):
        if name in dists:
            out[name] = dists[name]
    modules = info.get("modules", {})
    names = {"osgeo.gdal": "gdal", "netCDF4": "netcdf4"}
    for module, attrs in modules.items():
        key = names.get(module, module)
        if "__version__" in attrs:
            out.setdefault(key, attrs["__version__"])
        if "import_error" in attrs:
            out.setdefault(key, "import failed")
    if "netCDF4" in modules:
        out["netcdf-c"] = modules["netCDF4"].get("__netcdf4libversion__", "?")
    if "h5py" in modules and "version.hdf5_version" in modules["h5py"]:
        out["hdf5"] = modules["h5py"]["version.hdf5_version"]
    npm = info.get("npm", {})
    for name in ("zarrita", "@zarrita/storage", "numcodecs", "@vitessce/zarr-utils", "@fideus-labs/ngff-zarr"):
        if name in npm:
            out[name.lstrip("@").replace("/", "-") + (" (npm)" if name == "numcodecs" else "")] = npm[name]
    if npm and "nodejs" in info.get("debian", {}):
        out["node"] = info["debian"]["nodejs"]
    return out


class ImageBuilder:
    """Reuses or builds each environment's image; every base is looked for once per run."""

    def __init__(
        self,
        engine: Engine,
        *,
        ca: bytes | None,
        rebuild: bool,
        allow_bootstrap: bool,
        progress: Callable[[str], None],
        downloads: Path | None = None,
    ) -> None:
        self.engine = engine
        #: where the download cache keeps its files (None: every build downloads for itself)
        self.downloads = downloads
        self._cache: DownloadCache | None = None
        self._cache_tried = False
        self.ca = ca
        self.rebuild = rebuild
        self.allow_bootstrap = allow_bootstrap
        self.progress = progress
        #: base as asked -> its local reference, or why it could not be had
        self.bases: dict[str, str | BaseImageError] = {}
        if ca is None:
            log.warning("no CA bundle found on the host; builds behind a TLS-intercepting proxy will fail")

    def base(self, base: str) -> str | BaseImageError:
        """The local reference of a base image (bootstrapped if need be), or why it cannot be had."""
        if base not in self.bases:
            try:
                resolved = ensure_base(self.engine, base, allow_bootstrap=self.allow_bootstrap)
                self.bases[base] = resolved.ref
                if resolved.how != "local":
                    self.progress(f"base {base}: {resolved.how} as {resolved.ref} ({resolved.seconds:.0f}s)")
            except BaseImageError as exc:
                self.bases[base] = exc
                self.progress(f"base {base}: unavailable: {exc}")
        return self.bases[base]

    def ensure(self, env: EnvironmentSpec, tag: str, label: str) -> EnvironmentResult:
        """Reuse or build the image of ``env``: the outcome (status, reason, timing) is the result."""
        result = EnvironmentResult(
            slug=env.slug,
            base=env.base,
            python=env.python,
            channel=env.channel,
            packages=list(env.packages + env.pip),
            image=tag,
            resolved=list(env.resolved),
        )
        if env.unresolved:
            result.status, result.reason = EnvStatus.INSTALL_FAILED, f"version not resolved: {env.unresolved}"
            return result
        base_ref = self.base(env.base)
        if isinstance(base_ref, BaseImageError):
            result.status, result.reason = EnvStatus.INSTALL_FAILED, f"base image unavailable: {base_ref}"
            return result
        if not self.rebuild and self.engine.has_image(tag):
            result.cached = True
            result.image_id = self.engine.image_id(tag) or ""
            self.progress(f"[{label}] {env.slug}: cached ({tag})")
            return result
        self.progress(f"[{label}] {env.slug}: building {tag} ...")
        context = build_context(image_plan(env, self.ca, base_ref=base_ref))
        cache = self._download_cache()
        if cache is not None:
            context = replace(context, buildargs={**context.buildargs, **cache.buildargs()})
        built = self.engine.build(context)
        result.cached, result.build_seconds = False, round(built.seconds, 2)
        if built.skipped:
            result.status, result.reason = EnvStatus.SKIPPED, built.skipped
            self.progress(f"[{label}] {env.slug}: skipped: {built.skipped}")
        elif not built.ok:
            result.status, result.reason = EnvStatus.INSTALL_FAILED, install_error(built.log, built.error)
            self.progress(f"[{label}] {env.slug}: install failed: {result.reason.splitlines()[-1]}")
        else:
            result.image_id = self.engine.image_id(tag) or ""
            self.progress(f"[{label}] {env.slug}: built in {built.seconds:.0f}s")
        return result

    def _download_cache(self) -> DownloadCache | None:
        """The run's download cache, started at its first build (a warm run starts none)."""
        if self._cache_tried or self.downloads is None:
            return self._cache
        self._cache_tried = True
        host = self.engine.build_host()
        if host is None:
            return None
        cache = None
        for port in (PORT, 0):  # the usual port, else any
            try:
                cache = DownloadCache(self.downloads, host, port)
                cache.start()
                break
            except OSError as exc:  # taken; or not this host's address (a remote engine): no cache
                log.debug("download cache on %s:%d: %s", host, port, exc)
                cache = None
        if cache is None:
            log.warning("no download cache for image builds on %s: builds download for themselves", host)
            return None
        self._cache = cache
        return cache

    def close(self) -> Counts | None:
        """Stop the download cache, saying what it saved; its counts (None when no cache ran)."""
        cache, self._cache = self._cache, None
        if cache is None:
            return None
        cache.stop()
        self.progress(f"download cache: {cache.counts.summary()}")
        return cache.counts

    def no_base_at_all(self) -> BaseImageError | None:
        """When every base asked for this run was unavailable: the first reason (exit code 5)."""
        if self.bases and all(isinstance(ref, BaseImageError) for ref in self.bases.values()):
            return next(ref for ref in self.bases.values() if isinstance(ref, BaseImageError))
        return None
