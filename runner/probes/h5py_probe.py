"""h5py: try to open the archive as HDF5. A zip has no HDF5 superblock, so the honest result is
``unsupported`` carrying h5py's own message (tools like kerchunk go the other way: HDF5 as Zarr)."""

from __future__ import annotations

from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "h5py")


def read(args: dict[str, Any]) -> dict[str, Any]:
    import h5py  # call: h5py

    archive = args["archive"]
    try:
        with h5py.File(archive, "r") as f:  # call: h5py
            names = list(f)
    except OSError as exc:
        raise c.Unsupported(f"h5py {h5py.__version__} reads HDF5 files only; opening the zip: {exc}") from exc
    raise c.Unsupported(f"h5py opened the archive as HDF5 (members {names[:5]}), which no Zarr zip should be")


if __name__ == "__main__":
    c.main(read)
