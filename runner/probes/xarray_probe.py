"""xarray: ``to_zarr`` into a ZipStore, and ``open_zarr`` on a ZipStore or a ``zip::`` URL.

Writes the way the docs say (pass a store, close it afterwards: xarray#4076), with ``_FillValue`` set from
the fixture so the zarr fill value is the one declared. CF encoding then stores NaN as the fill value,
so the writer's expected values are the CF-encoded ones. Reads twice: raw (``mask_and_scale=False``),
compared bit for bit, and decoded (the default), checked against CF masking of the raw values.
"""

from __future__ import annotations

import functools
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "pandas", "xarray", "zarr", "numcodecs", "fsspec", "fsspec.implementations.zip", *c.HTTP_PRELOAD)


def zarr_major() -> int:
    import zarr

    return int(zarr.__version__.split(".")[0])


def zip_store(path: str, mode: str) -> Any:
    """zarr 2 and 3 both spell it this way when mode is given by keyword (zarr-python#756)."""
    import zarr

    return zarr.storage.ZipStore(path, mode=mode)


def codec_encoding(name: str, zarr_format: int) -> dict[str, Any]:
    """The fixture's compressor in the encoding key each zarr major understands."""
    codec = c.zarr_codec(name, zarr_format)
    if zarr_major() >= 3:
        return {"compressors": None if codec is None else [codec]}
    return {"compressor": codec}


