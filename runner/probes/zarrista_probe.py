"""zarrista (PyPI): Rust's zarrs from Python, reading a zip through zarrs' own zip store.

From a file: ``ZipStore(FilesystemStore(folder), "archive.zip", path=root)`` (read-only; ``path`` is the
store's folder inside the archive when it was zipped from its parent), then ``Array.open(store, "/x")``
and the whole array, or the named regions, read with numpy-style indexing.
Over HTTP: the same zip store on an async store, obstore's ``HTTPStore`` (``AsyncZipStore.open``, the
store zarrista documents for remote data; Range reads through Rust's object_store). obstore refuses plain
``http://`` unless ``allow_http`` is set, which the probe sets: the run's servers are not TLS.
Fill values are native-endian bytes; the probe reads them through numpy as the array's dtype.
Sources: zarrista ``_store.pyi`` / ``_array.pyi`` (0.1.0), ZIPSTORE-FACTS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarrista", "obstore")


def _version() -> str:
    import zarrista

    return c.version_of(zarrista, "zarrista")


def _describe(array: Any, values: Any, path: str) -> dict[str, Any]:
    import numpy as np

    got = np.asarray(values)
    fill = bytes(array.fill_value.as_bytes())
    fill_value = None
    if got.dtype.kind in "biuf" and len(fill) == got.dtype.itemsize:
        fill_value = np.frombuffer(fill, dtype=got.dtype.newbyteorder("=")).item()
    names = array.dimension_names
    return c.describe_array(
        got,
        chunks=list(array.chunk_shape([0] * array.ndim)) if array.ndim else None,
        fill_value=fill_value,
        attrs=array.attrs or None,
        dimension_names=list(names) if names and any(names) else None,
    )


def read(args: dict[str, Any]) -> dict[str, Any]:
    import zarrista  # call: zarrista-zip
    from zarrista.store import FilesystemStore, ZipStore  # call: zarrista-zip

    paths = args["arrays"]
    root = args.get("root") or None  # the store's folder inside the archive, when it has one

    def open_file() -> Any:
        archive = os.path.abspath(args["archive"])  # zarrs opens the zip as a key of a store on its folder
        return ZipStore(
            FilesystemStore(os.path.dirname(archive)), os.path.basename(archive), path=root
        )  # call: zarrista-zip

    def read_all(store: Any) -> dict[str, Any]:
        got = {}
        for path in paths:
            array = zarrista.Array.open(store, "/" + path)  # call: zarrista-zip

            def get(ix: Any, a: Any = array) -> Any:  # zarrs takes slices; the whole array is its subset_all
                return a[a.subset_all if ix is Ellipsis else ix]

            got[path] = (array, c.read_values(get, c.part_of(args, path)))
        return got

    if c.over_http(args):
        got, samples = c.repeat_over_http(lambda url: asyncio.run(_read_over_http(url, root, args)), args)
        c.one_chunk_over_http(lambda url: asyncio.run(_read_over_http(url, root, args, one_chunk=True)), args)
    else:
        store, open_s = c.timed(open_file)
        got, samples = c.repeat(lambda: read_all(store), int(args.get("repeats", 3)))
    record: dict[str, Any] = {
        "library": "zarrista",
        "version": _version(),
        "arrays": {path: _describe(array, values, path) for path, (array, values) in got.items()},
        "timings": {"read_s": c.median(samples), "read_samples": samples},
    }
    if not c.over_http(args):
        record["timings"]["open_s"] = open_s
        # the root is an array, or has no group metadata: nothing to compare
        with contextlib.suppress(zarrista.exceptions.ZarristaError):
            record["attrs"] = c.jsonable(zarrista.Group.open(store, "/").attrs)
    return record


async def _read_over_http(url: str, root: str | None, args: dict[str, Any], one_chunk: bool = False) -> Any:
    import numpy as np
    import zarrista  # call: zarrista-zip@http
    from obstore.store import HTTPStore  # call: zarrista-zip@http
    from zarrista.store import AsyncZipStore  # call: zarrista-zip@http

    base, name = url.rsplit("/", 1)
    http = HTTPStore.from_url(base + "/", client_options={"allow_http": True})  # call: zarrista-zip@http
    store = await AsyncZipStore.open(http, name, path=root)  # call: zarrista-zip@http
    got = {}
    for path in args["arrays"]:
        array = await zarrista.AsyncArray.open(store, "/" + path)  # call: zarrista-zip@http
        if one_chunk:
            await array[c.first_chunk(array.shape, array.chunk_shape([0] * array.ndim))]
            return None
        regions = c.part_of(args, path)
        if regions is None:
            values = np.asarray(await array[array.subset_all])
        else:
            parts = [np.asarray(await array[tuple(slice(a, b) for a, b in r)]).ravel() for r in regions]
            values = np.concatenate(parts)
        got[path] = (array, values)
    return got


if __name__ == "__main__":
    c.main(read)
