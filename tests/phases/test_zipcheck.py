from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runner.probes.zipinspect import inspect, rfc9


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
    assert facts["problems"] == [] and facts["notes"] == ["RFC-9: meets the MUSTs; no ZIP64; no RFC-9 archive comment"]
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
        "RFC-9: not RFC-9: no zarr.json at the archive root (MUST); ZIP-level compression used (SHOULD be STORED); "
        "no ZIP64; no RFC-9 archive comment"
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


def test_real_archives_from_other_projects(external_zips: Path) -> None:
    """anndata's archive carries duplicate names from attribute rewrites; zarr-python's example is clean."""
    zarr_dir = external_zips / "zarr"
    anndata = next(zarr_dir.glob("scverse+anndata__*v0.11.4*"))
    assert check_archive(anndata)["duplicates"]
    example = next(zarr_dir.glob("zarr-developers+zarr-python__docs_data_example.zip"))
    facts = check_archive(example)
    assert facts["crc_ok"] and facts["duplicates"] == []
    ome = next(zarr_dir.glob("google+neuroglancer__*simple_0.5.zip"))
    assert check_archive(ome)["root_metadata_first"]


RFC9_COMMENT = b'{"ome": {"version": "0.5", "zipFile": {"centralDirectory": {"jsonFirst": true}}}}'
CONFORMANT = [
    ("zarr.json", b"{}"),
    ("s0/zarr.json", b"{}"),
    ("s1/zarr.json", b"{}"),
    ("s0/c/0", b"x"),
    ("s1/c/0", b"y"),
]


FALSE_CLAIM = (
    "the archive comment claims jsonFirst, but the zarr.json files do not lead the central directory (a false claim)"
)


def rfc9_of(path: Path, comment: bytes = RFC9_COMMENT, zip64: bool = True) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return rfc9(zf.infolist(), comment, zip64)


@pytest.mark.parametrize(
    ("entries", "method", "comment", "differs"),
    [
        (CONFORMANT, zipfile.ZIP_STORED, RFC9_COMMENT, []),
        (CONFORMANT[1:3] + CONFORMANT[:1] + CONFORMANT[3:], zipfile.ZIP_STORED, RFC9_COMMENT,
         ["the root zarr.json is not the first entry", "the root zarr.json is not the first central-directory record",
          "the zarr.json files do not lead the central directory breadth-first", FALSE_CLAIM]),
        (CONFORMANT[:2] + CONFORMANT[3:4] + CONFORMANT[2:3] + CONFORMANT[4:], zipfile.ZIP_STORED, RFC9_COMMENT,
         ["the zarr.json files do not lead the central directory breadth-first", FALSE_CLAIM]),
        (CONFORMANT, zipfile.ZIP_DEFLATED, b'{"ome": {"version": "0.5"}}',
         ["ZIP-level compression used (SHOULD be STORED)", "no RFC-9 archive comment"]),
        ([*CONFORMANT, ("inner.zip", b"PK")], zipfile.ZIP_STORED, RFC9_COMMENT, ["a zip inside the zip (MUST NOT)"]),
    ],
    ids=["conformant", "root-not-first", "json-not-leading", "deflated-no-comment", "nested"],
)  # fmt: skip
def test_rfc9_says_what_differs(
    tmp_path: Path, entries: list[tuple[str, bytes]], method: int, comment: bytes, differs: list[str]
) -> None:
    facts = rfc9_of(make(tmp_path / "o.ozx", entries, method), comment)
    assert facts["differs"] == differs
    assert facts["verdict"] == ("RFC-9 conformant" if not differs else facts["verdict"])
    musts = "a zip inside the zip (MUST NOT)" not in differs and FALSE_CLAIM not in differs
    assert facts["conformant"] is (not differs) and facts["musts"] is musts


def test_the_checkers_record_is_taken_field_by_field_and_a_wrong_type_is_left_out() -> None:
    from runner.results.probe_data import ZipChecks

    lying = {
        "entries": "12",  # a string where a count belongs
        "crc_ok": 1,  # an int where a bool belongs
        "duplicates": ["a", 3, None, "b"],
        "compression": {"stored": 3, "deflate": True, "zstd": "2"},
        "problems": "not a list",
        "rfc9": {"checks": {"stored": True, "zip64": "no"}, "verdict": "RFC-9 conformant", "conformant": "yes"},
        "crc_bad_members": [{"name": "x"}],
    }
    checks = ZipChecks.from_record(lying)
    assert checks.checked and checks.entries is None and checks.crc_ok is None
    assert checks.duplicates == ["a", "b"] and checks.compression == {"stored": 3}
    assert checks.problems == [] and checks.crc_bad_members == []
    assert checks.rfc9 is not None and checks.rfc9.checks == {"stored": True} and checks.rfc9.conformant is False
    assert ZipChecks.from_record({"rfc9": {"verdict": 3}}).rfc9 is None
    assert not ZipChecks.from_record({"checked": "true"}).checked


