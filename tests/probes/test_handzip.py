"""The zips people make by hand (runner/probes/handzip_probe.py): each tool's archive layout, made here on the
host from a small store (entries, folder, directory entries, methods). The real-engine test makes them in the
image, from stores zarr wrote, and reads them back."""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from runner.resources import probes_dir
from tests.support.npm import need

STORE = {"zarr.json": b'{"zarr_format": 3, "node_type": "group"}' * 4, "a/zarr.json": b'{"shape": [4]}' * 8}
CHUNK = ("a/c/0", bytes(range(256)))
FILES = sorted([*STORE, CHUNK[0]])
STORED, DEFLATED, DEFLATE64, BZIP2, LZMA, ZSTD = 0, 8, 9, 12, 14, 93


@pytest.fixture(scope="module")
def handzip() -> Iterator[ModuleType]:
    sys.path.insert(0, str(probes_dir()))
    try:
        import handzip_probe  # type: ignore[import-not-found]

        yield handzip_probe
    finally:
        sys.path.remove(str(probes_dir()))


def made(handzip: ModuleType, tool: str, tmp_path: Path) -> list[zipfile.ZipInfo]:
    store = tmp_path / handzip.STORE
    for name, data in [*STORE.items(), CHUNK]:
        (store / name).parent.mkdir(parents=True, exist_ok=True)
        (store / name).write_bytes(data)
    archive = tmp_path / "out.zip"
    handzip.make(tool, str(tmp_path), str(archive))
    with zipfile.ZipFile(archive) as zf:
        return zf.infolist()


def files(infos: list[zipfile.ZipInfo], prefix: str = "") -> list[str]:
    return sorted(i.filename.removeprefix(prefix) for i in infos if not i.is_dir() and i.filename.startswith(prefix))


def methods(infos: list[zipfile.ZipInfo]) -> set[int]:
    return {i.compress_type for i in infos if not i.is_dir()}


def test_info_zip_from_the_parent_puts_the_store_in_a_folder_with_directory_entries(
    handzip: ModuleType, tmp_path: Path
) -> None:
    need("zip", "apt-get install zip")
    infos = made(handzip, "zip-r", tmp_path)
    assert files(infos) == [f"data.zarr/{f}" for f in FILES]
    assert {i.filename for i in infos if i.is_dir()} == {"data.zarr/", "data.zarr/a/", "data.zarr/a/c/"}
    assert DEFLATED in methods(infos) and methods(infos) <= {STORED, DEFLATED}  # it stores what does not shrink
    assert "zip-r" in handzip.IN_A_FOLDER


def test_info_zip_from_inside_with_minus_0_stores_everything_at_the_root(handzip: ModuleType, tmp_path: Path) -> None:
    need("zip", "apt-get install zip")
    infos = made(handzip, "zip-r0", tmp_path)
    assert files(infos) == FILES and {i.filename for i in infos if i.is_dir()} == {"a/", "a/c/"}
    assert methods(infos) == {STORED}


@pytest.mark.parametrize(
    ("tool", "method"), [("7z", DEFLATED), ("7z-deflate64", DEFLATE64), ("7z-bzip2", BZIP2), ("7z-lzma", LZMA)]
)
def test_7zip_uses_the_method_asked_for_at_the_root(
    handzip: ModuleType, tmp_path: Path, tool: str, method: int
) -> None:
    if shutil.which("7zz") is None:  # bookworm's 7zip package has 7zz only; later ones have 7z too
        need("7z", "apt-get install 7zip")
    infos = made(handzip, tool, tmp_path)
    assert files(infos) == FILES and method in methods(infos) and methods(infos) <= {STORED, method}


def test_shutil_make_archive_deflates_from_the_root_with_directory_entries(handzip: ModuleType, tmp_path: Path) -> None:
    infos = made(handzip, "shutil", tmp_path)
    assert files(infos) == FILES and {i.filename for i in infos if i.is_dir()} == {"a/", "a/c/"}
    assert DEFLATED in methods(infos)


def test_zipfile_deflated_writes_files_only(handzip: ModuleType, tmp_path: Path) -> None:
    infos = made(handzip, "zipfile-deflated", tmp_path)
    assert files(infos) == FILES and len(infos) == len(FILES) and methods(infos) == {DEFLATED}


def test_zipfile_zstd_is_python_314s_and_earlier_pythons_say_so(handzip: ModuleType, tmp_path: Path) -> None:
    if hasattr(zipfile, "ZIP_ZSTANDARD"):
        infos = made(handzip, "zipfile-zstd", tmp_path)
        assert files(infos) == FILES and len(infos) == len(FILES) and methods(infos) == {ZSTD}
    else:
        with pytest.raises(handzip.c.Unsupported, match=r"zipfile has no ZIP_ZSTANDARD \(Python 3\.14\+\)"):
            made(handzip, "zipfile-zstd", tmp_path)


def test_finders_layout_has_a_folder_and_an_appledouble_file_beside_each_file(
    handzip: ModuleType, tmp_path: Path
) -> None:
    infos = made(handzip, "finder", tmp_path)
    assert files(infos, "data.zarr/") == FILES
    doubles = {i.filename for i in infos if i.filename.startswith("__MACOSX/") and not i.is_dir()}
    assert doubles == {
        "__MACOSX/data.zarr/._zarr.json",
        "__MACOSX/data.zarr/a/._zarr.json",
        "__MACOSX/data.zarr/a/c/._0",
    }
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert zf.read("__MACOSX/data.zarr/._zarr.json")[:8] == bytes.fromhex("0005160700020000")  # AppleDouble v2
    assert {"data.zarr/", "data.zarr/a/", "data.zarr/a/c/", "__MACOSX/"} <= {i.filename for i in infos if i.is_dir()}
    assert methods(infos) == {DEFLATED} and "finder" in handzip.IN_A_FOLDER


def test_an_archive_whose_files_are_not_in_name_order_says_so(handzip: ModuleType, tmp_path: Path) -> None:
    """Info-ZIP adds files as the file system lists the folder: two runs of zip -r laid out the same 25 entries
    in other orders (tests/integration/test_http_real.py), and a reader's requests over HTTP follow the layout.
    A tool that walks by name (sorted files, then sorted subfolders; or every path sorted) is not flagged."""

    def archive(names: list[str]) -> str:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("data.zarr/", b"")
            for name in names:
                zf.writestr(name, b"x")
            zf.writestr("__MACOSX/data.zarr/._zarr.json", b"")
        return str(path)

    walked = ["data.zarr/zarr.json", "data.zarr/a/zarr.json", "data.zarr/a/c/0/0", "data.zarr/a/c/0/1"]
    assert handzip.order(archive(walked)) == []
    assert handzip.order(archive(sorted(walked))) == []
    said = handzip.order(archive([walked[0], walked[1], walked[3], walked[2]]))
    assert said == ["its files are not in name order: the tool added them as the file system listed the folder"]
