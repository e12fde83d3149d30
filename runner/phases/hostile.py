"""A hostile corpus: archives made to hurt readers, generated here (standard library only, deterministic).

``python -m runner MATRIX --hostile`` reads them with every reader, next to the other archives; the page's
robustness section says how each reader library met them (clean error, crash, hang, OOM, wrong data
returned silently, code executed). The readers run in the probes' sandbox; the host only writes these
files and hashes them.

Each archive is named for what it does. Where a "right answer" exists it is a clean error; where the
archive is merely odd but valid (ZIP64, unusual names), reading it is right.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

FOLDER = "hostile"
#: What a pickle in the archive creates, relative to the reading process's working directory (its own
#: scratch directory): the probe reports it, so the page can say which readers executed code.
CANARY = "zipstore-pickle-canary"
BOMB_BYTES = 5 << 30  # inflates past the probes' 4 GB memory limit
GOOD_VALUES = bytes(range(64))


class _Canary:
    """Unpickling this creates the canary directory: code from the archive ran."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.mkdir, (CANARY,))


def _zarray(shape: list[int], chunks: list[int], dtype: str = "|u1", **extra: object) -> bytes:
    meta = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "compressor": None,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        **extra,
    }
    return json.dumps(meta).encode()


GROUP = (".zgroup", b'{"zarr_format": 2}')
V3_GROUP = ("zarr.json", b'{"zarr_format": 3, "node_type": "group"}')


def _good(prefix: str = "data") -> list[tuple[str, bytes]]:
    """A small valid v2 array of 64 uint8 values in 4 chunks."""
    entries = [GROUP, (f"{prefix}/.zarray", _zarray([64], [16]))]
    entries += [(f"{prefix}/{i}", GOOD_VALUES[i * 16 : (i + 1) * 16]) for i in range(4)]
    return entries


def _write(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are sometimes the point
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)


