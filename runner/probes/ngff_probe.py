"""ngff-zarr (PyPI): the OME-Zarr single-file convention (RFC-9, ``.ozx``), written and read its own way.

Writer: the fixture's image becomes an ``NgffImage`` (dims, scale, translation), ``to_multiscales`` makes
the pyramid, and ``to_ngff_zarr("x.ozx", multiscales, version="0.5")`` writes OME-Zarr 0.5 (Zarr v3) into
one zip (ngff-zarr's RFC-9 writer: root ``zarr.json`` first, STORED, the RFC's archive comment). What the
readers must see is what ngff-zarr holds: level 0 is the fixture's values, the other levels its own
downsampling; the metadata of each array is read back from the ``zarr.json`` it wrote.
Reader: ``from_ngff_zarr("x.ozx")`` (the extension is how ngff-zarr knows a zip), every level computed.
Sources: ngff-zarr docs (RFC-9 / ozx), ``ngff_zarr/rfc9_zip.py``; ome/ngff ``rfc/9``.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "dask", "dask.array", "ngff_zarr")


def _version() -> str:
    import ngff_zarr

    return c.version_of(ngff_zarr, "ngff-zarr")


def write(args: dict[str, Any]) -> dict[str, Any]:
    import ngff_zarr as nz

    fixture = args["fixture"]
    ome = fixture.get("ome")
    if not ome:
        raise c.Unsupported("ngff-zarr writes OME-Zarr images; this fixture is not one")
    (spec,) = fixture["arrays"]
    values = c.make_values(spec)
    target = os.path.join(args["scratch"], "image.ozx")

    def do_write() -> Any:
        image = nz.to_ngff_image(
            values, dims=spec["dims"], scale=ome["scale"], translation=ome["translation"], name=spec["path"]
        )
        multiscales = nz.to_multiscales(image, scale_factors=ome["scale_factors"], chunks=tuple(spec["chunks"]))
        nz.to_ngff_zarr(target, multiscales, version=ome["version"])
        return multiscales

    multiscales, seconds = c.timed(do_write)
    shutil.copyfile(target, args["archive"])  # the runner names archives .zip; the bytes are the .ozx
    with zipfile.ZipFile(target) as zf:
        root = json.loads(zf.read("zarr.json"))
        arrays = {}
        for dataset, level in zip(multiscales.metadata.datasets, multiscales.images, strict=True):
            meta = json.loads(zf.read(f"{dataset.path}/zarr.json"))
            arrays[dataset.path] = c.describe_array(
                level.data.compute(),
                chunks=_inner_chunks(meta),
                fill_value=meta.get("fill_value"),
                attrs=meta.get("attributes", {}),
                dimension_names=meta.get("dimension_names"),
            )
    return {
        "library": "ngff-zarr",
        "version": _version(),
        "zarr_format": 3,
        "method": "ozx",
        "expected": {"arrays": arrays, "attrs": c.jsonable(root.get("attributes", {}))},
        "timings": {"write_s": seconds},
    }


def _inner_chunks(meta: dict[str, Any]) -> list[Any] | None:
    """The chunk shape a reader reports: the inner chunks of a sharded array, else the grid's."""
    for codec in meta.get("codecs") or []:
        if isinstance(codec, dict) and codec.get("name") == "sharding_indexed":
            return list(codec.get("configuration", {}).get("chunk_shape", [])) or None
    return list(meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", [])) or None


def read(args: dict[str, Any]) -> dict[str, Any]:
    import ngff_zarr as nz  # call: ngff-zarr-ozx

    # ngff-zarr knows a single-file OME-Zarr by its extension: the archive is linked under that name
    link = os.path.join(args["scratch"], "archive.ozx")  # call: ngff-zarr-ozx
    os.symlink(args["archive"], link)  # call: ngff-zarr-ozx
    repeats = int(args.get("repeats", 3))
    try:
        multiscales, open_s = c.timed(lambda: nz.from_ngff_zarr(link))  # call: ngff-zarr-ozx
    except (ValueError, KeyError) as exc:
        if "ome" in str(exc).lower() or "multiscales" in str(exc).lower():  # plain Zarr: not its kind of data
            raise c.Unsupported(f"ngff-zarr reads OME-Zarr images only: {c.first_line_words(exc)}") from exc
        raise
    paths = [d.path for d in multiscales.metadata.datasets]
    levels, read_times = c.repeat(lambda: [image.data.compute() for image in multiscales.images], repeats)
    wanted = set(args.get("arrays") or paths)
    found = {p: c.describe_array(v) for p, v in zip(paths, levels, strict=True) if p in wanted}
    missing = sorted(wanted - set(paths))
    if missing:
        c.OBSERVATIONS.append(f"ngff-zarr's multiscales name no dataset {', '.join(missing[:5])}")
    return {
        "library": "ngff-zarr",
        "version": _version(),
        "arrays": found,
        "timings": {"open_s": open_s, "read_s": c.median(read_times), "read_samples": read_times},
    }


if __name__ == "__main__":
    c.main(lambda args: write(args) if args["role"] == "writer" else read(args))
