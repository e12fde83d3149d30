"""Base images: use a local one, else pull it, else (Debian suites only) bootstrap it offline.

The offline route runs ``docker/bootstrap-debian.sh`` (debootstrap) and streams its tar into the engine
as ``zipstore-matrix/debian:SUITE``, so a machine with no registry still gets real Debian bases.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from runner.engines.engine import Engine
from runner.errors import BaseImageError
from runner.matrix.model import debian_suite
from runner.resources import data_dir

log = logging.getLogger("runner")
BOOTSTRAP_REPOSITORY = "zipstore-matrix/debian"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    requested: str
    ref: str  # what FROM should name
    how: str  # local | local-bootstrap | pulled | bootstrapped
    seconds: float = 0.0


def bootstrap_ref(suite: str) -> str:
    return f"{BOOTSTRAP_REPOSITORY}:{suite}"


def ensure_base(engine: Engine, base: str, *, allow_bootstrap: bool = True) -> BaseImage:
    started = time.monotonic()
    if engine.has_image(base):
        return BaseImage(requested=base, ref=base, how="local")
    suite = debian_suite(base)
    if suite is not None and engine.has_image(bootstrap_ref(suite)):
        return BaseImage(requested=base, ref=bootstrap_ref(suite), how="local-bootstrap")
    log.info("base %s: not found locally, pulling", base)
    pull_error = engine.pull(base)
    if pull_error is None:
        return BaseImage(requested=base, ref=base, how="pulled", seconds=time.monotonic() - started)
    if suite is None:
        raise BaseImageError(
            f"Base image {base!r} is not present locally and could not be pulled ({pull_error}). "
            f"Pull or build it first (docker pull {base}), or use a debian:SUITE base, which the runner "
            "can bootstrap offline."
        )
    if not allow_bootstrap:
        raise BaseImageError(f"Base image {base!r} could not be pulled ({pull_error}) and bootstrapping is off.")
    log.info("base %s: pull failed (%s); bootstrapping Debian %s offline with debootstrap", base, pull_error, suite)
    bootstrap(engine, suite)
    return BaseImage(requested=base, ref=bootstrap_ref(suite), how="bootstrapped", seconds=time.monotonic() - started)


def bootstrap(engine: Engine, suite: str) -> None:
    if shutil.which("debootstrap") is None:
        raise BaseImageError(
            f"Cannot bootstrap Debian {suite}: debootstrap is not installed (apt-get install -y debootstrap)."
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            f"Cannot bootstrap Debian {suite}: debootstrap needs root. Run as root once, or pull "
            f"debian:{suite} from a registry."
        )
    mirror = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", DEFAULT_MIRROR)
    script = data_dir("docker") / "bootstrap-debian.sh"
    log.debug("+ bash %s %s %s | docker import - %s", script, suite, mirror, bootstrap_ref(suite))
    with subprocess.Popen(["bash", str(script), suite, mirror], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            engine.import_rootfs(proc.stdout, bootstrap_ref(suite))
        finally:
            proc.stdout.close()
            stderr = proc.stderr.read().decode("utf-8", "replace")
            proc.wait()
    if proc.returncode != 0:
        engine.remove_image(bootstrap_ref(suite))
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise BaseImageError(f"debootstrap of Debian {suite} from {mirror} failed (exit {proc.returncode}):\n{tail}")
