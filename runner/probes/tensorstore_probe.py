"""tensorstore: the read-only ``zip`` kvstore (0.1.42+) under the ``zarr`` (v2) or ``zarr3`` driver.

tensorstore exposes no user attributes, so attributes are not compared for it.
"""

from __future__ import annotations

from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "tensorstore")


def read(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import tensorstore as ts  # call: tensorstore-zip

    paths, http = args["arrays"], c.over_http(args)
    version = c.version_of(ts, "tensorstore")
    fmt = args.get("zarr_format") or (None if http else c.archive_format(args["archive"]))
    driver = "zarr3" if fmt == 3 else "zarr"

    def open_array(base: str, path: str) -> Any:
        where = c.inside(args.get("root", ""), path)  # below the store's folder when it was zipped from its parent
        # base: file:///abs.zip, or over HTTP the URL itself (tensorstore's http kvstore, Range reads)
        spec = {  # call: tensorstore-zip tensorstore-zip@http
            "driver": driver,
            "kvstore": {"driver": "zip", "base": base, "path": (where + "/") if where else ""},
        }
        return ts.open(spec, read=True, open=True).result()  # call: tensorstore-zip tensorstore-zip@http

    def read_all(base: str) -> dict[str, Any]:
        return {
            path: (
                store := open_array(base, path),
                c.read_values(lambda ix: store[ix].read().result(), c.part_of(args, path)),
            )
            for path in paths
        }

    def first_chunk(base: str) -> None:
        store = open_array(base, paths[0])
        store[c.first_chunk(store.shape, store.chunk_layout.read_chunk.shape)].read().result()

    try:
        if http:
            got, samples = c.repeat_over_http(lambda url: read_all(base=url), args)  # call: tensorstore-zip@http
            if paths:
                c.one_chunk_over_http(first_chunk, args)
        else:
            base = c.file_url(args["archive"])  # call: tensorstore-zip
            got, samples = c.repeat(lambda: read_all(base), int(args.get("repeats", 3)))
    except ValueError as exc:
        message = str(exc).split(" [tensorstore_spec=")[0]  # the spec dump stays in the traceback
        if '"zip" is not registered' in message:  # before 0.1.42
            raise c.Unsupported(f"tensorstore {version} has no zip kvstore driver: {message}") from exc
        raise ValueError(message) from exc
    arrays = {}
    for path, (store, values) in got.items():
        fill = store.fill_value
        arrays[path] = c.describe_array(
            np.asarray(values),
            chunks=list(store.chunk_layout.read_chunk.shape),
            fill_value=None if fill is None else np.asarray(fill).item(),
            dimension_names=list(store.domain.labels) if any(store.domain.labels) else None,
        )
    return {
        "library": "tensorstore",
        "version": version,
        "arrays": arrays,
        "timings": {"read_s": c.median(samples), "read_samples": samples},
    }


if __name__ == "__main__":
    c.main(read)
