"""zarrnii (PyPI): OME-Zarr for neuroimaging (NIfTI <-> OME-Zarr), writing and reading a single-file ``.ozx``.

Writer: ``ZarrNii.from_darr(volume, axes_order="ZYX", spacing=..., origin=...)`` then
``to_ome_zarr("image.ozx", scale_factors=[...])`` (its default ome-zarr-py backend; a ``.ozx``/``.zip`` path
is written to a folder, then zipped by zarrnii's own RFC-9 code). zarrnii holds volumes with a channel axis,
(c, z, y, x): the fixture's y×x image is written as a 1×1×y×x volume with the same values, and the cell
compares what zarrnii wrote. The lower levels are zarrnii's own downsampling: the same call writes the same
volume to a directory store next to the archive, and each level is described from there (the archive itself
is never read back to make the expectation). zarrnii stores spacing in millimetres after its own conversion.
Reader: ``zarrnii.core.load_ngff_image("x.ozx", level=n)`` (zarr's ``ZipStore`` under ngff-zarr), every level
computed: the image as stored (``ZarrNii.from_ome_zarr`` would reshape it into its own (c, z, y, x) volume).
Sources: zarrnii 0.22 ``core.py`` (from_darr, to_ome_zarr, load_ngff_image, _create_ome_zarr_zip).
"""

from __future__ import annotations

from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarr", "dask", "dask.array", "ngff_zarr", "zarrnii")


def _version() -> str:
    import zarrnii

    return c.version_of(zarrnii, "zarrnii")


def _write(target: str, values: Any, spec: dict[str, Any], ome: dict[str, Any]) -> None:
    import dask.array as da
    import zarrnii

    volume = values.reshape((1, 1, *values.shape))  # (c, z, y, x): one channel, one slice
    chunks = (1, 1, *spec["chunks"])
    image = zarrnii.ZarrNii.from_darr(
        da.from_array(volume, chunks=chunks),
        axes_order="ZYX",
        spacing=(1.0, *(float(ome["scale"][d]) for d in spec["dims"])),
        origin=(0.0, *(float(ome["translation"][d]) for d in spec["dims"])),
        name=spec["path"],
    )
    image.to_ome_zarr(target, scale_factors=list(ome["scale_factors"]))


def write(args: dict[str, Any]) -> dict[str, Any]:
    dims = [list(a.get("dims", [])) for a in args["fixture"].get("arrays", [])]
    if args["fixture"].get("ome") and dims != [["y", "x"]]:
        raise c.Unsupported(f"the probe writes y×x images as zarrnii volumes; this one has dims {dims}")
    return {**c.ozx_with_twin(args, "zarrnii", _write), "version": _version()}


def read(args: dict[str, Any]) -> dict[str, Any]:
    from zarrnii.core import load_ngff_image  # call: zarrnii

    # zarrnii knows a zipped OME-Zarr by its extension (.ozx or .zip); the runner's archives end in .zip
    archive = args["archive"]
    repeats = int(args.get("repeats", 3))
    try:
        first, open_s = c.timed(lambda: load_ngff_image(archive, level=0))  # call: zarrnii
    except (ValueError, KeyError) as exc:
        if "ome" in str(exc).lower() or "multiscales" in str(exc).lower():  # plain Zarr: not its kind of data
            raise c.Unsupported(f"zarrnii reads OME-Zarr images only: {c.first_line_words(exc)}") from exc
        raise
    del first
    # zarrnii names levels by index; the archive's multiscales name their datasets
    paths = c.ome_dataset_paths(archive) or ["0"]

    def read_levels() -> list[Any]:
        return [load_ngff_image(archive, level=n).data.compute() for n in range(len(paths))]  # call: zarrnii

    levels, read_times = c.repeat(read_levels, repeats)
    wanted = set(args.get("arrays") or paths)
    found = {p: c.describe_array(v) for p, v in zip(paths, levels, strict=True) if p in wanted}
    missing = sorted(wanted - set(paths))
    if missing:
        c.OBSERVATIONS.append(f"zarrnii's levels name no dataset {', '.join(missing[:5])}")
    return {
        "library": "zarrnii",
        "version": _version(),
        "arrays": found,
        "timings": {"open_s": open_s, "read_s": c.median(read_times), "read_samples": read_times},
    }


if __name__ == "__main__":
    c.main(lambda args: write(args) if args["role"] == "writer" else read(args))
