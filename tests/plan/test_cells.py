"""The compatibility phases' decisions, tested directly: no engine, no disk."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from runner.engines.engine import ContainerError, RunResult, RunSpec
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.matrix.model import Settings
from runner.phases.execute import build_images, steps
from runner.plan import cells
from runner.plan.planner import Archive, make_plan
from runner.protocol import ProbeResult
from runner.resources import probes_dir
from runner.results import classify
from runner.results.model import WRITTEN, ArchiveResult, CellResult, EnvironmentResult, EnvStatus, Outcome, Side, Status
from runner.results.probe_data import ZipChecks

MATRIX = """\
version: 1
fixtures: [int32-random, sharded]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr==3.1.6"]
  - base: debian:bookworm
    channel: pip
    packages: ["gdal==3.10.0"]
"""


def plan() -> Any:
    return make_plan(parse_matrix(MATRIX, "m.yaml", catalog()))


def env(status: EnvStatus = EnvStatus.OK, reason: str = "") -> EnvironmentResult:
    return EnvironmentResult(
        slug="e", base="b", python=None, channel="pip", packages=[], image="i", status=status, reason=reason
    )


def archive(**over: Any) -> ArchiveResult:
    fields: dict[str, Any] = dict(
        id="w--a", env="w", probe="zarr-v3", library="zarr", version="3", zarr_format=3, fixture="f", status=WRITTEN
    )
    return ArchiveResult(**{**fields, **over})


def test_one_answer_for_an_unavailable_environment() -> None:
    assert cells.unavailable(env()) is None
    down = cells.unavailable(env(EnvStatus.INSTALL_FAILED, "pip: no zarr"))
    assert down == Outcome(status=Status.INSTALL_FAILED, reason="pip: no zarr")


def test_write_tasks_say_what_to_write_where() -> None:
    p = plan()
    task = cells.write_task(p.writes[0], Settings(probe_timeout=12))
    assert task.timeout == 12 and task.script == "zarr_probe.py"
    assert task.args["role"] == "writer" and task.args["archive"] == f"/artifacts/{p.writes[0].archive}"
    assert task.args["fixture"]["name"] == p.writes[0].fixture.name


def test_readers_open_written_archives_under_artifacts_and_external_ones_under_external() -> None:
    assert cells.container_path("zarr/zarr-v2/x.zip") == "/artifacts/zarr/zarr-v2/x.zip"
    assert cells.container_path("external/zarr/x.zip") == "/external/zarr/x.zip"


def test_only_written_archives_are_readable() -> None:
    found = cells.readable(
        [
            archive(path="w/a.zip", expected={"arrays": {"data": {"shape": [2]}}}),
            archive(id="w--b", status=Status.SKIPPED),
            archive(id="w--c", path=None),
        ]
    )
    assert [(a.id, a.arrays, dict(a.shapes)) for a in found] == [("w--a", ("data",), {"data": [2]})]


def test_readers_that_open_arrays_by_path_skip_archives_without_any() -> None:
    gdal = next(ep for ep in plan().environments if ep.readers and ep.readers[0].library == "gdal")
    empty = Archive(
        id="x", path="external/x.zip", fixture="f", arrays=(), zarr_format=None, writer_env="external", writer_probe="x"
    )
    run, skipped = cells.split_reads(gdal, [empty])
    assert [t.probe.id for t in run] == ["gdal-multidim"]
    assert [(t.probe.id, why.split(":")[0]) for t, why in skipped] == [
        ("gdal-classic", "no Zarr arrays in the archive's metadata")
    ]


@pytest.mark.parametrize(
    ("status", "reader_down", "expected"),
    [
        (Status.INSTALL_FAILED, None, Status.INSTALL_FAILED),
        (Status.UNSUPPORTED, Outcome(status=Status.INSTALL_FAILED, reason="r"), Status.INSTALL_FAILED),
        (Status.UNSUPPORTED, None, Status.SKIPPED),
    ],
)
def test_cells_of_unwritten_archives(status: Status, reader_down: Outcome | None, expected: Status) -> None:
    outcome = cells.unwritten_outcome(archive(status=status, reason="no sharding"), reader_down)
    assert outcome.status is expected
    if expected is Status.SKIPPED:
        assert outcome.reason == "the writer could not produce this archive (unsupported: no sharding)"


def test_a_read_cell_carries_the_archives_and_readers_warnings_and_the_version_read() -> None:
    ep = plan().environments[0]
    arch = archive(zip_checks=ZipChecks(checked=True, problems=["duplicate entry"]), warnings=["UserWarning: w"])
    readable = cells.readable([archive(path="w/a.zip")])
    task = cells.split_reads(ep, readable)[0][0]
    record = {"version": "3.1.6", "warnings": ["UserWarning: r", "DeprecationWarning: d"], "arrays": {}}
    reader = cells.reader_side(ep.slug, task.probe, "?")
    cell = cells.read_cell(task, arch, reader, Outcome(status=Status.PASS), ProbeResult(run={}, record=record))
    assert cell.reader.version == "3.1.6"
    assert cell.warnings == [
        "archive: duplicate entry",
        "writer: 1 warning(s) while writing (see the archive)",
        "reader: UserWarning: r",
    ]
    assert cell.notices == ["reader: DeprecationWarning: d"]


def test_an_engine_error_is_that_containers_finding_not_the_runs_end(tmp_path: Any) -> None:
    from runner.phases.execute import Options, execute
    from tests.support.fake_engine import FakeEngine

    class Refusing(FakeEngine):
        def run(self, spec: RunSpec) -> RunResult:
            if spec.labels.get("org.zipstore-matrix.env", "").startswith("gdal"):
                raise ContainerError("OCI runtime create failed: no space left on device")
            return super().run(spec)

    from tests.support.fake_engine import HostHarness
    from tests.support.matrices import good

    engine = Refusing(images={"zipstore-matrix/debian:bookworm"}, handler=HostHarness(good))
    results = execute(plan(), engine, Options(out=tmp_path, work=tmp_path / "w"), lambda m: None)
    written = {(a.env, a.probe, a.fixture) for a in results.archives if a.status is WRITTEN}
    gdal = [
        c for c in results.cells if c.reader.library == "gdal" and (c.writer.env, c.writer.probe, c.fixture) in written
    ]
    assert gdal and {c.status for c in gdal} == {Status.CRASH}
    assert gdal[0].reason == "the container could not run: OCI runtime create failed: no space left on device"
    assert any(c.status is Status.PASS for c in results.cells)


def test_phases_run_in_order_and_as_selected() -> None:
    names = {phases: [s.__name__ for s in steps(phases)] for phases in ("all", "compat", "benchmark")}
    assert names["all"] == [
        "build_images",
        "write_archives",
        "add_external_archives",
        "check_archives",
        "read_archives",
        "run_benchmark",
    ]
    assert names["compat"] == names["all"][:5]
    assert names["benchmark"] == ["build_images", "run_benchmark"]
    assert steps("all")[0] is build_images


def test_values_read_from_an_entry_with_a_bad_crc_are_never_a_pass() -> None:
    arch = archive(zip_checks=ZipChecks(checked=True, crc_bad_members=["g/data/c/0"]))
    read = ProbeResult(run={}, record={"arrays": {"g/data": {"sha256": "a" * 64}, "other": {}}})
    verdict = cells.corrupt_read(Outcome(status=Status.PASS), arch, read)
    assert verdict.status is Status.MISMATCH
    assert "'g/data'" in verdict.reason and "'g/data/c/0' fails the CRC check" in verdict.reason
    refused = ProbeResult(run={}, record={"arrays": {"other": {}}})
    assert cells.corrupt_read(Outcome(status=Status.PASS), arch, refused).status is Status.PASS
    failed = Outcome(status=Status.FAIL, reason="Bad CRC-32")
    assert cells.corrupt_read(failed, arch, read) is failed


def test_values_read_from_a_raw_chunk_of_the_wrong_size_are_never_a_pass() -> None:
    arch = archive(
        zip_checks=ZipChecks(checked=True, chunk_size_wrong=["data.zarr/data/3"]), expected={"root": "data.zarr"}
    )
    read = ProbeResult(run={}, record={"arrays": {"data": {"sha256": "a" * 64}}})
    verdict = cells.corrupt_read(Outcome(status=Status.PASS), arch, read)
    assert verdict.status is Status.MISMATCH
    assert "'data.zarr/data/3' is a raw chunk of another size than its metadata says" in verdict.reason


def test_a_reader_is_told_the_stores_folder_unless_it_finds_it_or_takes_no_path() -> None:
    """A store zipped from its parent sits in a folder: a library reader is given it, and the cell says so; a
    viewer's opener (@vitessce/zarr-utils) is given the URL only, as a viewer would be, and the cell says that;
    an OME reader (bioio-ome-zarr) takes no path inside an archive, and the cell says that, never "given"."""
    import dataclasses

    from runner import probes

    written = archive(path="w/a.zip", expected={"arrays": {"data": {"shape": [2]}}, "root": "data.zarr"})
    [readable] = cells.readable([written])
    ep = plan().environments[0]
    told = next(t for t in cells.split_reads(ep, [readable], ("http",))[0] if t.probe.id == "zarr-zipstore")
    viewer = dataclasses.replace(told, probe=probes.ALL["vitessce-zip"])
    ome = dataclasses.replace(told, probe=probes.ALL["bioio-ome-zarr"], access="file")
    settings = Settings()
    assert cells.read_task(told, settings).args["root"] == "data.zarr"
    assert "root" not in cells.read_task(viewer, settings).args
    assert "root" not in cells.read_task(ome, settings).args
    record = {"arrays": {"data": {"shape": [2]}}}
    notices = {
        t.probe.id: cells.read_cell(
            t,
            written,
            cells.reader_side(ep.slug, t.probe, "1"),
            Outcome(status=Status.PASS),
            ProbeResult(run={}, record=record),
        ).notices
        for t in (told, viewer, ome)
    }
    assert any(n.startswith("given the store's folder inside the archive, data.zarr/") for n in notices[told.probe.id])
    assert any(
        n.startswith("not told the store's folder inside the archive, data.zarr/") for n in notices["vitessce-zip"]
    )
    assert any(
        n.startswith("not given the store's folder inside the archive, data.zarr/: this reader takes no path")
        for n in notices["bioio-ome-zarr"]
    )
    for probe in ("vitessce-zip", "bioio-ome-zarr"):
        assert not any(n.startswith("given the store's folder") for n in notices[probe])
    assert {p.id for p in probes.READERS if p.root == "none"} == {"ngff-zarr-ozx", "bioio-ome-zarr", "zarrnii"}


def test_a_large_fixture_is_read_once_and_over_http_in_the_part_its_writer_described() -> None:
    """The writer records each array's part (its first and last chunk) with its values; readers over HTTP
    are given those regions and judged against that part, readers of the file against the whole."""
    whole = {"shape": [4096, 4096], "dtype": "|u1", "sha256": "w" * 64, "chunks": [16, 16], "fill_value": 0}
    part = {"regions": [[[0, 16], [0, 16]], [[4080, 4096], [4080, 4096]]], "shape": [512], "dtype": "|u1"}
    written = archive(
        path="w/a.zip",
        fixture="many-chunks",
        expected={"arrays": {"many": {**whole, "part": {**part, "sha256": "p" * 64}}}},
    )
    [readable] = cells.readable([written])
    assert readable.part == {"many": part["regions"]} and readable.repeats == 1
    ep = plan().environments[0]
    file, http = (cells.split_reads(ep, [readable], access)[0][0] for access in (("file",), ("http",)))
    settings = Settings(read_repeats=3)
    assert "part" not in cells.read_task(file, settings).args and cells.read_task(file, settings).args["repeats"] == 1
    assert cells.read_task(http, settings).args["part"] == {"many": part["regions"]}
    assert cells.expected_of(file, written)["arrays"]["many"]["sha256"] == "w" * 64
    expected = cells.expected_of(http, written)
    judged = expected["arrays"]["many"]
    assert (judged["shape"], judged["sha256"], judged["chunks"]) == ([512], "p" * 64, [16, 16])
    assert "part" not in judged and written.expected["arrays"]["many"]["sha256"] == "w" * 64  # not changed
    record = {"arrays": {"many": {"shape": [512], "dtype": "|u1", "sha256": "p" * 64, "chunks": [16, 16]}}}
    assert classify.compare_outcome(expected, record).status is Status.PASS
    wrong = {"arrays": {"many": {**record["arrays"]["many"], "sha256": "x" * 64}}}
    assert classify.compare_outcome(expected, wrong).status is Status.MISMATCH
    reader = cells.reader_side(ep.slug, http.probe, "3.3.0")
    cell = cells.read_cell(http, written, reader, Outcome(status=Status.PASS), ProbeResult(run={}, record=record))
    assert any(n.startswith("read in part over HTTP: the first and the last chunk") for n in cell.notices)


@pytest.mark.parametrize(
    ("shape", "chunks", "regions"),
    [
        ([4096, 4096], [16, 16], [[[0, 16], [0, 16]], [[4080, 4096], [4080, 4096]]]),
        ([103, 47], [25, 10], [[[0, 25], [0, 10]], [[100, 103], [40, 47]]]),  # a partial last chunk
        ([10], [16], [[[0, 10]]]),  # one chunk: one region
    ],
)
def test_the_part_of_an_array_is_its_first_and_last_chunk(shape: list[int], chunks: list[int], regions: Any) -> None:
    sys.path.insert(0, str(probes_dir()))  # the probes' helpers, as the containers import them
    try:
        import _common  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(probes_dir()))
    assert _common.part_regions(shape, chunks) == regions


def test_a_cell_judged_by_agreement_says_how_many_readers_agreed_and_which_did_not_read() -> None:
    def read(reader: str, status: Status, sha: str = "") -> CellResult:
        return CellResult(
            id=f"ext.x--{reader}--f",
            writer=Side(env="external", probe="x", library="external", version=""),
            reader=Side(env=reader, probe="p", library=reader, version="1"),
            fixture="f",
            status=status,
            values={"a": sha} if sha else {},
            notices=["judged by agreement (no writer's record of the values): stale"],
        )

    cells_ = [read("r1", Status.PASS, "s"), read("r2", Status.PASS, "s"), read("r3", Status.PASS, "t"),
              read("r4", Status.FAIL)]  # fmt: skip
    cells.judge_by_consensus(cells_)
    assert [c.status for c in cells_] == [Status.PASS, Status.PASS, Status.MISMATCH, Status.FAIL]
    expected = (
        "judged by agreement (no writer's record of the values): 2 of the 3 readers that returned values read "
        "the same; 1 did not return values: r4 1 (fail)"
    )
    assert cells_[0].notices == [expected] and cells_[2].notices == [expected]  # counted again, not twice