def test_raw_chunks_of_another_size_than_the_metadata_says_are_named(tmp_path: Path) -> None:
    """Uncompressed arrays only (v2 without compressor and filters, v3 with the bytes codec alone): every
    chunk of a regular grid, edge chunks included, holds chunk shape × item size bytes."""
    v2 = json.dumps({"zarr_format": 2, "shape": [10], "chunks": [4], "dtype": "<i2", "compressor": None,
                     "filters": None, "fill_value": 0, "order": "C"}).encode()  # fmt: skip
    v3 = json.dumps({"zarr_format": 3, "node_type": "array", "shape": [4, 4], "data_type": "uint16",
                     "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 4]}},
                     "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]}).encode()  # fmt: skip
    entries = [(".zgroup", b'{"zarr_format": 2}'), ("a/.zarray", v2), ("a/0", bytes(8)), ("a/1", bytes(16)),
               ("a/2", bytes(8)), ("b/zarr.json", v3), ("b/c/0/0", bytes(16)), ("b/c/1/0", bytes(3))]  # fmt: skip
    out = inspect(str(make(tmp_path / "a.zip", entries)))
    assert out["facts"]["chunk_size_wrong"] == ["a/1", "b/c/1/0"]
    assert (
        "raw chunk entry 'a/1' holds 16 bytes where its array's metadata says 8 (chunk shape × item size) (and 1 more)"
        in out["facts"]["problems"]
    )
    assert all("raw_chunk_bytes" not in a for a in out["arrays"].values())  # readers are not given it
    gzip = v2.replace(b'"compressor": null', b'"compressor": {"id": "gzip", "level": 1}')
    compressed = inspect(
        str(make(tmp_path / "b.zip", [(".zgroup", b'{"zarr_format": 2}'), ("a/.zarray", gzip), ("a/1", bytes(3))]))
    )
    assert compressed["facts"]["chunk_size_wrong"] == []  # a compressed chunk's size says nothing


def test_the_oversized_chunk_of_the_hostile_corpus_is_named(tmp_path: Path) -> None:
    from runner.phases import hostile

    path = tmp_path / "chunk-oversized.zip"
    hostile.CASES["chunk-oversized"](path)
    assert inspect(str(path))["facts"]["chunk_size_wrong"] == ["data/3"]


ARRAY = b'{"zarr_format": 3, "node_type": "array"}'


def multipart(path: Path) -> Path:
    """A zip whose end record says it is disk 1 of a spanned set (what zip -s makes): one part of several."""
    make(path, CONFORMANT)
    raw = bytearray(path.read_bytes())
    end = raw.rfind(b"PK\x05\x06")
    raw[end + 4 : end + 8] = b"\x01\x00\x01\x00"  # this disk 1, the central directory's disk 1
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    ("case", "entries", "method", "comment", "zip64", "kind"),
    [
        ("single array", [("zarr.json", ARRAY), ("c/0", b"x")], zipfile.ZIP_STORED, RFC9_COMMENT, True, "valid"),
        ("group hierarchy", CONFORMANT, zipfile.ZIP_STORED, RFC9_COMMENT, True, "valid"),
        ("missing ZIP comment metadata", CONFORMANT, zipfile.ZIP_STORED, b"", True, "warning"),
        ("not using ZIP64", CONFORMANT, zipfile.ZIP_STORED, RFC9_COMMENT, False, "warning"),
        ("zarr.json not breadth-first", CONFORMANT[:2] + CONFORMANT[3:4] + CONFORMANT[2:3] + CONFORMANT[4:],
         zipfile.ZIP_STORED, b"", True, "warning"),
        ("uses zip compression", CONFORMANT, zipfile.ZIP_DEFLATED, RFC9_COMMENT, True, "warning"),
        ("no zarr.json at the root", CONFORMANT[1:], zipfile.ZIP_STORED, RFC9_COMMENT, True, "failure"),
        (".ozx contained in the archive", [*CONFORMANT, ("inner.ozx", b"PK")], zipfile.ZIP_STORED, RFC9_COMMENT,
         True, "failure"),
        ("comment claims sorted but not", CONFORMANT[:2] + CONFORMANT[3:4] + CONFORMANT[2:3] + CONFORMANT[4:],
         zipfile.ZIP_STORED, RFC9_COMMENT, True, "failure"),
    ],
)  # fmt: skip
def test_the_ozx_compatibility_kit_cases_of_ome_ngff_398_are_told_apart(
    tmp_path: Path, case: str, entries: list[tuple[str, bytes]], method: int, comment: bytes, zip64: bool, kind: str
) -> None:
    """ome/ngff #398 lists valid, warning and failure cases for .ozx; each is classified by the RFC-9 check
    (its "ends with .zip" warning is not checked: the runner names the archives itself)."""
    facts = rfc9_of(make(tmp_path / "k.ozx", entries, method), comment, zip64)
    found = "valid" if facts["conformant"] else "warning" if facts["musts"] else "failure"
    assert found == kind, (case, facts["verdict"])


def test_a_multi_part_zip_is_a_failure_of_the_kit_too(tmp_path: Path) -> None:
    facts = check_archive(multipart(tmp_path / "part.ozx"))
    assert (
        facts["multi_part"]
        and "one part of a multi-part (spanned) zip: its end record says disk 1" in facts["problems"]
    )
    assert not facts["rfc9"]["musts"] and "a part of a multi-part zip (MUST NOT)" in facts["rfc9"]["differs"]
    assert not check_archive(make(tmp_path / "one.ozx", CONFORMANT))["multi_part"]
