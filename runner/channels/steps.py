"""Dockerfile steps the channels share: Debian packages, a Python virtual environment, wheels, npm packages.
A channel's ``dockerfile()`` puts together the steps its image needs; the lines are Docker's build cache
keys, so a step renders the same text whichever channel asks for it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

VENV = "/opt/venv"
#: uv installs the pip channel's wheels: pinned, so an image's text (and its hash) says which uv made it; kept
#: in its own folder, outside the venv the probes run in (bench/installers.py measures it against pip)
UV = "0.13.9"
UV_HOME = "/opt/uv"
CA_BUNDLE = "/etc/zipstore/ca-bundle.crt"  # where the base template puts the host's bundle (build time only)


@dataclass(frozen=True, kw_only=True)
class ImageInput:
    """What a channel's steps are made of: its packages, the versions resolved for them, the extra wheels."""

    packages: tuple[str, ...]
    pip: tuple[str, ...] = ()  # extra wheels on top (``pip:`` in the matrix)
    versions: dict[str, str] = field(default_factory=dict)  # package -> the version an index gave
    apt_update: str = "apt-get update"  # with apt told not to check an expired Release, when it is
    ca_bundle: bool = False  # the host's CA bundle is in the image (for npm, which reads no pip variables)


def _words(values: Sequence[str]) -> str:
    return " ".join(shlex.quote(v) for v in values)


def apt(update: str, packages: Sequence[str]) -> str:
    return (
        f"RUN {update} \\\n"
        f" && apt-get install -y --no-install-recommends {_words(packages)} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )


def python_if_missing() -> str:
    return (
        "# Images that already carry a Python with venv (python:X-slim) skip apt entirely.\n"
        'RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \\\n'
        "      apt-get update \\\n"
        "      && apt-get install -y --no-install-recommends python3 python3-venv \\\n"
        "      && rm -rf /var/lib/apt/lists/*; \\\n"
        "    fi\n"
    )


def venv(system_site_packages: bool = False) -> str:
    return f"RUN python3 -m venv {'--system-site-packages ' if system_site_packages else ''}{VENV}\n"


def wheels(requirements: Sequence[str]) -> str:
    return f"RUN {VENV}/bin/pip install --only-binary=:all: {_words(requirements)}\n" if requirements else ""


def uv_wheels(requirements: Sequence[str]) -> str:
    """The pip channel's wheels, installed by uv: the same resolution rules as pip's (``--only-binary``, the
    highest versions), the files byte-compiled as pip does, the download cache's index when the build has one
    (uv reads no pip variables). uv is its own step, so every image on a base shares it. Not for a venv with
    the system's site-packages (the apt channel's): uv does not count them as installed, and would install
    again, from PyPI, what the image means to take from Debian."""
    if not requirements:
        return ""
    return (
        f"RUN {VENV}/bin/pip install --no-compile --target {UV_HOME} uv=={UV}\n"
        f"RUN {UV_HOME}/bin/uv pip install --python {VENV}/bin/python --no-cache --link-mode=copy \\\n"
        '      --compile-bytecode ${PIP_INDEX_URL:+--default-index "$PIP_INDEX_URL"} '
        '${PIP_TRUSTED_HOST:+--allow-insecure-host "$PIP_TRUSTED_HOST"} \\\n'
        f"      --only-binary=:all: {_words(requirements)}\n"
    )


def npm(packages: Sequence[str], ca_bundle: bool) -> str:
    ca = f"NODE_EXTRA_CA_CERTS={CA_BUNDLE} " if ca_bundle else ""
    return (
        "# npm packages at exact versions, with the host's CA bundle (build time only), under /opt/npm\n"
        f"RUN {ca}npm install --prefix /opt/npm --no-audit --no-fund --no-update-notifier --omit=dev "
        f"--save-exact {_words(packages)} \\\n"
        " && rm -rf /root/.npm\n"
    )
