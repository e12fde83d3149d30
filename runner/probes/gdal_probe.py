"""GDAL's Zarr driver through ``/vsizip/`` (the only way it sees inside a zip: GDAL#7173).

``multidim``: ``gdal.OpenEx("/vsizip//abs.zip", OF_MULTIDIM_RASTER)``, root group, ``OpenMDArrayFromFullname``.
``classic``: ``gdal.Open('ZARR:"/vsizip//abs.zip":/array')``, 2-D arrays only (the classic API's model).
"""

from __future__ import annotations

import functools
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "osgeo.gdal")


def gdal_module() -> Any:
    from osgeo import gdal  # call: gdal-multidim gdal-classic

    gdal.UseExceptions()  # call: gdal-multidim gdal-classic
    if gdal.GetDriverByName("Zarr") is None:
        raise c.Unsupported(f"GDAL {gdal.__version__} has no Zarr driver (it arrived in GDAL 3.4)")
    return gdal


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def attributes(holder: Any) -> dict[str, Any]:
    out = {}
    for attr in holder.GetAttributes() or []:
        out[attr.GetName()] = attr.Read()
    return out


def nodata(arr: Any) -> Any:
    """The array's nodata value: ``GetNoDataValue`` (typed, newer GDAL) or ``GetNoDataValueAsDouble``."""
    for name in ("GetNoDataValue", "GetNoDataValueAsDouble"):
        getter = getattr(arr, name, None)
        if getter is not None:
            try:
                return getter()
            except (RuntimeError, TypeError):
                continue
    return None


