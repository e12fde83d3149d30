"""ZIP-level facts about one archive, read with hard caps. Standard library only, nothing from ``runner``.

It runs inside a locked-down container (``zipcheck_probe.py``), never on the host: the archive's bytes
are untrusted. Every entry is streamed (never held whole), with caps on the entries read, the bytes
inflated per entry and per archive, the inflation ratio, name lengths and metadata sizes. Whatever an
archive does (a bomb, an encrypted or unknown-method entry, a lying central directory, a wrong CRC),
it becomes a line in ``problems``, never an exception.

Returns ``facts`` (what the page shows), ``manifest`` (entry name -> SHA-256 of the bytes a reader gets,
zipfile's choice: the last copy of a duplicate), and the Zarr arrays its metadata declares.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from collections import Counter
from typing import Any

METHODS = {0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 99: "aes"}
ROOT_METADATA = ("zarr.json", ".zgroup", ".zarray")
METADATA = (".zarray", "zarr.json")
BLOCK = 1 << 20

#: The caps. An archive past one is described as far as the cap, and the cap is named in its problems.
CAPS = {
    "entries": 200_000,  # central-directory records looked at
    "entry_bytes": 1 << 30,  # bytes inflated from one entry
    "archive_bytes": 4 << 30,  # bytes inflated from the whole archive
    "ratio": 1000,  # inflated : stored, once an entry has inflated past ratio_after bytes
    "ratio_after": 64 << 20,
    "name_length": 4096,
    "metadata_bytes": 16 << 20,  # a .zarray / zarr.json parsed as JSON
    "arrays": 2000,  # arrays taken from the metadata for the readers to open
}

#: Zarr v3 data types -> the little-endian numpy ``dtype.str`` the probes report (strings -> "str").
V3_DTYPES = {
    "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4",
    "uint32": "<u4", "int64": "<i8", "uint64": "<u8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
    "complex64": "<c8", "complex128": "<c16", "string": "str",
}  # fmt: skip


class CapReached(Exception):
    pass


def _words(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int], keep: int = 0) -> tuple[str, bytes]:
    """SHA-256 of an entry's inflated bytes (checking its CRC as zipfile does at the end), and its first
    ``keep`` bytes. Raises ``CapReached`` past a cap and whatever zipfile raises for a broken entry."""
    digest, kept, total = hashlib.sha256(), bytearray(), 0
    with zf.open(info) as fh:
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            total += len(block)
            budget[0] -= len(block)
            if total > CAPS["entry_bytes"]:
                raise CapReached(f"inflates past {CAPS['entry_bytes']:,} bytes")
            if budget[0] < 0:
                raise CapReached(f"the archive inflates past {CAPS['archive_bytes']:,} bytes in all")
            stored = max(info.compress_size, 1)
            if total > CAPS["ratio_after"] and total / stored > CAPS["ratio"]:
                raise CapReached(f"inflates more than {CAPS['ratio']}:1 ({stored:,} bytes stored)")
            digest.update(block)
            if len(kept) < keep:
                kept += block[: keep - len(kept)]
    return digest.hexdigest(), bytes(kept)


def _is_dir(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")  # zipfile's is_dir() fails on an empty name


def unsafe_name(name: str) -> str | None:
    if len(name) > CAPS["name_length"]:
        return f"a name of {len(name):,} characters"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"an absolute name {name[:80]!r}"
    if ".." in parts:
        return f"a name that climbs out of the archive {name[:80]!r}"
    if "\x00" in name:
        return "a name with a NUL character"
    return None


def inspect(path: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    problems: list[str] = []  # what a reader may trip on: a warning on every cell of the archive
    notes: list[str] = []  # departures from the single-file conventions (OME-Zarr RFC-9), not errors
    out: dict[str, Any] = {"facts": facts, "manifest": {}, "zarr_format": None, "arrays": {}}
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, EOFError, ValueError, ...: every way a zip can lie
        facts.update(valid_zip=False, problems=[f"not a readable zip: {_words(exc)}"], notes=[])
        return out
    with zf:
        try:
            _inspect(path, zf, out, problems, notes)
        except Exception as exc:  # a way of lying nobody foresaw: said, never raised
            problems.append(f"the checks stopped early: {_words(exc)}")
            facts.setdefault("valid_zip", True)
    facts["problems"] = problems
    facts["notes"] = notes
    return out


def _inspect(path: str, zf: zipfile.ZipFile, out: dict[str, Any], problems: list[str], notes: list[str]) -> None:
    facts = out["facts"]
    infos = zf.infolist()
    if len(infos) > CAPS["entries"]:
        problems.append(f"{len(infos):,} entries: only the first {CAPS['entries']:,} were read")
        infos = infos[: CAPS["entries"]]
    names = [i.filename for i in infos]
    counts = Counter(names)
    budget = [CAPS["archive_bytes"]]
    hashes: dict[int, str] = {}
    metadata: dict[str, bytes] = {}
    unreadable: list[str] = []
    crc_bad: list[str] = []
    capped: list[str] = []
    for n, info in enumerate(infos):
        why = unsafe_name(info.filename)
        if why is not None:
            problems.append(f"entry {n}: {why}")
        if _is_dir(info):
            continue
        leaf = info.filename.rsplit("/", 1)[-1]
        keep = CAPS["metadata_bytes"] + 1 if leaf in METADATA else 0
        try:
            hashes[n], head = stream(zf, info, budget, keep)
        except CapReached as exc:
            capped.append(f"{info.filename[:200]!r} {exc}: not read further")
            if "in all" in str(exc):
                break
            continue
        except zipfile.BadZipFile as exc:
            if "CRC" in str(exc):
                crc_bad.append(info.filename)
            else:
                unreadable.append(f"{info.filename[:200]!r}: {_words(exc)}")
            continue
        except Exception as exc:  # encrypted, unknown method, truncated, ...
            unreadable.append(f"{info.filename[:200]!r}: {_words(exc)}")
            continue
        if keep:
            metadata[info.filename] = head
    duplicates = sorted(n for n, k in counts.items() if k > 1)
    differing = [
        name for name in duplicates if len({hashes.get(i) for i, info in enumerate(infos) if info.filename == name}) > 1
    ]
    last = {info.filename: i for i, info in enumerate(infos)}  # zipfile reads the last copy
    out["manifest"] = {name: hashes.get(i) for name, i in last.items() if not _is_dir(infos[i])}
    files = [i for i in infos if not _is_dir(i)]
    first_file = files[0].filename if files else None
    root_meta = [n for n in ROOT_METADATA if n in counts]
    facts.update(
        valid_zip=True,
        entries=len(infos),
        directories=sum(1 for i in infos if _is_dir(i)),
        duplicates=duplicates[:100],
        duplicates_differing=differing[:100],
        crc_ok=not crc_bad,
        crc_bad_member=crc_bad[0] if crc_bad else None,
        crc_bad_members=crc_bad[:1000],
        unreadable=unreadable[:100],
        capped=capped[:100],
        zip64=any(
            i.file_size >= 0xFFFFFFFF or i.compress_size >= 0xFFFFFFFF or i.header_offset >= 0xFFFFFFFF for i in infos
        )
        or len(infos) >= 0xFFFF
        or any(_has_zip64_extra(i.extra) for i in infos)
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
    if crc_bad:
        more = f" and {len(crc_bad) - 1} more" if len(crc_bad) > 1 else ""
        problems.append(f"CRC check failed for {crc_bad[0]!r}{more}")
    for line in unreadable[:5]:
        problems.append(f"entry not readable: {line}")
    if len(unreadable) > 5:
        problems.append(f"{len(unreadable) - 5} more entries not readable")
    for line in capped[:5]:
        problems.append(f"entry {line} (a decompression bomb?)")
    if not root_meta:
        problems.append("no Zarr metadata at the archive root (zarr.json / .zgroup / .zarray)")
    part = spanned_disk(path)
    facts["multi_part"] = part is not None
    if part is not None:
        problems.append(f"one part of a multi-part (spanned) zip: its end record says disk {part}")
    facts["rfc9"] = rfc9(infos, zf.comment, facts["zip64"], single_file=part is None)
    notes.append(f"RFC-9: {facts['rfc9']['verdict']}")
    out["zarr_format"], out["arrays"] = zarr_arrays(metadata, problems)
    wrong = chunk_sizes(infos, out["arrays"])
    facts["chunk_size_wrong"] = [w["entry"] for w in wrong[:1000]]
    if wrong:
        first = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        problems.append(
            f"raw chunk entry {first['entry']!r} holds {first['size']:,} bytes where its array's metadata says "
            f"{first['expected']:,} (chunk shape × item size){more}"
        )
    for entry in out["arrays"].values():
        entry.pop("raw_chunk_bytes", None)  # a fact for the check above, not for the readers


#: Names that mark an archive inside the archive (RFC-9: no nested zips).
NESTED = (".zip", ".ozx", ".zarr.zip")


def rfc9(infos: list[zipfile.ZipInfo], comment: bytes, zip64: bool, single_file: bool = True) -> dict[str, Any]:
    """How an archive meets OME-Zarr RFC-9 (single-file OME-Zarr, ome/ngff ``rfc/9``), for any archive.

    MUST: the root ``zarr.json`` at the archive root; no nested zips; an archive comment that claims
    ``jsonFirst`` must be true of the entries. SHOULD: the root ``zarr.json`` the
    first entry and first central-directory record, the other ``zarr.json`` following breadth-first; every
    entry STORED; ZIP64; the archive comment ``{"ome": {"version": ..., "zipFile": {"centralDirectory":
    {"jsonFirst": true}}}}``. ``differs`` says what is not so, in that order; the verdict sums it up.
    """
    files = [i for i in infos if not _is_dir(i)]
    by_offset = sorted(files, key=lambda i: i.header_offset)
    metadata = [i.filename for i in files if i.filename.rsplit("/", 1)[-1] == "zarr.json"]
    checks = {
        "root_zarr_json": "zarr.json" in metadata,
        "no_nested_zip": not any(i.filename.lower().endswith(NESTED) for i in files),
        "single_file": single_file,
        "root_first_entry": bool(by_offset) and by_offset[0].filename == "zarr.json",
        "root_first_record": bool(files) and files[0].filename == "zarr.json",
        "json_breadth_first": [i.filename for i in files[: len(metadata)]] == metadata
        and [m.count("/") for m in metadata] == sorted(m.count("/") for m in metadata),
        "stored": all(i.compress_type == zipfile.ZIP_STORED for i in files),
        "zip64": zip64,
        "comment": _rfc9_comment(comment),
    }
    # a comment that claims jsonFirst is a promise readers may act on (read the leading records only): false, it
    # fails the archive (ome/ngff #398's failure case), where a missing comment is only a warning
    checks["comment_true"] = not checks["comment"] or checks["json_breadth_first"]
    words = {
        "root_zarr_json": "no zarr.json at the archive root (MUST)",
        "no_nested_zip": "a zip inside the zip (MUST NOT)",
        "single_file": "a part of a multi-part zip (MUST NOT)",
        "root_first_entry": "the root zarr.json is not the first entry",
        "root_first_record": "the root zarr.json is not the first central-directory record",
        "json_breadth_first": "the zarr.json files do not lead the central directory breadth-first",
        "stored": "ZIP-level compression used (SHOULD be STORED)",
        "zip64": "no ZIP64",
        "comment": "no RFC-9 archive comment",
        "comment_true": "the archive comment claims jsonFirst, but the zarr.json files do not lead the central "
        "directory (a false claim)",
    }
    consequences = ("root_first_entry", "root_first_record", "json_breadth_first")
    differs = [
        words[name]
        for name, ok in checks.items()
        if not ok and (checks["root_zarr_json"] or name not in consequences)  # said once: no root zarr.json
    ]
    must = checks["root_zarr_json"] and checks["no_nested_zip"] and checks["single_file"] and checks["comment_true"]
    if not differs:
        verdict = "RFC-9 conformant"
    else:
        verdict = ("meets the MUSTs; " if must else "not RFC-9: ") + "; ".join(differs)
    return {"conformant": not differs, "musts": must, "checks": checks, "differs": differs, "verdict": verdict}


def _rfc9_comment(comment: bytes) -> bool:
    try:
        data = json.loads(comment[:65536].decode("utf-8"))
        ome = data["ome"]
        return isinstance(ome.get("version"), str) and ome["zipFile"]["centralDirectory"]["jsonFirst"] is True
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return False


def zarr_arrays(metadata: dict[str, bytes], problems: list[str]) -> tuple[int | None, dict[str, dict[str, Any]]]:
    """(Zarr format, {array path: {shape, dtype, chunks}}) from the metadata entries; (None, {}) if none."""
    arrays: dict[str, dict[str, Any]] = {}
    formats: set[int] = set()
    bad: list[str] = []
    for name, raw in metadata.items():
        leaf = name.rsplit("/", 1)[-1]
        if len(raw) > CAPS["metadata_bytes"]:
            bad.append(f"{name!r} is larger than {CAPS['metadata_bytes']:,} bytes")
            continue
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested beyond the parser
            bad.append(f"{name!r} is not JSON ({type(exc).__name__})")
            continue
        if not isinstance(meta, dict):
            bad.append(f"{name!r} is not a JSON object")
            continue
        path = name[: -len(leaf)].rstrip("/")
        try:
            entry = _array_entry(leaf, meta, formats)
        except (TypeError, ValueError) as exc:
            bad.append(f"{name!r}: {_words(exc)}")
            continue
        if entry is not None:
            arrays[path] = entry
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        problems.append(f"Zarr metadata not usable: {bad[0]}{more}")
    if len(arrays) > CAPS["arrays"]:
        problems.append(f"{len(arrays):,} arrays in the metadata: readers are given the first {CAPS['arrays']:,}")
        arrays = dict(sorted(arrays.items())[: CAPS["arrays"]])
    return (max(formats) if formats else None), dict(sorted(arrays.items()))


def chunk_sizes(infos: list[zipfile.ZipInfo], arrays: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Chunk entries of uncompressed arrays whose size is not what the metadata says: chunk shape × item size
    (a regular grid's every chunk, edge chunks included, has that size). A reader that returns values from
    such an entry without a word did not check what it read."""
    sized = {path: entry["raw_chunk_bytes"] for path, entry in arrays.items() if entry.get("raw_chunk_bytes")}
    wrong = []
    for info in infos:
        if _is_dir(info):
            continue
        head, _, leaf = info.filename.rpartition("/")
        if leaf.startswith(".z") or leaf == "zarr.json":
            continue
        # an array holds no other node: every entry below its path that is not metadata is one of its chunks
        path = next((p for p in sized if p and (head == p or head.startswith(p + "/"))), None)
        if path is None and "" in sized:  # the archive's root is the array
            path = ""
        if path is not None and info.file_size != sized[path]:
            wrong.append({"entry": info.filename[:200], "size": info.file_size, "expected": sized[path]})
    return wrong


