"""ZIP-level checks on one archive: where users' ZipStore bugs live (duplicates, CRCs, layout).

Standard library only; run on the host for every archive, whoever wrote it.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

METHODS = {0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz"}
ROOT_METADATA = ("zarr.json", ".zgroup", ".zarray")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(path: Path) -> dict[str, str]:
    """Name -> SHA-256 of the bytes a reader gets for it (zipfile's choice: the last copy of a duplicate)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {
                name: hashlib.sha256(zf.read(name)).hexdigest()
                for name in dict.fromkeys(zf.namelist())
                if not name.endswith("/")
            }
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}


def check_archive(path: Path) -> dict[str, Any]:
    """Facts about the archive plus ``problems``: the ones a reader may trip on."""
    facts: dict[str, Any] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    problems: list[str] = []  # what a reader may trip on: shown as a warning on every cell of the archive
    notes: list[str] = []  # departures from the single-file conventions (OME-Zarr RFC-9), not errors
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        facts.update(valid_zip=False, problems=[f"not a readable zip: {exc}"], notes=[])
        return facts
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        counts = Counter(names)
        duplicates = sorted(n for n, k in counts.items() if k > 1)
        differing = []
        for name in duplicates:
            copies = {zf.open(i).read() for i in infos if i.filename == name}
            if len(copies) > 1:
                differing.append(name)
        try:
            bad = zf.testzip()
            crc_error = None
        except Exception as exc:
            bad, crc_error = None, str(exc)
        files = [i for i in infos if not i.is_dir()]
        first_file = files[0].filename if files else None
        root_meta = [n for n in ROOT_METADATA if n in counts]
        facts.update(
            valid_zip=True,
            entries=len(infos),
            directories=sum(1 for i in infos if i.is_dir()),
            duplicates=duplicates,
            duplicates_differing=differing,
            crc_ok=bad is None and crc_error is None,
            crc_bad_member=bad,
            zip64=any(
                i.file_size >= 0xFFFFFFFF or i.compress_size >= 0xFFFFFFFF or i.header_offset >= 0xFFFFFFFF
                for i in infos
            )
            or len(infos) >= 0xFFFF
            or _has_zip64_end(path),
            compression=dict(Counter(METHODS.get(i.compress_type, str(i.compress_type)) for i in infos)),
            root_metadata=root_meta,
            first_entry=first_file,
            root_metadata_first=first_file in ROOT_METADATA,
            comment_bytes=len(zf.comment),
        )
        if duplicates:
            problems.append(
                f"{len(duplicates)} duplicate entry name(s), e.g. {duplicates[0]!r}"
                + (f"; {len(differing)} with differing content" if differing else "; copies identical")
            )
        if bad is not None:
            problems.append(f"CRC check failed for {bad!r}")
        if crc_error:
            problems.append(f"CRC check could not complete: {crc_error}")
        if not root_meta:
            problems.append("no Zarr metadata at the archive root (zarr.json / .zgroup / .zarray)")
        if any(m != "stored" for m in facts["compression"]):
            notes.append(f"ZIP-level compression used ({', '.join(facts['compression'])})")
        if root_meta and not facts["root_metadata_first"]:
            notes.append(f"root metadata is not the first entry (first: {first_file!r})")
    facts["problems"] = problems
    facts["notes"] = notes
    return facts


def _has_zip64_end(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536 - 22 - 20))
        tail = fh.read()
    return b"PK\x06\x07" in tail
