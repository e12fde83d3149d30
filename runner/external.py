"""Archives written by other people's software (``--external DIR``): what each holds, read from its metadata.

Nobody here wrote them, so there is no writer's record: the arrays and their shapes and dtypes come from
the archive's own ``.zarray`` / ``zarr.json`` files, and the values are judged by agreement between the
readers (see ``classify.consensus``). Zips with no Zarr inside (the edge and broken-zip corpora) are read
for robustness: a clean failure is the right answer; a crash, a hang or an OOM is the finding.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Zarr v3 data types -> the little-endian numpy ``dtype.str`` the probes report (strings -> "str").
V3_DTYPES = {
    "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4",
    "uint32": "<u4", "int64": "<i8", "uint64": "<u8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
    "complex64": "<c8", "complex128": "<c16", "string": "str",
}  # fmt: skip

DESCRIPTIONS = {
    "zarr": "Zarr archives written by other projects' software (netcdf-c, zarr-python, zarrita.js, zarrs, "
    "AnnData, neuroglancer, THREDDS). No writer's record exists: values are judged by agreement between readers.",
    "edge": "Unusual but valid zips with no Zarr inside (ZIP64, data descriptors, bzip2/xz/zstd members, "
    "unicode names). A clean failure is the right answer; a crash, hang or OOM is the finding.",
    "yauzl": "A reader-strictness corpus: broken zips (failure_*) and odd valid ones (success_*), no Zarr inside. "
    "A clean failure is the right answer; a crash, hang or OOM is the finding.",
}


@dataclass(frozen=True, kw_only=True)
class ExternalArchive:
    path: Path  # on the host
    relative: str  # below the external directory
    folder: str
    name: str
    source: str  # owner/repo
    commit: str
    zarr_format: int | None
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def fixture(self) -> str:
        return f"external-{self.folder}"


def normalise_dtype(dtype: Any) -> str | None:
    """The dtype string a probe reports for this metadata dtype (little-endian; strings as "str")."""
    if isinstance(dtype, str):
        if dtype in V3_DTYPES:
            return V3_DTYPES[dtype]
        if len(dtype) >= 2 and dtype[0] in "<>|=":
            kind = dtype[1]
            if kind in "OU":
                return "str"
            if dtype[1:] in ("b1", "i1", "u1"):
                return "|" + dtype[1:]  # numpy spells single-byte types without byte order
            return ("<" + dtype[1:]) if dtype[0] in ">=" else dtype
    return None  # structured or extension types: not compared


def _v3_chunks(meta: dict[str, Any]) -> list[int] | None:
    for codec in meta.get("codecs") or []:
        if isinstance(codec, dict) and codec.get("name") == "sharding_indexed":
            return list(codec.get("configuration", {}).get("chunk_shape", [])) or None
    grid = meta.get("chunk_grid", {})
    return list(grid.get("configuration", {}).get("chunk_shape", [])) or None


def arrays_in(path: Path) -> tuple[int | None, dict[str, dict[str, Any]]]:
    """(Zarr format, {array path: {shape, dtype}}) from the archive's metadata; (None, {}) if there is none."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None, {}
    arrays: dict[str, dict[str, Any]] = {}
    formats: set[int] = set()
    with zf:
        for name in dict.fromkeys(zf.namelist()):
            leaf = name.rsplit("/", 1)[-1]
            if leaf not in (".zarray", "zarr.json"):
                continue
            try:
                meta = json.loads(zf.read(name))
            except (ValueError, zipfile.BadZipFile, OSError, NotImplementedError):
                continue
            if not isinstance(meta, dict):
                continue
            array_path = name[: -len(leaf)].rstrip("/")
            if leaf == ".zarray":
                formats.add(2)
                dtype = normalise_dtype(meta.get("dtype"))
                chunks = meta.get("chunks")
            elif meta.get("node_type") == "array":
                formats.add(3)
                dtype = normalise_dtype(meta.get("data_type"))
                chunks = _v3_chunks(meta)
            else:
                formats.add(3) if meta.get("zarr_format") == 3 else None
                continue
            entry: dict[str, Any] = {"shape": list(meta.get("shape", []))}
            if dtype is not None:
                entry["dtype"] = dtype
            if chunks:
                entry["chunks"] = list(chunks)
            arrays[array_path] = entry
    return (max(formats) if formats else None), dict(sorted(arrays.items()))


def _manifest(directory: Path) -> dict[str, tuple[str, str]]:
    """file name -> (source repository, commit) from MANIFEST.tsv, when the directory has one."""
    out: dict[str, tuple[str, str]] = {}
    path = directory / "MANIFEST.tsv"
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                out[row.get("file", "")] = (row.get("repo", ""), row.get("commit", ""))
    return out


def discover(directory: Path) -> list[ExternalArchive]:
    """Every ``*.zip`` below ``directory``, grouped by its first folder, in a stable order."""
    known = _manifest(directory)
    found = []
    for path in sorted(directory.rglob("*.zip")):
        relative = path.relative_to(directory).as_posix()
        folder = relative.split("/", 1)[0] if "/" in relative else "other"
        repo, commit = known.get(path.name, ("", ""))
        if not repo and "__" in path.name:
            repo = path.name.split("__", 1)[0].replace("+", "/")
        zarr_format, arrays = arrays_in(path)
        name = path.stem.split("__", 1)[-1]
        found.append(
            ExternalArchive(
                path=path, relative=relative, folder=folder, name=name, source=repo, commit=commit,
                zarr_format=zarr_format, arrays=arrays,
            )
        )  # fmt: skip
    return found
