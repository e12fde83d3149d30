"""bioio-ome-zarr (PyPI): the bioio plugin for OME-Zarr, writing and reading a single-file ``.ozx`` (RFC-9).

Writer: ``OMEZarrWriter("image.ozx", level_shapes=..., dtype=..., zarr_format=3)``, ``write_full_volume``
(level 0 is the fixture's values; bioio makes the other levels itself) and ``close()``: OME-Zarr 0.5 in a
zip, written through zarr's ``ZipStore``, with the RFC's archive comment. What readers must see of the
lower levels is bioio's own downsampling: the same writer writes the same image to a directory store next
to the archive, and the probe describes each level from there (the archive itself is never read back to
make the expectation). The fixture's translation has no place in this writer's arguments and is left out.
Reader: ``bioio_ome_zarr.Reader(path)`` (a ``.zip``/``.ozx`` path opens zarr's ``ZipStore``), each
resolution level set in turn and read with ``get_image_data`` in the array's own dimensions.
Sources: bioio-ome-zarr 3.8 ``writers/ome_zarr_writer.py``, ``reader.py``; ZIPSTORE-FACTS.md.
"""

from __future__ import annotations

from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarr", "dask", "dask.array", "bioio_ome_zarr")


def _version() -> str:
    import bioio_ome_zarr

    return c.version_of(bioio_ome_zarr, "bioio-ome-zarr")


def _write(target: str, values: Any, spec: dict[str, Any], ome: dict[str, Any]) -> None:
    from bioio_ome_zarr.writers import OMEZarrWriter

    shapes = [list(spec["shape"])]
    for factor in ome["scale_factors"]:
        shapes.append([max(1, n // factor) for n in spec["shape"]])
    writer = OMEZarrWriter(
        target,
        level_shapes=shapes,
        dtype=values.dtype,
        chunk_shape=tuple(spec["chunks"]),
        zarr_format=3,
        image_name=spec["path"],
        axes_names=list(spec["dims"]),
        axes_types=["space"] * len(spec["dims"]),
        physical_pixel_size=[ome["scale"][d] for d in spec["dims"]],
    )
    writer.write_full_volume(values)
    writer.close()


def write(args: dict[str, Any]) -> dict[str, Any]:
    return {**c.ozx_with_twin(args, "bioio-ome-zarr", _write), "version": _version()}


def read(args: dict[str, Any]) -> dict[str, Any]:
    import bioio_ome_zarr  # call: bioio-ome-zarr

    archive = args["archive"]
    repeats = int(args.get("repeats", 3))
    reader, open_s = c.timed(lambda: bioio_ome_zarr.Reader(archive))  # call: bioio-ome-zarr
    try:
        levels = list(reader.resolution_levels)
    except Exception as exc:
        try:
            plain = c.ome_dataset_paths(archive) is None  # plain Zarr: not its kind of data
        except Exception:  # the archive itself is broken: bioio's words stand
            plain = False
        if plain:
            words = f"{type(exc).__name__}: {c.first_line_words(exc)}"
            raise c.Unsupported(f"bioio-ome-zarr reads OME-Zarr images only (no multiscales): {words}") from exc
        raise
    dims = reader.dims.order  # the image's own dimensions (bioio pads nothing it was not given)

    def read_levels() -> list[Any]:
        out = []
        for level in levels:
            reader.set_resolution_level(level)  # call: bioio-ome-zarr
            out.append(reader.get_image_data(dims))  # call: bioio-ome-zarr
        return out

    got, read_times = c.repeat(read_levels, repeats)
    paths = (c.ome_dataset_paths(archive) or [str(n) for n in levels])[: len(levels)]
    wanted = set(args.get("arrays") or paths)
    found = {p: c.describe_array(v) for p, v in zip(paths, got, strict=False) if p in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        c.OBSERVATIONS.append(f"bioio's resolution levels name no dataset {', '.join(missing[:5])}")
    return {
        "library": "bioio-ome-zarr",
        "version": _version(),
        "arrays": found,
        "timings": {"open_s": open_s, "read_s": c.median(read_times), "read_samples": read_times},
    }


if __name__ == "__main__":
    c.main(lambda args: write(args) if args["role"] == "writer" else read(args))
