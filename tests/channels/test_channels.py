"""Channels as plug-ins: each module meets the protocol, the registry and the schema agree, and each
channel's rules (names, pins, what the image installs) hold."""

from __future__ import annotations

import json

import pytest

from runner.channels import CHANNEL_NAMES, CHANNELS, ImageInput, channel
from runner.matrix.load import default_slug
from runner.resources import schema_path


def test_the_schema_offers_exactly_the_registered_channels() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    enums = [e for e in _enums(schema) if set(e) & CHANNEL_NAMES]
    assert enums, "the schema names no channel"
    assert all(set(e) == CHANNEL_NAMES for e in enums), enums
    assert set(CHANNELS) == CHANNEL_NAMES


def _enums(node: object) -> list[list[str]]:
    if isinstance(node, dict):
        here = [node["enum"]] if "enum" in node else []
        return here + [e for value in node.values() for e in _enums(value)]
    if isinstance(node, list):
        return [e for value in node for e in _enums(value)]
    return []


@pytest.mark.parametrize(
    ("name", "package", "library", "exact"),
    [
        ("pip", "zarr==2.18.7", "zarr", "2.18.7"),
        ("pip", "Zarr[jupyter]>=2", "zarr", None),
        ("pip", "numcodecs==0.16.*", "numcodecs", None),
        ("apt", "python3-netcdf4", "netcdf4", None),
        ("npm", "zarrita@0.7.5", "zarrita", "0.7.5"),
        ("npm", "@zarrita/storage@0.2.0", "zarrita-storage", "0.2.0"),
    ],
)
def test_library_and_exact_version(name: str, package: str, library: str, exact: str | None) -> None:
    how = CHANNELS[name]  # type: ignore[index]
    assert how.problem(package) is None
    assert how.library(package) == library
    assert how.exact_version(package) == exact


@pytest.mark.parametrize(
    ("name", "package", "why"),
    [
        ("pip", "zarr==3; python_version > '3'", "environment markers and shell characters"),
        ("pip", "zarr; rm -rf /", "is not a PEP 508 requirement"),
        ("pip", "zarr @ https://example.invalid/z.whl", "direct URL requirements are not allowed"),
        ("pip", "zarr===", "is not a PEP 508 requirement"),
        ("apt", "Python3-Zarr", "is not a Debian package name"),
        ("npm", "zarrita@latest", "is not an exact npm package version"),
        ("npm", "zarrita", "is not an exact npm package version"),
    ],
)
def test_each_channel_refuses_what_its_grammar_does_not_allow(name: str, package: str, why: str) -> None:
    problem = CHANNELS[name].problem(package)  # type: ignore[index]
    assert problem is not None and why in problem


def test_the_steps_each_channel_puts_in_its_image() -> None:
    pip = channel("pip").dockerfile(ImageInput(packages=("zarr==3.4.2",), pip=("fsspec==2026.9.0",)))
    assert "python3-venv" in pip and "RUN python3 -m venv /opt/venv\n" in pip
    assert "RUN /opt/venv/bin/pip install --no-compile --target /opt/uv uv==" in pip, "uv: a step of its own"
    assert "/opt/uv/bin/uv pip install --python /opt/venv/bin/python " in pip and "--compile-bytecode" in pip
    assert "      --only-binary=:all: zarr==3.4.2 fsspec==2026.9.0\n" in pip
    assert '${PIP_INDEX_URL:+--default-index "$PIP_INDEX_URL"}' in pip, "the download cache reaches uv too"
    apt = channel("apt").dockerfile(
        ImageInput(
            packages=("python3-zarr", "python3-gdal"),
            pip=("tensorstore==0.1.86",),
            versions={"python3-zarr": "3.4.1-2"},
        )
    )
    assert "apt-get install -y --no-install-recommends python3 python3-venv python3-zarr=3.4.1-2 python3-gdal " in apt
    assert "--system-site-packages /opt/venv" in apt and "pip install --only-binary=:all: tensorstore==0.1.86" in apt
    assert "/opt/uv" not in apt, "uv would install again what the image takes from Debian"
    npm = channel("npm").dockerfile(ImageInput(packages=("@zarrita/storage@0.2.0",), ca_bundle=True))
    assert "python3 python3-venv nodejs npm" in npm and "/etc/zipstore/ca-bundle.crt npm install" in npm
    assert npm.rstrip().endswith("@zarrita/storage@0.2.0 \\\n && rm -rf /root/.npm") and "pip install" not in npm
    quoted = channel("pip").dockerfile(ImageInput(packages=("zarr[jupyter]>=3",)))
    assert "'zarr[jupyter]>=3'" in quoted, "every package reaches the shell quoted"


def test_capabilities_say_where_versions_come_from_and_what_runs_without_docker() -> None:
    assert [n for n, c in CHANNELS.items() if c.RUNS_LOCALLY] == ["pip"]
    assert [n for n, c in CHANNELS.items() if c.VERSIONS_FROM_SUITE] == ["apt"]
    assert {n: c.TRACKS for n, c in CHANNELS.items()} == {"pip": "pypi", "apt": None, "npm": "npm", "browser": "npm"}
    assert channel("pip").tracked("ngff-zarr[validate]=={v}") == ("ngff-zarr[validate]", "v")
    assert channel("npm").tracked("@zarrita/storage@{storage}") == ("@zarrita/storage", "storage")
    assert channel("npm").tracked("zarrita@^{v}") is None and channel("apt").tracked("python3-zarr") is None
    assert channel("browser").pinned("zarrita", "0.7.5") == "zarrita@0.7.5" == channel("npm").pinned("zarrita", "0.7.5")
    # a tracked entry before its registry answers is a bare name: the same library, no version yet
    npm = channel("npm")
    assert [npm.library(p) for p in ("zarrita", "@zarrita/storage", "@zarrita/storage@0.2.0")] == [
        "zarrita",
        "zarrita-storage",
        "zarrita-storage",
    ]
    assert npm.exact_version("@zarrita/storage") is None and npm.exact_version("zarrita@0.7.5") == "0.7.5"
    assert sorted(n for n, c in CHANNELS.items() if c.NEEDS_DEBIAN_BASE) == ["apt", "browser", "npm"]


@pytest.mark.parametrize(
    ("packages", "name", "base", "python", "slug"),
    [
        (("zarr==2.18.7",), "pip", "debian:bookworm", "3.11", "zarr-2.18.7-pip-py3.11"),
        (("zarr==latest",), "pip", "debian:trixie", "3.13", "zarr-latest-pip-py3.13"),
        (("python3-gdal",), "apt", "debian:trixie", "3.13", "python3-gdal-apt-trixie"),
        (("@zarrita/storage@0.2.0",), "npm", "debian:trixie", "3.13", "zarrita-storage-0.2.0-npm-trixie"),
        (("zarr",), "pip", "python:3.12-slim", "3.12", "zarr-pip-py3.12"),
    ],
)
def test_default_slugs_per_channel(packages: tuple[str, ...], name: str, base: str, python: str, slug: str) -> None:
    assert default_slug(packages, name, base, python) == slug  # type: ignore[arg-type]