def write(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import xarray as xr

    fixture, fmt, archive = args["fixture"], args["zarr_format"], args["archive"]
    if fmt == 3 and zarr_major() < 3:
        raise c.Unsupported(f"xarray {xr.__version__} with zarr 2 writes Zarr format 2 only")
    expected = c.expected_record(fixture)
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in fixture["arrays"]:
        groups.setdefault(c.split_path(spec["path"])[0], []).append(spec)
        if spec.get("shards") and fmt != 3:
            raise c.Unsupported("the sharding codec exists in Zarr format 3 only")
        stored = c.cf_encoded(c.make_values(spec), spec.get("fill_value"))
        expected["arrays"][spec["path"]]["sha256"] = c.canonical_sha256(stored)
        if np.asarray(stored).dtype.kind == "f":
            expected["arrays"][spec["path"]]["nan_count"] = int(np.isnan(stored).sum())

    def do_write() -> None:
        store = zip_store(archive, "w")
        try:
            mode = "w"
            for group in ["", *[g for g in groups if g]]:
                variables, encoding = {}, {}
                for spec in groups.get(group, []):
                    name = c.split_path(spec["path"])[1]
                    variables[name] = xr.Variable(spec["dims"], c.make_values(spec), attrs=spec.get("attrs", {}))
                    enc = {
                        "chunks": tuple(spec["chunks"]),
                        "_FillValue": spec.get("fill_value"),
                        **codec_encoding(spec["compressor"], fmt),
                    }
                    if spec.get("shards"):
                        enc["shards"] = tuple(spec["shards"])
                    encoding[name] = enc
                ds = xr.Dataset(variables, attrs=fixture.get("attrs", {}) if group == "" else {})
                kwargs = {"zarr_format": fmt} if zarr_major() >= 3 else {}
                ds.to_zarr(store, group=group or None, mode=mode, encoding=encoding, consolidated=False, **kwargs)
                mode = "a"
        finally:
            store.close()

    _, seconds = c.timed(do_write)
    return {
        "library": "xarray",
        "version": xr.__version__,
        "zarr_format": fmt,
        "expected": expected,
        "timings": {"write_s": seconds},
    }


def open_group(
    xr: Any, method: str, archive: str, group: str, mask_and_scale: bool, http: bool = False, folder: str = ""
) -> Any:
    """Over HTTP (``archive`` is a URL): a ZipStore on an fsspec HTTP file (zarr 3.3+), or ``zip::http://``.
    ``folder``: where the store is inside the archive (zipped from its parent), "" at its root."""
    kwargs = {
        "group": c.inside(folder, group) or None,
        "consolidated": False,
        "mask_and_scale": mask_and_scale,
    }  # call: xarray-zipstore xarray-fsspec
    if method == "zipstore":
        import zarr  # call: xarray-zipstore

        if http:
            import fsspec

            url = archive
            c.needs_aiohttp()
            source = fsspec.open(url, "rb").open()  # call: xarray-zipstore@http
            try:
                store = zarr.storage.ZipStore(source, mode="r")  # call: xarray-zipstore@http
            except (TypeError, AssertionError) as exc:
                refusal = c.path_only_zipstore(zarr.__version__, exc)
                if refusal is not None:
                    raise refusal from exc
                raise
        else:
            store = zarr.storage.ZipStore(archive, mode="r")  # call: xarray-zipstore
        return store, xr.open_zarr(store, **kwargs)  # call: xarray-zipstore
    if method == "fsspec":
        if http:
            url = archive
            return None, xr.open_zarr("zip::" + url, **kwargs)  # call: xarray-fsspec@http
        return None, xr.open_zarr("zip::" + c.file_url(archive), **kwargs)  # call: xarray-fsspec
    raise ValueError(f"unknown method {method!r}")


def values_at(var: Any, index: Any) -> Any:
    """A variable's values, whole (``...``) or at a region (a tuple of slices)."""
    return (var if index is Ellipsis else var[index]).values


def read(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import xarray as xr  # call: xarray-zipstore xarray-fsspec

    method, http = args["method"], c.over_http(args)
    fmt = args.get("zarr_format") or (None if http else c.archive_format(args["archive"]))
    if fmt == 3 and zarr_major() < 3:
        raise c.Unsupported(f"xarray {xr.__version__} on zarr 2 reads Zarr format 2 only; this archive is format 3")
    paths = args["arrays"]
    by_group: dict[str, list[str]] = {"": []} if not paths else {}  # always open the archive itself
    for path in paths:
        by_group.setdefault(c.split_path(path)[0], []).append(path)

    def read_all(mask_and_scale: bool, archive: str) -> dict[str, Any]:
        out = {}
        for group, members in by_group.items():
            store, ds = open_group(xr, method, archive, group, mask_and_scale, http, args.get("root", ""))
            try:
                for path in members:
                    var = ds[c.split_path(path)[1]]
                    out[path] = (
                        c.read_values(functools.partial(values_at, var), c.part_of(args, path)),
                        dict(var.attrs),
                        var.dims,
                        dict(var.encoding),
                        dict(ds.attrs) if group == "" else None,
                    )
            finally:
                if store is not None:
                    store.close()
        return out

    if http:
        raw, samples = c.repeat_over_http(lambda url: read_all(False, url), args)
        decoded = read_all(True, c.url_for(args, "decoded"))
    else:
        raw, samples = c.repeat(lambda: read_all(False, args["archive"]), int(args.get("repeats", 3)))
        decoded = read_all(True, args["archive"])
    arrays, observations = {}, []
    root_attrs = None
    for path in paths:
        values, attrs, dims, encoding, group_attrs = raw[path]
        fill = attrs.pop("_FillValue", encoding.get("_FillValue"))
        if group_attrs is not None:
            root_attrs = group_attrs
        chunks = encoding.get("preferred_chunks") or encoding.get("chunks")
        if isinstance(chunks, dict):
            chunks = [chunks[d] for d in dims]
        arrays[path] = c.describe_array(
            values, chunks=list(chunks) if chunks else None, fill_value=fill, attrs=attrs, dimension_names=list(dims)
        )
        dvalues = decoded[path][0]
        if fill is not None and not np.array_equal(dvalues, values, equal_nan=True):
            masked = np.where(values == fill, np.nan, values) if values.dtype.kind in "fiu" else values
            n = int(np.sum(values == fill))
            if np.array_equal(np.asarray(dvalues, dtype="f8"), np.asarray(masked, dtype="f8"), equal_nan=True):
                observations.append(
                    f"array {path!r}: with mask_and_scale=True (the default) {n} fill value(s) "
                    f"{fill!r} decode to NaN and dtype becomes {dvalues.dtype}; raw values match"
                )
            else:
                arrays[path]["decoded_mismatch"] = (
                    f"with mask_and_scale=True the values are not the CF masking of the raw values "
                    f"(dtype {dvalues.dtype}, sha256 {c.canonical_sha256(dvalues)[:12]}…)"
                )
    result = {
        "library": "xarray",
        "version": xr.__version__,
        "arrays": arrays,
        "observations": observations,
        "timings": {"read_s": c.median(samples), "read_samples": samples},
    }
    if root_attrs is not None:
        result["attrs"] = c.jsonable(root_attrs)
    return result


if __name__ == "__main__":
    c.main(lambda args: write(args) if args["role"] == "writer" else read(args))
