"""Each reader's call on the page comes from the probe's own marked lines, with the archive as data.zip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner import probes
from runner.report import calls, render

PROBE = textwrap.dedent(
    """
    def open_store(zarr, archive):
        import zarr  # call: a
        url = "zip::" + c.file_url(archive)  # call: b
        return zarr.storage.ZipStore(archive, mode="r")  # call: a

    def read(args):
        kwargs = {
            "group": None,
            "consolidated": False,
        }  # call: a b
        with h5py.File(args["archive"], "r") as f:  # call: c
            pass
        ds = netCDF4.Dataset(f"{c.file_url(archive)}#mode=zarr,zip", "r")  # call: c
        store, ds = None, xr.open_zarr(url, **kwargs)  # not marked
        return store, xr.open_zarr(url, **kwargs)  # call: b
    """
)


def test_marked_statements_become_the_snippet_with_the_archive_as_data_zip() -> None:
    found = calls.snippets(PROBE, "python")
    assert found["a"] == "\n".join(
        [
            "import zarr",
            "zarr.storage.ZipStore('data.zip', mode='r')",
            "kwargs = {'group': None, 'consolidated': False}",  # the mark on a formatted statement's last line
        ]
    )
    assert found["b"].splitlines() == [
        "url = 'zip::file://' + os.path.abspath('data.zip')",
        "kwargs = {'group': None, 'consolidated': False}",
        "xr.open_zarr(url, **kwargs)",  # return (store, CALL): the call alone
    ]
    assert found["c"].splitlines() == [
        "with h5py.File('data.zip', 'r') as f:",  # a compound statement: its first line
        "ds = netCDF4.Dataset(f\"file://{os.path.abspath('data.zip')}#mode=zarr,zip\", 'r')",
    ]


def test_a_mark_that_belongs_to_no_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 2"):
        calls.snippets("x = 1\n# call: a\n", "python")


def test_javascript_marks_keep_the_line_and_show_the_archive() -> None:
    text = "const bytes = readFileSync(args.archive); // call: z\nconst other = 1;\n"
    assert calls.snippets(text, "javascript") == {"z": 'const bytes = readFileSync("data.zip");'}


def test_every_reader_probe_shows_its_call_on_data_zip() -> None:
    found = calls.reader_calls(Path(probes.__file__).parent, {p.id: p.script for p in probes.READERS})
    over_http = {p.id + "@http" for p in probes.READERS if "http" in p.access}
    assert set(found) == {p.id for p in probes.READERS if "file" in p.access} | over_http
    for probe, snippet in found.items():
        if probe in over_http:  # over HTTP the reader is given the archive's URL, never a path
            assert "url" in snippet and "data.zip" not in snippet, (probe, snippet)
        else:
            assert "data.zip" in snippet, probe
    assert "gdal.OpenEx('/vsizip/data.zip', gdal.OF_MULTIDIM_RASTER)" in found["gdal-multidim"]
    assert "zarr.storage.ZipStore('data.zip', mode='r')" in found["zarr-zipstore"]


def test_the_page_shows_the_call_beside_its_column_and_in_the_notes() -> None:
    from runner.results.model import Results, Status

    results = Results.read(Path(__file__).parent / "golden" / "results.json")
    failing = next(c for c in results.cells if c.fixture == "int32-random")
    failing.status, failing.reason = Status.FAIL, "KeyError: 'zarr.json'"
    pages = render.render_pages(results)
    assert 'id="call-zarr-zipstore"' in pages["index.html"]
    fixture = pages["fixture-int32-random.html"]
    assert 'href="index.html#call-zarr-fsspec"' in fixture
    assert "<summary>the call</summary>" in fixture
    assert f"<code>python -m runner repro {failing.id}</code>" in fixture