def read_multidim(
    gdal: Any, archive: str, paths: list[str], part: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    ds = gdal.OpenEx("/vsizip/" + archive, gdal.OF_MULTIDIM_RASTER)  # call: gdal-multidim
    root = ds.GetRootGroup()  # call: gdal-multidim
    arrays, meta = {}, {}
    for path in paths:
        arr = root.OpenMDArrayFromFullname("/" + path)  # call: gdal-multidim
        if arr is None:
            raise KeyError(f"GDAL finds no array /{path} in the archive")
        arrays[path] = c.read_values(functools.partial(region_multidim, arr), part.get(path))
        attrs = attributes(arr)
        if arr.GetUnit():  # GDAL takes the "units" attribute as the array's unit
            attrs.setdefault("units", arr.GetUnit())
        meta[path] = {
            "chunks": list(arr.GetBlockSize()),
            "fill_value": nodata(arr),
            "attrs": attrs,
            "dimension_names": [d.GetName() for d in arr.GetDimensions()],
        }
    meta[""] = attributes(root)
    return arrays, meta


def read_classic(
    gdal: Any, archive: str, paths: list[str], shapes: dict[str, Any], part: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    arrays, meta = {}, {}
    for path in paths:
        if len(shapes.get(path, [0, 0])) != 2:
            raise c.Unsupported(
                f"the classic 2-D raster API reads 2-D arrays; {path!r} has "
                f"{len(shapes[path])} dimension(s) (use the multidimensional API)"
            )
        ds = gdal.Open(f'ZARR:"/vsizip/{archive}":/{path}')  # call: gdal-classic
        band = ds.GetRasterBand(1)  # call: gdal-classic
        arrays[path] = c.read_values(functools.partial(region_classic, band), part.get(path))
        xsize, ysize = band.GetBlockSize()
        meta[path] = {"chunks": [ysize, xsize], "fill_value": band.GetNoDataValue()}
    return arrays, meta


def region_multidim(arr: Any, index: Any) -> Any:
    """The whole array (``...``) or a region of it (a tuple of slices), through ReadAsArray."""
    if index is Ellipsis:
        return arr.ReadAsArray()  # call: gdal-multidim
    return arr.ReadAsArray(array_start_idx=[s.start for s in index], count=[s.stop - s.start for s in index])


def region_classic(band: Any, index: Any) -> Any:
    """The whole band (``...``) or a window of it (y, x slices), through ReadAsArray."""
    if index is Ellipsis:
        return band.ReadAsArray()  # call: gdal-classic
    y, x = index
    return band.ReadAsArray(x.start, y.start, x.stop - x.start, y.stop - y.start)


def vsicurl(url: str) -> str:
    """Over HTTP, GDAL's chain: /vsizip/ over /vsicurl/ (Range requests), as its virtual file system docs say."""
    return "/vsicurl/" + url  # call: gdal-multidim@http gdal-classic@http


def first_chunk_multidim(gdal: Any, archive: str, path: str) -> None:
    ds = gdal.OpenEx("/vsizip/" + archive, gdal.OF_MULTIDIM_RASTER)
    root = ds.GetRootGroup()  # each object kept while its children are used (GDAL's Python frees them)
    arr = root.OpenMDArrayFromFullname("/" + path)
    sizes = [d.GetSize() for d in arr.GetDimensions()]
    count = [int(s.stop) for s in c.first_chunk(sizes, arr.GetBlockSize())]
    arr.ReadAsArray(array_start_idx=[0] * len(count), count=count)


def first_chunk_classic(gdal: Any, archive: str, path: str) -> None:
    ds = gdal.Open(f'ZARR:"/vsizip/{archive}":/{path}')  # kept: a band outlives no dataset in GDAL's Python
    band = ds.GetRasterBand(1)
    xsize, ysize = band.GetBlockSize()
    band.ReadAsArray(0, 0, min(xsize, band.XSize), min(ysize, band.YSize))


def read(args: dict[str, Any]) -> dict[str, Any]:
    gdal = gdal_module()
    api, paths, http = args["api"], args["arrays"], c.over_http(args)

    def read_at(archive: str) -> tuple[dict[str, Any], dict[str, Any]]:
        # a store zipped from its parent is opened at its folder: /vsizip/ takes a path inside the zip
        archive = c.inside(archive, args.get("root", ""))
        part = args.get("part") or {}
        if api == "multidim":
            return read_multidim(gdal, archive, paths, part)
        return read_classic(gdal, archive, paths, args.get("shapes", {}), part)

    fmt = args.get("zarr_format") or (None if http else c.archive_format(args["archive"]))
    try:
        if http:
            (arrays, meta), samples = c.repeat_over_http(lambda url: read_at(vsicurl(url)), args)
            one = first_chunk_multidim if api == "multidim" else first_chunk_classic
            if paths:
                c.one_chunk_over_http(
                    lambda url: one(gdal, c.inside(vsicurl(url), args.get("root", "")), paths[0]), args
                )
        else:
            (arrays, meta), samples = c.repeat(lambda: read_at(args["archive"]), int(args.get("repeats", 3)))
    except RuntimeError as exc:
        if str(exc).startswith("Unsupported codec"):  # GDAL's own word for a codec it lacks
            raise c.Unsupported(f"GDAL {gdal.__version__}: {exc}") from exc
        lacks = next((line for line in str(exc).splitlines() if "unsupported compression method" in line), None)
        if lacks is not None:  # /vsizip/ lacks the zip method of an entry (its words, from the cause chain)
            raise c.Unsupported(
                f"GDAL {gdal.__version__} /vsizip/: {lacks.removeprefix('May be caused by: ')}"
            ) from exc
        if fmt == 3 and version_tuple(gdal.__version__) < (3, 8):
            raise c.Unsupported(
                f"GDAL {gdal.__version__} implements a pre-release Zarr v3 draft (the final spec is read from "
                f"GDAL 3.8): {exc}"
            ) from exc
        raise
    result = {
        "library": "gdal",
        "version": gdal.__version__,
        "arrays": {p: c.describe_array(arrays[p], **meta[p]) for p in paths},
        "timings": {"read_s": c.median(samples), "read_samples": samples},
    }
    if "" in meta:
        result["attrs"] = c.jsonable(meta[""])
    return result


if __name__ == "__main__":
    c.main(read)