def _raw_chunk_bytes(leaf: str, meta: dict[str, Any], dtype: str | None, chunks: Any) -> int | None:
    """The bytes of one chunk of an array stored uncompressed (v2: no compressor, no filters; v3: the bytes
    codec alone), or None when a codec changes the size or the item size is not fixed."""
    if dtype is None or dtype == "str" or not isinstance(chunks, list) or not chunks:
        return None
    if leaf == ".zarray":
        if meta.get("compressor") is not None or meta.get("filters"):
            return None
    else:
        codecs = meta.get("codecs") or []
        if [c.get("name") if isinstance(c, dict) else c for c in codecs] != ["bytes"]:
            return None
    try:
        size = int(dtype[2:])
    except ValueError:
        return None
    for n in chunks:
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            return None
        size *= n
    return size


def _array_entry(leaf: str, meta: dict[str, Any], formats: set[int]) -> dict[str, Any] | None:
    if leaf == ".zarray":
        formats.add(2)
        dtype = normalise_dtype(meta.get("dtype"))
        chunks = meta.get("chunks")
    elif meta.get("node_type") == "array":
        formats.add(3)
        dtype = normalise_dtype(meta.get("data_type"))
        chunks = _v3_chunks(meta)
    else:
        if meta.get("zarr_format") == 3:
            formats.add(3)
        return None
    shape = meta.get("shape", [])
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise ValueError(f"shape {str(shape)[:80]} is not a list of integers")
    entry: dict[str, Any] = {"shape": shape}
    if dtype is not None:
        entry["dtype"] = dtype
    if isinstance(chunks, list) and chunks and all(isinstance(n, int) for n in chunks):
        entry["chunks"] = chunks
    raw = _raw_chunk_bytes(leaf, meta, dtype, chunks)
    if raw is not None:
        entry["raw_chunk_bytes"] = raw
    return entry


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
            configuration = codec.get("configuration")
            if isinstance(configuration, dict):
                return list(configuration.get("chunk_shape", [])) or None
    grid = meta.get("chunk_grid")
    if isinstance(grid, dict) and isinstance(grid.get("configuration"), dict):
        return list(grid["configuration"].get("chunk_shape", [])) or None
    return None


def _has_zip64_extra(extra: bytes) -> bool:
    """A ZIP64 extended-information field (header id 0x0001) among an entry's extra fields."""
    offset = 0
    while offset + 4 <= len(extra):
        header, size = (
            int.from_bytes(extra[offset : offset + 2], "little"),
            int.from_bytes(extra[offset + 2 : offset + 4], "little"),
        )
        if header == 0x0001:
            return True
        offset += 4 + size
    return False


def spanned_disk(path: str) -> int | None:
    """The disk number the end record gives, when it says the archive is one part of a spanned set (what
    ``zip -s`` makes: the parts hold the entries, this one the central directory); None for a single file."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536 - 22))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 12:
        return None
    disk, cd_disk, here, total = struct.unpack_from("<HHHH", tail, at + 4)
    return disk if (disk, cd_disk) != (0, 0) or here != total else None


def _has_zip64_end(path: str) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536 - 22 - 20))
        tail = fh.read()
    return b"PK\x06\x07" in tail
