from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runner.probes.zipinspect import inspect, normalise_dtype
from runner.results.classify import consensus
from runner.results.external import discover
from runner.results.model import Status


def arrays_in(path: Path) -> tuple[int | None, dict[str, Any]]:
    found = inspect(str(path))
    return found["zarr_format"], found["arrays"]


def make(path: Path, entries: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, meta in entries.items():
            zf.writestr(name, json.dumps(meta) if not isinstance(meta, bytes) else meta)
    return path


def test_v2_and_v3_arrays_come_from_their_metadata(tmp_path: Path) -> None:
    v2 = make(tmp_path / "v2.zip", {
        ".zgroup": {"zarr_format": 2},
        "a/.zarray": {"shape": [4, 5], "chunks": [2, 5], "dtype": ">f4", "zarr_format": 2},
        "b/c/.zarray": {"shape": [3], "chunks": [3], "dtype": "|O", "zarr_format": 2},
    })  # fmt: skip
    assert arrays_in(v2) == (2, {
        "a": {"shape": [4, 5], "dtype": "<f4", "chunks": [2, 5]},
        "b/c": {"shape": [3], "dtype": "str", "chunks": [3]},
    })  # fmt: skip
    v3 = make(tmp_path / "v3.zip", {
        "zarr.json": {"zarr_format": 3, "node_type": "array", "shape": [8, 8], "data_type": "uint8",
                      "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 8]}},
                      "codecs": [{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 2]}}]},
    })  # fmt: skip
    assert arrays_in(v3) == (3, {"": {"shape": [8, 8], "dtype": "|u1", "chunks": [2, 2]}})


def test_not_a_zip_or_no_zarr(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x05\x06 truncated")
    assert arrays_in(tmp_path / "broken.zip") == (None, {})
    assert arrays_in(make(tmp_path / "plain.zip", {"readme.txt": b"hello"})) == (None, {})


@pytest.mark.parametrize(("raw", "norm"), [("<i4", "<i4"), (">i2", "<i2"), ("<u1", "|u1"), ("|b1", "|b1"),
                                           ("<U13", "str"), ("float32", "<f4"), ("string", "str"),
                                           ([["a", "<i4"]], None)])  # fmt: skip
def test_dtypes_are_said_the_way_the_probes_report_them(raw: object, norm: str | None) -> None:
    assert normalise_dtype(raw) == norm


def test_discover_groups_by_folder_and_reads_the_manifest(tmp_path: Path) -> None:
    make(tmp_path / "zarr" / "owner+repo__data_x.zip", {".zgroup": {"zarr_format": 2}})
    make(tmp_path / "edge" / "other+lib__odd.zip", {"a.txt": b"x"})
    (tmp_path / "MANIFEST.tsv").write_text(
        "folder\tfile\trepo\tcommit\nzarr\towner+repo__data_x.zip\towner/repo\tabc123\n"
    )
    found = discover(tmp_path)
    assert [(a.folder, a.name, a.source, a.commit, a.fixture) for a in found] == [
        ("edge", "odd", "other/lib", "", "external-edge"),
        ("zarr", "data_x", "owner/repo", "abc123", "external-zarr"),
    ]


def test_the_shared_corpus_is_understood(external_zips: Path) -> None:
    """All 59 archives are inspected without an exception (six used to crash the host's checks), the 20
    Zarr ones declare arrays, and the others none."""
    found = discover(external_zips)
    assert len(found) == 59
    inspected = {a.name: (a.folder, inspect(str(a.path))) for a in found}
    zarr = [name for name, (folder, r) in inspected.items() if folder == "zarr" and r["arrays"]]
    assert len(zarr) == 20
    assert all(not r["arrays"] for folder, r in inspected.values() if folder != "zarr")
    assert all(r["facts"]["problems"] is not None for _, r in inspected.values())


def test_consensus_marks_the_minority_and_needs_a_strict_majority() -> None:
    readings = {"c1": {"a": "x" * 64, "b": "1" * 64}, "c2": {"a": "x" * 64}, "c3": {"a": "y" * 64}}
    verdicts = consensus(readings)
    assert set(verdicts) == {"c3"}
    assert verdicts["c3"].status is Status.MISMATCH
    assert "values differ from the majority reading" in verdicts["c3"].reason
    assert "read by 2 of 3 readers" in verdicts["c3"].reason
    assert consensus({"c1": {"a": "x" * 64}, "c2": {"a": "y" * 64}}) == {}  # a tie judges nobody
