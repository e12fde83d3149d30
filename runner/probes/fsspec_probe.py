"""fsspec: list the keys of ``zip::file://…`` through ``get_mapper`` and hash every value's raw bytes.

No decoding: this is the layer every fsspec-based reader stands on. The host compares the keys and
bytes with its own reading of the archive (the last copy of a duplicated name, as zipfile does).
"""

from __future__ import annotations

import hashlib
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("fsspec", "fsspec.implementations.zip")


def read(args: dict[str, Any]) -> dict[str, Any]:
    import fsspec  # call: fsspec-mapper

    url = "zip::" + c.file_url(args["archive"])  # call: fsspec-mapper

    def read_all() -> dict[str, Any]:
        mapper = fsspec.get_mapper(url)  # call: fsspec-mapper
        return {key: hashlib.sha256(mapper[key]).hexdigest() for key in mapper}

    (keys, open_s) = c.timed(lambda: list(fsspec.get_mapper(url)))
    values, samples = c.repeat(read_all, int(args.get("repeats", 3)))
    return {
        "library": "fsspec",
        "version": fsspec.__version__,
        "keys": values,
        "timings": {"open_s": open_s, "read_s": c.median(samples), "read_samples": samples, "keys": len(keys)},
    }


if __name__ == "__main__":
    c.main(read)
