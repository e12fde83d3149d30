"""The download cache on the real engine: an image built through it, removed and built again from its base,
takes every file the second time from the cache (pip's wheels, apt's Debian packages), and the images work."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.engines.builder import ImageBuilder
from runner.engines.docker_engine import DockerEngine
from runner.engines.images import image_tag
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.resources import read_ca_bundle
from runner.results.model import EnvStatus

pytestmark = pytest.mark.integration

# Packages no other test's image installs, so their steps are built here, not taken from Docker's layer cache
MATRIX = """\
version: 1
fixtures: [int32-random]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["six==1.16.0", "tomli==2.0.2"]
  - base: debian:bookworm
    channel: apt
    packages: [python3-six, python3-tomli]
"""


@pytest.mark.parametrize("channel", ["pip", "apt"])
def test_an_image_built_again_from_its_base_takes_every_file_from_the_cache(
    docker_engine: DockerEngine, tmp_path: Path, channel: str
) -> None:
    env = next(e for e in parse_matrix(MATRIX, "m.yaml", catalog()).environments if e.channel == channel)
    tag = image_tag(env)

    def build() -> tuple[EnvStatus, int, int]:
        docker_engine.remove_image(tag)  # with its own layers: the step installing the packages runs again
        builder = ImageBuilder(
            docker_engine, ca=read_ca_bundle(), rebuild=False, allow_bootstrap=True, progress=print,
            downloads=tmp_path / "downloads",
        )  # fmt: skip
        result = builder.ensure(env, tag, "test")
        counts = builder.close()
        assert counts is not None, "the download cache did not start"
        return result.status, counts.hits, counts.misses

    status, hits, fetched = build()
    kept = sorted(p.name for p in (tmp_path / "downloads").rglob("*") if p.is_file())
    # each file fetched once; uv asks for a wheel twice (its metadata, streamed, then to install it): a hit
    assert status == EnvStatus.OK and fetched == len(kept) >= 2
    wanted = ("six", "tomli") if channel == "pip" else ("python3-six", "python3-tomli")
    assert all(any(name.startswith(w) for name in kept) for w in wanted), kept

    status, hits, fetched_again = build()
    assert status == EnvStatus.OK and fetched_again == 0 and hits >= fetched
    said = docker_engine.client.containers.run(
        tag,
        ["/opt/venv/bin/python", "-c", "import six, tomli; print(six.__version__)"],
        remove=True,
        network_disabled=True,
    )
    assert said.strip()
