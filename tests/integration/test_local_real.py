"""No Docker engine at all: the default engine choice falls back to the local engine, which builds the pip
environments with uv from PyPI and runs the real probes on this host; apt environments are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.results.model import EnvStatus, Results, Status
from tests.support.site import site_html

pytestmark = pytest.mark.integration

MATRIX = (Path(__file__).parent / "local.yaml").read_text()


# docker-py leaves the socket of its failed version probe (DockerClient.from_env) for the collector
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_with_no_engine_answering_the_local_engine_runs_the_pip_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine-here.sock")  # as if Docker were stopped
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "site"
    assert main([str(matrix), "--out", str(out), "--no-benchmark"]) == 0
    said = capsys.readouterr().err
    assert "Using the local engine instead" in said and "not a sandbox" in said
    results = Results.read(out / "results.json")
    assert results.run.engine["name"] == "local"
    envs = {e.slug: e for e in results.environments}
    assert envs["zarr-3.1.6-pip-py3.11"].status is EnvStatus.OK
    assert envs["zarr-3.1.6-pip-py3.11"].libraries["zarr"] == "3.1.6"  # what uv installed, as the venv reports
    gdal = envs["python3-gdal-apt-bookworm"]
    assert gdal.status is EnvStatus.SKIPPED and "apt packages need Docker" in gdal.reason
    zarr = [c for c in results.cells if c.reader.env.startswith("zarr-")]
    assert zarr and {c.status for c in zarr} <= {Status.PASS, Status.UNSUPPORTED}
    assert sum(c.status is Status.PASS for c in zarr) >= 20
    assert all(c.status is Status.SKIPPED for c in results.cells if c.reader.env == gdal.slug)
    assert "not a sandbox" in site_html(out)


def test_the_local_engine_refuses_external_archives_unless_trusted(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    assert main([str(matrix), "--engine", "local", "--hostile", "--out", str(tmp_path / "o"), "--list"]) == 0
    code = main([str(matrix), "--engine", "local", "--hostile", "--out", str(tmp_path / "o")])
    assert code == 2


OVER_HTTP = """\
version: 1
settings: {probe_timeout: 120, read_repeats: 1, access: [file, http, http-norange]}
fixtures: [int32-random]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr==3.1.6", "fsspec==2026.9.0", "aiohttp==3.14.5"]
    probes: ["zarr-v3", "zarr-fsspec"]
"""


def test_the_local_engine_serves_the_archives_with_this_hosts_nginx_on_loopback(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(OVER_HTTP)
    out = tmp_path / "site"
    assert main([str(matrix), "--engine", "local", "--out", str(out), "--no-benchmark"]) == 0
    results = Results.read(out / "results.json")
    cells = {c.access: c for c in results.cells}
    ranged, whole = cells["http"], cells["http-norange"]
    assert ranged.status is Status.PASS and ranged.values == cells["file"].values, ranged.reason
    assert ranged.http is not None and ranged.http.server.startswith("nginx/") and ranged.http.statuses.get("206")
    assert whole.status is Status.FAIL and "doesn't appear to support range requests" in whole.reason
    assert "of this host on\nloopback" in site_html(out)
