"""The store benchmark: record -> statistics, the phase against the fake engine, dataset sources, charts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runner.matrix import datasets
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.report import charts, render
from runner.results import benchmark
from runner.results.model import Results, Status
from tests.support.fake_engine import OK_RUN, FakeEngine, HostHarness
from tests.support.site import site_html

BASE = "zipstore-matrix/debian:bookworm"
MATRIX = """\
version: 1
fixtures: [int32-random]
benchmark:
  datasets: [int32-random, mnist, sklearn-digits]
  repeats: 3
  warmup: 1
  size: 64
  download: false
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}"]
    matrix: {zarr: ["2.18.7", "3.1.6"]}
  - base: debian:bookworm
    channel: pip
    packages: ["h5py==3.16.0"]
"""


def probe_record(write: dict[str, list[float]], read: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": "3.1.6",
        "zarr_format": 3,
        "nbytes": 4_000_000,
        "shape": [1000, 1000],
        "dtype": "<i4",
        "chunks": [500, 500],
        "compressor": "none",
        "warmup": 1,
        "repeats": len(write["raw"]),
        "setup": {"storage": "tmpfs", "cpus": 2},
        "stores": {
            s: {"status": "ok", "write_s": write[s], "read_s": read[s], "stored_bytes": 4_000_100} for s in write
        },
        "warnings": [],
        **extra,
    }


def test_ratios_are_paired_round_by_round_and_throughput_uses_array_bytes() -> None:
    raw = [0.010, 0.020, 0.040]  # the machine slows down...
    zipstore = [0.030, 0.060, 0.120]  # ...and ZipStore with it: always 3x raw
    record = probe_record({"raw": raw, "zipstore": zipstore}, {"raw": raw, "zipstore": raw})
    timings = {t.store: t for t in benchmark.store_timings(record)}
    assert list(timings) == ["raw", "zipstore"]  # display order
    z = timings["zipstore"]
    assert z.status == "pass" and z.write is not None and z.write_ratio is not None and z.read_ratio is not None
    assert z.write_ratio.median == pytest.approx(3.0) and z.write_ratio.low == pytest.approx(3.0)
    assert z.read_ratio.median == pytest.approx(1.0)
    assert z.write.median == pytest.approx(0.060) and z.write.n == 3
    assert z.write_mbps is not None
    assert z.write_mbps.median == pytest.approx(4.0 / 0.060)  # 4 MB of array bytes / median seconds
    assert timings["raw"].write_ratio is not None and timings["raw"].write_ratio.median == 1.0


def test_a_failed_store_keeps_its_words_and_gets_no_numbers() -> None:
    record = probe_record({"raw": [0.01]}, {"raw": [0.01]})
    record["stores"]["fsspec-memory"] = {
        "status": "unsupported",
        "message": "fsspec is not installed",
        "write_s": [],
        "read_s": [],
    }
    record["stores"]["zipstore"] = {"status": "error", "message": "BadZipFile: boom", "write_s": [], "read_s": []}
    timings = {t.store: t for t in benchmark.store_timings(record)}
    assert (timings["fsspec-memory"].status, timings["fsspec-memory"].reason) == (
        "unsupported",
        "fsspec is not installed",
    )
    assert timings["zipstore"].status == "fail" and timings["zipstore"].write is None


def test_compare_pairs_runs_and_says_where_they_disagree() -> None:
    def result(scale: float) -> Any:
        from runner.results.model import BenchmarkResult

        r = BenchmarkResult(id="b", env="e", dataset="d", status=Status.PASS)
        samples = [0.010, 0.011, 0.012, 0.010, 0.011, 0.012]
        benchmark.fill_from_record(
            r,
            probe_record(
                {"raw": samples, "zipstore": [s * scale for s in samples]}, {"raw": samples, "zipstore": samples}
            ),
        )
        return r

    same = benchmark.compare([result(2.0)], [result(2.0)])
    assert same and all(row.agree for row in same)
    slower = {(r.store, r.measure): r for r in benchmark.compare([result(2.0)], [result(4.0)])}
    assert not slower[("zipstore", "write")].agree and slower[("zipstore", "write")].change == pytest.approx(2.0)
    assert slower[("raw", "write")].agree


# ----------------------------------------------------------------------------- the phase, faked


def behaviour(task: dict[str, Any], sim: HostHarness) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    args = task["args"]
    if args["role"] == "loader":
        output = sim.host_path(args["output"])
        output.write_bytes(b"\x93NUMPY fake")
        return OK_RUN, {
            "status": "ok",
            "loader": "sklearn.datasets.load_digits().images",
            "version": "1.9.1",
            "array": {"shape": [1797, 8, 8], "dtype": "<f8", "sha256": "a" * 64},
            "nbytes": 1797 * 64 * 8,
            "warnings": [],
        }
    if args["role"] == "benchmark":
        times = [0.01, 0.011, 0.012]
        return OK_RUN, probe_record({"raw": times, "zipstore": times}, {"raw": times, "zipstore": times})
    return OK_RUN, {"status": "unsupported", "message": "not in this test", "warnings": []}


def run_bench(tmp_path: Path, text: str = MATRIX) -> tuple[Results, FakeEngine, HostHarness]:
    sim = HostHarness(lambda task: behaviour(task, sim))
    engine = FakeEngine(images={BASE}, handler=sim)
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    results = execute(
        plan,
        engine,
        Options(out=tmp_path, work=tmp_path / "work", phases="benchmark", cache=tmp_path / "cache"),
        progress=lambda m: None,
    )
    return results, engine, sim


def test_benchmark_phase_runs_alone_in_each_zarr_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "KERAS_CACHE", tmp_path / "no-keras" / "mnist.npz")
    results, engine, sim = run_bench(tmp_path)
    assert not results.cells  # --benchmark-only: no matrix
    envs = {b.env for b in results.benchmarks}
    assert envs == {"zarr-2.18.7-pip-py3.11", "zarr-3.1.6-pip-py3.11"}  # not h5py
    bench_runs = [r for r in engine.runs if r.labels.get("org.zipstore-matrix.phase") == "benchmark"]
    assert len(bench_runs) == 2 and sim.jobs[-2:] == [1, 1]  # one probe at a time
    assert all(int(r.tmpfs["/tmp"].rsplit("=", 1)[1]) >= 1 << 30 for r in bench_runs)
    by = {(b.env, b.dataset): b for b in results.benchmarks}
    ran = by[("zarr-3.1.6-pip-py3.11", "int32-random")]
    assert ran.status == "pass" and ran.setup["alone"] and [s.store for s in ran.stores] == ["raw", "zipstore"]
    mnist = by[("zarr-3.1.6-pip-py3.11", "mnist")]
    assert mnist.status == "skipped" and mnist.reason.startswith("dataset unavailable: no local copy")
    digits = next(d for d in results.datasets if d.name == "sklearn-digits")
    assert digits.status == "ok" and digits.shape == [1797, 8, 8] and "load_digits" in digits.source
    task = next(t for t in sim.tasks if t["args"]["role"] == "benchmark" and "sklearn" in t["id"])
    assert task["args"]["dataset"]["file"].startswith("/datasets/") and task["args"]["chunks"] == [500, 8, 8]
    synthetic = next(t for t in sim.tasks if t["args"]["role"] == "benchmark" and "int32" in t["id"])
    assert synthetic["args"]["dataset"]["generate"]["shape"] == [64, 64]

    # the loaded dataset is cached: a second run does not load it again
    loads = sum(1 for t in sim.tasks if t["args"]["role"] == "loader")
    _, _, sim2 = run_bench(tmp_path)
    assert loads == 1 and not any(t["args"]["role"] == "loader" for t in sim2.tasks)


def test_a_loader_that_fails_makes_its_dataset_unavailable_not_the_run(tmp_path: Path) -> None:
    sim = HostHarness(lambda task: (OK_RUN, {"status": "error", "message": "no module named sklearn"}))
    engine = FakeEngine(images={BASE}, handler=sim)
    text = MATRIX.replace("[int32-random, mnist, sklearn-digits]", "[sklearn-digits]")
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    options = Options(out=tmp_path, work=tmp_path / "w", phases="benchmark", cache=tmp_path / "cache")
    results = execute(plan, engine, options, lambda m: None)
    assert {b.status for b in results.benchmarks} == {"skipped"}
    assert "the loader failed: no module named sklearn" in results.benchmarks[0].reason


def test_no_benchmark_section_means_no_benchmark(tmp_path: Path) -> None:
    text = MATRIX.split("benchmark:")[0] + "environments:" + MATRIX.split("environments:")[1]
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    assert not any(ep.benchmarks for ep in plan.environments)


def test_benchmark_settings_and_errors_name_the_line(tmp_path: Path) -> None:
    matrix = parse_matrix(MATRIX.replace("download: false", "mnist: data/mnist.npz"), str(tmp_path / "m.yaml"))
    assert matrix.benchmark is not None and matrix.benchmark.mnist == str(tmp_path / "data" / "mnist.npz")
    assert matrix.benchmark.mnist_source is not None and matrix.benchmark.mnist_source.line == 8
    from runner.errors import ConfigError

    with pytest.raises(ConfigError, match=r"m.yaml:4: benchmark.datasets\[1\]: unknown dataset 'cifar'"):
        parse_matrix(MATRIX.replace("mnist, sklearn", "cifar, sklearn"), "m.yaml")
    with pytest.raises(ConfigError, match=r"benchmark.storage: 'ssd' is not one of"):
        parse_matrix(MATRIX.replace("download: false", "storage: ssd"), "m.yaml")


# ------------------------------------------------------------------------------ MNIST's sources


def test_mnist_sources_in_order_and_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras = tmp_path / "keras" / "mnist.npz"
    monkeypatch.setattr(datasets, "KERAS_CACHE", keras)
    path, why = datasets.locate_mnist(tmp_path / "missing.gz", tmp_path / "cache")
    assert path is None and "missing.gz, which is not a file" in why  # never silently another copy
    path, why = datasets.locate_mnist(None, tmp_path / "cache", download=False)
    assert path is None and "downloads are off" in why

    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    path, why = datasets.locate_mnist(None, tmp_path / "cache")
    assert path is None and "download from https://storage.googleapis.com" in why and "not known" in why
    keras.parent.mkdir()
    keras.write_bytes(b"npz")
    assert datasets.locate_mnist(None, tmp_path / "cache") == (keras, f"from the Keras cache: {keras}")


def test_a_download_with_the_wrong_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(datasets, "KERAS_CACHE", tmp_path / "none.npz")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not mnist"))
    path, why = datasets.locate_mnist(None, tmp_path / "cache")
    assert path is None and "not Keras's" in why and not list((tmp_path / "cache").iterdir())


def test_synthetic_sizes_follow_the_knob() -> None:
    assert datasets.catalog(10000)["int32-random"].nbytes == 400_000_000  # the original benchmark
    assert datasets.catalog(2000)["int32-random"].chunks == (500, 500)
    assert datasets.chunks_for(datasets.catalog()["sklearn-digits"], [1797, 8, 8]) == [500, 8, 8]


# ---------------------------------------------------------------------------------------- charts


def test_charts_draw_every_passing_store_with_its_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "KERAS_CACHE", tmp_path / "none.npz")
    results, _, _ = run_bench(tmp_path)
    figure = charts.plotly_figure(results.benchmarks, "int32-random")
    assert figure is not None
    traces = figure["data"]
    assert len(traces) == 4  # 2 environments x (write, read)
    assert traces[0]["x"] == ["raw file (baseline)", "ZipStore"] and traces[0]["error_y"]["array"][0] >= 0
    svg = charts.svg_chart(results.benchmarks, "int32-random")
    assert svg is not None and svg.startswith("<svg") and svg.count("<rect") == 1 + 8 + 2  # bg, bars, legend
    assert charts.plotly_figure(results.benchmarks, "mnist") is None  # skipped: nothing to draw
    json.dumps(figure)  # plain JSON for the page


def test_site_carries_plotly_and_the_svg_charts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "KERAS_CACHE", tmp_path / "none.npz")
    results, _, _ = run_bench(tmp_path)
    written = {p.name for p in render.write_site(results, tmp_path / "site")}
    assert {"index.html", "matrix.md", "plotly.min.js", "bench-int32-random.svg"} <= written
    html = site_html(tmp_path / "site")
    assert '<script src="plotly.min.js">' in html and 'id="figure-int32-random"' in html
    assert "dataset unavailable" in html
    md = (tmp_path / "site" / "matrix-full.md").read_text()
    assert "![int32-random: median write and read time per store](bench-int32-random.svg)" in md


def test_results_of_schema_1_are_migrated_not_misread() -> None:
    from runner.results.model import SCHEMA_VERSION, migrate

    golden = json.loads((Path(__file__).parent.parent / "report" / "golden" / "results.json").read_text())
    old = {k: v for k, v in golden.items() if k not in ("datasets", "benchmarks")}
    old["schema_version"] = 1
    results = Results.from_dict(old)
    assert results.schema_version == SCHEMA_VERSION and results.benchmarks == [] and results.datasets == []
    with pytest.raises(ValueError, match="schema_version 0"):
        migrate({**old, "schema_version": 0})