def _patch_central(raw: bytearray, name: bytes, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag or the method of ``name`` in its local and central headers."""
    for signature, flag_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30), (b"PK\x01\x02", 8, 10, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_at : start + name_at + len(name)] == name:
                if flag is not None:
                    old = struct.unpack_from("<H", raw, start + flag_at)[0]
                    struct.pack_into("<H", raw, start + flag_at, old | flag)
                if method is not None:
                    struct.pack_into("<H", raw, start + method_at, method)
            start += 4


def _bomb(path: Path) -> None:
    """One chunk that inflates to BOMB_BYTES of zeros, a few MB stored: deflate blocks repeated (each
    flushed, so they stand alone), with the right CRC and sizes in ZIP64 records."""
    block = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats = BOMB_BYTES // block
    crc = 0
    zeros = bytes(block)
    for _ in range(repeats):
        crc = zlib.crc32(zeros, crc)
    stream = piece * repeats + b"\x03\x00"  # an empty final block ends the deflate stream
    _raw_zip(path, [GROUP, ("data/.zarray", _zarray([BOMB_BYTES], [BOMB_BYTES]))], "data/0", stream, crc, BOMB_BYTES)


def _raw_zip(path: Path, plain: list[tuple[str, bytes]], name: str, deflated: bytes, crc: int, size: int) -> None:
    """A zip of ``plain`` stored entries and one pre-deflated entry, with ZIP64 records where needed."""
    out = bytearray()
    central = bytearray()
    entries = [(n, d, 0, zlib.crc32(d), len(d), len(d)) for n, d in plain]
    entries.append((name, deflated, 8, crc, len(deflated), size))
    for n, data, method, entry_crc, csize, usize in entries:
        offset = len(out)
        encoded = n.encode()
        big = usize >= 0xFFFFFFFF or csize >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, usize, csize) if big else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (csize, usize)
        version = 45 if big else 20
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, 0, method, 0, 0x21, entry_crc, *sizes,
                           len(encoded), len(extra)) + encoded + extra + data  # fmt: skip
        cextra = struct.pack("<HHQQ", 1, 16, usize, csize) if big else b""
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", version, version, 0, method, 0, 0x21,
                               entry_crc, *sizes, len(encoded), len(cextra), 0, 0, 0, 0, offset)  # fmt: skip
        central += encoded + cextra
    cd_offset = len(out)
    out += central
    zip64_end = len(out)
    count = len(entries)
    out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), cd_offset)
    out += struct.pack("<4sIQI", b"PK\x06\x07", 0, zip64_end, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0)
    path.write_bytes(bytes(out))


def _v3_array(size: int, codecs: list[dict[str, object]]) -> bytes:
    """zarr.json of a 1-D uint8 array in one chunk of ``size``."""
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [size],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [size]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": codecs,
    }
    return json.dumps(meta).encode()


def _sharded_outside(path: Path) -> None:
    """A v3 sharded array whose shard index points past the end of its shard."""
    meta = _v3_array(
        8,
        [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [4],
                    "codecs": [{"name": "bytes"}],
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                    "index_location": "end",
                },
            }
        ],
    )
    data = bytes(range(8))
    index = struct.pack("<QQQQ", 0, 4, 1 << 40, 4)  # the second inner chunk is a terabyte away
    _write(path, [V3_GROUP, ("a/zarr.json", meta), ("a/c/0", data + index)])


def _v3_unknown_codec(path: Path) -> None:
    meta = _v3_array(16, [{"name": "bytes"}, {"name": "zipstore-no-such-codec", "configuration": {}}])
    _write(path, [V3_GROUP, ("a/zarr.json", meta), ("a/c/0", bytes(16))])


def _many(path: Path, n: int = 100_000) -> None:
    entries = [GROUP, ("data/.zarray", _zarray([n], [1]))]
    entries += [(f"data/{i}", bytes([i % 256])) for i in range(n)]
    _write(path, entries)


def _odd_names(path: Path) -> None:
    odd = ["x" * 10_000, "new\nline", "back\\slash", "\u202eright-to-left", "tab\there", "空/白", "a" * 255 + "/b"]
    _write(path, _good() + [(name, b"odd") for name in odd])


def _encrypted(path: Path) -> None:
    _write(path, _good())
    raw = bytearray(path.read_bytes())
    _patch_central(raw, b"data/0", flag=0x1)
    path.write_bytes(bytes(raw))


def _unknown_method(path: Path) -> None:
    _write(path, _good())
    raw = bytearray(path.read_bytes())
    _patch_central(raw, b"data/1", method=77)
    path.write_bytes(bytes(raw))


def _bad_crc(path: Path) -> None:
    _write(path, _good())
    raw = bytearray(path.read_bytes())
    at = raw.index(GOOD_VALUES[16:32])
    raw[at] ^= 0xFF  # one byte of chunk 1 differs from what its CRC says
    path.write_bytes(bytes(raw))


def _truncated(path: Path) -> None:
    _write(path, _good())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _lying_directory(path: Path) -> None:
    """The central directory claims an entry at an offset past the end of the file."""
    _write(path, _good())
    raw = bytearray(path.read_bytes())
    start = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, start + 42, 0x7FFFFFF0)
    path.write_bytes(bytes(raw))


def _pickle(path: Path) -> None:
    """An object array through the pickle codec: a reader that unpickles it runs code from the archive."""
    payload = pickle.dumps([_Canary()], protocol=2)
    meta = _zarray([1], [1], dtype="|O", filters=[{"id": "pickle", "protocol": 2}])
    _write(path, [GROUP, ("data/.zarray", meta), ("data/0", payload)])


CASES: dict[str, Callable[[Path], object]] = {
    "truncated": _truncated,
    "bad-crc": _bad_crc,
    "duplicate-differing": lambda p: _write(p, [*_good(), ("data/.zarray", _zarray([32], [16]))]),
    "deflate-bomb": _bomb,
    "dot-dot-names": lambda p: _write(p, [*_good(), ("../../evil", b"x"), ("data/../../../escape", b"y")]),
    "absolute-names": lambda p: _write(p, [*_good(), ("/etc/evil", b"x"), ("C:/windows/evil", b"y")]),
    "encrypted-entry": _encrypted,
    "unknown-method": _unknown_method,
    "zip64": lambda p: _zip64(p),
    "lying-central-directory": _lying_directory,
    "empty-zip": lambda p: _write(p, []),
    "zero-bytes": lambda p: p.write_bytes(b""),
    "not-a-zip": lambda p: p.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(4096))),
    "metadata-not-json": lambda p: _write(p, [GROUP, ("data/.zarray", b"{not json"), ("data/0", b"x")]),
    "attributes-100000-deep": lambda p: _write(
        p, [*_good(), ("data/.zattrs", b'{"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")]
    ),
    "shape-1e12-squared": lambda p: _write(
        p, [GROUP, ("data/.zarray", _zarray([10**12, 10**12], [10, 10])), ("data/0.0", bytes(100))]
    ),
    "stray-and-short-chunks": lambda p: _write(
        p, [*_good()[:-1], ("data/3", b"\x01\x02"), ("data/99", bytes(16)), ("data/-1", bytes(16))]
    ),
    # a raw chunk longer than shape × item size: a reader that takes its first bytes returns right-looking data
    "chunk-oversized": lambda p: _write(p, [*_good()[:-1], ("data/3", GOOD_VALUES[48:] + bytes(range(200, 232)))]),
    "100000-entries": _many,
    "odd-names": _odd_names,
    "v3-unknown-codec": _v3_unknown_codec,
    "shard-index-outside": _sharded_outside,
    "pickle-canary": _pickle,
}


def _zip64(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _good():
            with zf.open(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), "w", force_zip64=True) as fh:
                fh.write(data)


def generate(directory: Path) -> list[Path]:
    """Write the corpus under ``directory/hostile/`` (once: an existing file is kept); return the paths."""
    folder = directory / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, make in CASES.items():
        path = folder / f"{name}.zip"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            make(tmp)
            tmp.replace(path)
        out.append(path)
    return out
