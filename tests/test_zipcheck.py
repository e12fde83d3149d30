from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

from runner.probes.zipinspect import inspect
from tests.conftest import require_external_zips


def check_archive(path: Path) -> dict[str, Any]:
    facts: dict[str, Any] = inspect(str(path))["facts"]
    return facts


def make(path: Path, entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        with zipfile.ZipFile(path, "w", compression=method) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def test_clean_v3_archive(tmp_path: Path) -> None:
    facts = check_archive(make(tmp_path / "a.zip", [("zarr.json", b"{}"), ("a/zarr.json", b"{}"), ("a/c/0", b"x")]))
    assert facts["problems"] == [] and facts["notes"] == []
    assert facts["crc_ok"] and facts["root_metadata"] == ["zarr.json"] and facts["root_metadata_first"]
    assert facts["compression"] == {"stored": 3} and facts["entries"] == 3 and not facts["zip64"]


def test_duplicates_are_found_and_told_apart(tmp_path: Path) -> None:
    facts = check_archive(
        make(
            tmp_path / "d.zip",
            [
                (".zgroup", b"{}"),
                (".zattrs", b"{}"),
                (".zattrs", b'{"a":1}'),
                ("x/.zarray", b"1"),
                ("x/.zarray", b"1"),
            ],
        )
    )
    assert facts["duplicates"] == [".zattrs", "x/.zarray"]
    assert facts["duplicates_differing"] == [".zattrs"]
    assert facts["problems"] == [
        "2 duplicate entry name(s), e.g. '.zattrs'; 1 with differing content",
        "Zarr metadata not usable: 'x/.zarray' is not a JSON object",
    ]


def test_bad_crc_and_layout_notes(tmp_path: Path) -> None:
    path = make(tmp_path / "c.zip", [("data/0", b"A" * 100), (".zgroup", b"{}")], zipfile.ZIP_DEFLATED)
    facts = check_archive(path)
    assert facts["notes"] == [
        "ZIP-level compression used (deflate)",
        "root metadata is not the first entry (first: 'data/0')",
    ]
    raw = bytearray(make(tmp_path / "s.zip", [(".zgroup", b"{}"), ("data/0", b"A" * 100)]).read_bytes())
    raw[raw.index(b"A" * 100)] = ord("B")
    (tmp_path / "s.zip").write_bytes(bytes(raw))
    facts = check_archive(tmp_path / "s.zip")
    assert not facts["crc_ok"] and facts["crc_bad_member"] == "data/0"
    assert "CRC check failed for 'data/0'" in facts["problems"]


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "n.zip").write_bytes(b"hello")
    facts = check_archive(tmp_path / "n.zip")
    assert facts["valid_zip"] is False and facts["problems"][0].startswith("not a readable zip")


def test_real_archives_from_other_projects() -> None:
    """anndata's archive carries duplicate names from attribute rewrites; zarr-python's example is clean."""
    zarr_dir = require_external_zips() / "zarr"
    anndata = next(zarr_dir.glob("scverse+anndata__*v0.11.4*"))
    assert check_archive(anndata)["duplicates"]
    example = next(zarr_dir.glob("zarr-developers+zarr-python__docs_data_example.zip"))
    facts = check_archive(example)
    assert facts["crc_ok"] and facts["duplicates"] == []
    ome = next(zarr_dir.glob("google+neuroglancer__*simple_0.5.zip"))
    assert check_archive(ome)["root_metadata_first"]
