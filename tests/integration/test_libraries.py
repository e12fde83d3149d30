"""At least one reader per library, through the real engine, with the verdict a maintainer would give."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.engines.docker_engine import DockerEngine
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.results.model import CellResult, Results
from tests.support.paths import EXTERNAL_ZIPS, require_external_zips

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
ZARR = "zarr-3.1.6-pip-py3.11"
XARRAY = "xarray-2026.9.0-zarr-3.1.6-pip-py3.11"


#: A sample of shared/external-zips: real archives written by other software, and broken zips.
EXTERNAL_SAMPLE = {
    "zarr": ["zarr-developers+zarr-python__docs_data_example.zip", "zarrs+zarrs_zip__tests_zarr.zip",
             "zarrs+zarrs_zip__tests_example.zip", "Unidata+netcdf-c__nczarr_test_ref_byte.zarr.zip"],
    "yauzl": ["google+neuroglancer__from-yauzl__failure_invalid_central_directory_file_header_signature_0x1014b50.zip",
              "google+neuroglancer__from-yauzl__success_empty.zip"],
}  # fmt: skip


@pytest.fixture(scope="module")
def run(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Results:
    plan = make_plan(load_matrix(HERE / "libraries.yaml", catalog()))
    out = tmp_path_factory.mktemp("libraries")
    external: tuple[Path, ...] = ()
    if EXTERNAL_ZIPS.is_dir():  # the tests that need it say so (require_external_zips)
        sample = out / "external"
        for folder, names in EXTERNAL_SAMPLE.items():
            (sample / folder).mkdir(parents=True)
            for name in names:
                shutil.copyfile(EXTERNAL_ZIPS / folder / name, sample / folder / name)
        external = (sample,)
    options = Options(out=out, work=out / "work", external=external)
    return execute(plan, docker_engine, options, progress=print)


def cells(
    results: Results, reader_probe: str, writer_probe: str, fixture: str = "int32-random", writer_env: str = ZARR
) -> CellResult:
    return next(
        c
        for c in results.cells
        if (c.reader.probe, c.writer.probe, c.writer.env, c.fixture)
        == (reader_probe, writer_probe, writer_env, fixture)
    )


def test_every_environment_built(run: Results) -> None:
    assert {e.status for e in run.environments} == {"ok"}, [(e.slug, e.reason) for e in run.environments]


@pytest.mark.parametrize("writer", ["zarr-v2", "zarr-v3", "zarr-zipdir-v2", "zarr-zipdir-v3"])
def test_xarray_fsspec_and_tensorstore_read_zarr_archives(run: Results, writer: str) -> None:
    for reader in ("xarray-zipstore", "xarray-fsspec", "fsspec-mapper", "tensorstore-zip"):
        cell = cells(run, reader, writer)
        assert cell.status == "pass", (reader, writer, cell.reason)


@pytest.mark.parametrize("writer", ["zarr-v2", "zarr-v3"])
def test_zarrista_reads_zarr_archives_through_zarrs_zip_store(run: Results, writer: str) -> None:
    for fixture in ("int32-random", "float32-nan-fill"):
        cell = cells(run, "zarrista-zip", writer, fixture)
        assert cell.status == "pass", (writer, fixture, cell.reason)
    assert cells(run, "zarrista-zip", writer).reader.version == "0.1.0"


def test_zarrista_reads_the_zarrs_projects_own_archives_and_zarr_pythons_example(run: Results) -> None:
    require_external_zips()
    # zarrs_zip's v3 archive, its root array (gzip, NaN fill), and zarr-python's docs example (foo/bar)
    for name in ("tests_zarr", "tests_example", "docs_data_example"):
        cell = external(run, "zarrista-zip", name)
        assert cell.status == "pass", (name, cell.reason)


def test_xarray_reports_mask_and_scale_decoding_as_an_observation(run: Results) -> None:
    cell = cells(run, "xarray-zipstore", "zarr-v2", "float32-nan-fill")
    assert cell.status == "pass"
    assert any("mask_and_scale=True" in n and "decode to NaN" in n for n in cell.notices), cell.notices


def test_xarray_writes_duplicate_metadata_entries_and_the_zip_checks_say_so(run: Results) -> None:
    archive = next(a for a in run.archives if (a.env, a.probe, a.fixture) == (XARRAY, "xarray-v2", "int32-random"))
    assert archive.status == "written"
    assert archive.zip_checks is not None
    assert archive.zip_checks.duplicates and archive.zip_checks.duplicates_differing
    cell = cells(run, "tensorstore-zip", "xarray-v2", writer_env=XARRAY)
    assert cell.status == "fail" and "Duplicate filename in ZIP" in cell.reason
    assert any(w.startswith("archive: ") for w in cell.warnings)


def test_gdal_reads_v2_and_says_why_not_v3(run: Results) -> None:
    assert cells(run, "gdal-multidim", "zarr-v2").status == "pass"
    assert cells(run, "gdal-classic", "zarr-v2").status == "pass"
    v3 = cells(run, "gdal-multidim", "zarr-v3")
    assert v3.status == "unsupported" and "pre-release Zarr v3 draft" in v3.reason


def test_netcdf4_wheel_tells_zip_not_built_from_nczarr_broken(run: Results) -> None:
    zipped = cells(run, "netcdf4-zarr-zip", "zarr-v2", "float32-nan-fill")
    assert zipped.status == "unsupported" and "not turned on when netCDF was built" in zipped.reason
    assert any("the zip layer is what fails" in n for n in zipped.notices), zipped.notices
    control = cells(run, "netcdf4-zarr-file", "zarr-v2", "float32-nan-fill")
    assert control.status == "pass", control.reason
    gzip = cells(run, "netcdf4-zarr-file", "zarr-v2", "int32-random")
    assert gzip.status == "unsupported" and "(gzip)" in gzip.reason


def test_h5py_is_honestly_unsupported(run: Results) -> None:
    cell = cells(run, "h5py", "zarr-v2")
    assert cell.status == "unsupported" and "file signature not found" in cell.reason


def external(results: Results, reader_probe: str, name_part: str) -> CellResult:
    return next(
        c
        for c in results.cells
        if c.writer.env == "external" and name_part in c.writer.probe and c.reader.probe == reader_probe
    )


def test_real_archives_from_other_projects_are_read_and_agreed_on(run: Results) -> None:
    require_external_zips()
    for reader in ("zarr-zipstore", "tensorstore-zip", "fsspec-mapper", "gdal-multidim"):
        cell = external(run, reader, "docs_data_example")  # zarr-python's own example: foo/bar <i4[1000,1000]
        assert cell.status == "pass", (reader, cell.reason)
    # it has no _ARRAY_DIMENSIONS, which xarray needs: a failure, in xarray's own words
    no_dims = external(run, "xarray-zipstore", "docs_data_example")
    assert no_dims.status == "fail" and no_dims.reason
    assert external(run, "zarr-zipstore", "tests_zarr").status == "pass"  # zarrs_zip's v3 archive
    root_array = external(run, "zarr-zipstore", "tests_example")  # zarrs: a root array, gzip, NaN fill
    assert root_array.status == "pass", root_array.reason
    values = {c.values.get("foo/bar") for c in run.cells if "docs_data_example" in c.writer.probe and c.values}
    assert len(values) == 1, "every reader of zarr-python's example read the same values"


def test_broken_zips_never_crash_a_reader(run: Results) -> None:
    require_external_zips()
    broken = [c for c in run.cells if c.writer.env == "external" and c.fixture == "external-yauzl"]
    assert broken
    for cell in broken:
        assert cell.status in ("fail", "unsupported", "skipped", "pass"), (cell.reader.probe, cell.status, cell.reason)
    truncated = external(run, "zarr-zipstore", "failure_invalid_central")
    assert truncated.status == "fail" and truncated.reason
