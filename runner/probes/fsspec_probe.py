"""fsspec: list the keys of ``zip::file://…`` through ``get_mapper`` and hash every value's raw bytes.

No decoding: this is the layer every fsspec-based reader stands on. The host compares the keys and
bytes with its own reading of the archive (the last copy of a duplicated name, as zipfile does).
"""

from __future__ import annotations

import hashlib
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("fsspec", "fsspec.implementations.zip", *c.HTTP_PRELOAD)


def read(args: dict[str, Any]) -> dict[str, Any]:
    import fsspec  # call: fsspec-mapper

    def read_all(url: str) -> dict[str, Any]:
        mapper = fsspec.get_mapper(url)  # call: fsspec-mapper
        return {key: hashlib.sha256(mapper[key]).hexdigest() for key in mapper}

    if c.over_http(args):  # zip:: over fsspec's HTTPFileSystem (Range requests; aiohttp)
        c.needs_aiohttp()
        part = bool(args.get("part"))
        values, samples = c.repeat_over_http(lambda url: read_over_http(url, part), args)
        c.one_chunk_over_http(lambda url: one_value(fsspec, "zip::" + url), args)
        timings = {"read_s": c.median(samples), "read_samples": samples, "keys": len(values)}
    else:
        url = "zip::" + c.file_url(args["archive"])  # call: fsspec-mapper
        (keys, open_s) = c.timed(lambda: list(fsspec.get_mapper(url)))
        values, samples = c.repeat(lambda: read_all(url), int(args.get("repeats", 3)))
        timings = {"open_s": open_s, "read_s": c.median(samples), "read_samples": samples, "keys": len(keys)}
    return {"library": "fsspec", "version": fsspec.__version__, "keys": values, "timings": timings}


def read_over_http(url: str, part: bool) -> dict[str, Any]:
    """Every key and the SHA-256 of its bytes; with ``part`` (a fixture too large to read whole over HTTP),
    every key listed but only the bytes of its metadata and of its first and last chunk key read (the others
    are None: not compared)."""
    import fsspec

    mapper = fsspec.get_mapper("zip::" + url)  # call: fsspec-mapper@http
    keys = list(mapper)
    wanted = set(keys)
    if part:
        chunks = sorted(k for k in keys if not is_metadata(k))
        wanted = {k for k in keys if is_metadata(k)} | set(chunks[:1] + chunks[-1:])
    return {key: hashlib.sha256(mapper[key]).hexdigest() if key in wanted else None for key in keys}


def is_metadata(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith((".z", "zarr.json"))


def one_value(fsspec: Any, url: str) -> None:
    """One chunk, as fsspec sees it: the bytes of the first key that is not metadata."""
    mapper = fsspec.get_mapper(url)
    key = next((k for k in mapper if not is_metadata(k)), None)
    if key is not None:
        mapper[key]


if __name__ == "__main__":
    c.main(read)
