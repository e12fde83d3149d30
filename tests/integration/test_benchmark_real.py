"""The store benchmark on the real engine: zarr 2 and zarr 3, every store, real loaders, tmpfs and disk."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from runner.engines.docker_engine import DockerEngine
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.results.model import Results

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
Z2 = "zarr-2.18.7-numcodecs-0.15.1-pip-py3.11"
Z3 = "zarr-3.1.6-pip-py3.11"
STORES = ["raw", "zipstore", "directory", "memory", "fsspec-memory"]


def matrix_text(storage: str, datasets: str) -> str:
    # The environments of small.yaml (so their images are shared), with a benchmark section.
    environments = (HERE / "small.yaml").read_text().split("environments:", 1)[1]
    return f"""\
version: 1
fixtures: [int32-random]
benchmark:
  datasets: {datasets}
  repeats: 3
  warmup: 1
  size: 256
  storage: {storage}
  mnist: train-images-idx3-ubyte.gz
  download: false
environments:{environments}"""


def idx_images(path: Path, count: int) -> bytes:
    """A small file in MNIST's IDX format (magic 0x00000803, big-endian dims, then uint8 pixels)."""
    pixels = bytes((i * 7) % 256 for i in range(count * 28 * 28))
    data = struct.pack(">BBBBIII", 0, 0, 0x08, 3, count, 28, 28) + pixels
    path.write_bytes(gzip.compress(data))
    return pixels


def run(engine: DockerEngine, tmp: Path, storage: str, datasets: str) -> Results:
    text = matrix_text(storage, datasets)
    matrix = parse_matrix(text, str(tmp / "bench.yaml"), catalog())
    out = tmp / "site"
    return execute(
        make_plan(matrix),
        engine,
        Options(out=out, work=out / "work", phases="benchmark", cache=tmp / "cache"),
        progress=print,
    )


@pytest.fixture(scope="module")
def bench_run(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Results:
    tmp = tmp_path_factory.mktemp("bench")
    idx_images(tmp / "train-images-idx3-ubyte.gz", 50)
    return run(docker_engine, tmp, "tmpfs", "[int32-random, mnist, fashion-mnist, sklearn-digits, matplotlib-dem]")


def test_every_store_round_trips_in_zarr_2_and_3(bench_run: Results) -> None:
    for env in (Z2, Z3):
        result = bench_run.benchmark(env, "int32-random")
        assert result is not None and result.status == "pass", result and result.reason
        assert result.zarr_format == (2 if env == Z2 else 3) and result.shape == [256, 256]
        assert [s.store for s in result.stores] == STORES
        for timing in result.stores:
            assert timing.status == "pass", (env, timing.store, timing.reason)
            assert timing.write and timing.read and timing.write.n == timing.read.n == 3
            assert timing.write_ratio and timing.read_ratio and timing.write_mbps and timing.write_mbps.median > 0
            assert timing.write.low <= timing.write.median <= timing.write.high
        assert result.store("raw").stored_bytes == 256 * 256 * 4  # type: ignore[union-attr]


def test_timing_setup_is_recorded(bench_run: Results) -> None:
    result = bench_run.benchmark(Z3, "int32-random")
    assert result is not None
    setup = result.setup
    assert setup["storage"] == "tmpfs" and setup["mount"]["fs_type"] == "tmpfs" and not setup["mount"]["bind_mount"]
    assert setup["alone"] and setup["jobs"] == 1 and setup["cpus"] >= 1 and "warm" in setup["page_cache"]


def test_real_loaders_feed_the_benchmark(bench_run: Results) -> None:
    datasets = {d.name: d for d in bench_run.datasets}
    mnist = datasets["mnist"]
    assert mnist.status == "ok" and mnist.shape == [50, 28, 28] and mnist.dtype == "|u1", mnist.reason
    assert "IDX file train-images-idx3-ubyte.gz" in mnist.source
    digits = datasets["sklearn-digits"]
    assert digits.status == "ok" and digits.shape == [1797, 8, 8] and "load_digits" in digits.source
    fashion = datasets["fashion-mnist"]  # real MNIST-format data that Debian ships
    assert fashion.status == "ok" and fashion.shape == [60000, 28, 28] and fashion.dtype == "|u1", fashion.reason
    assert "(dataset-fashion-mnist 0.0~git" in fashion.source
    dem = datasets["matplotlib-dem"]
    assert dem.status == "ok" and len(dem.shape) == 2 and "jacksboro_fault_dem" in dem.source
    for name in ("mnist", "fashion-mnist", "sklearn-digits", "matplotlib-dem"):
        result = bench_run.benchmark(Z3, name)
        assert result is not None and result.status == "pass" and result.shape == datasets[name].shape
        assert all(s.status == "pass" for s in result.stores), [(s.store, s.reason) for s in result.stores]


def test_disk_storage_is_a_bind_mount(docker_engine: DockerEngine, tmp_path: Path) -> None:
    results = run(docker_engine, tmp_path, "disk", "[int32-random]")
    result = results.benchmark(Z2, "int32-random")
    assert result is not None and result.status == "pass"
    assert result.setup["mount"]["bind_mount"] and result.setup["mount"]["mount_point"] == "/bench-disk"
    assert all(s.status == "pass" for s in result.stores)
