"""netCDF4 / netcdf-c NCZarr: ``file:///abs.zip#mode=zarr,zip`` or ``#mode=nczarr,zip``.

The ``zarr,file`` control reads the same archive *unzipped* (into the probe's tmpfs), so a failure of
the zip modes can be told apart: NCZarr broken for this data, or zip storage not built into this
netcdf-c. Raw values (auto mask and scale off) are compared; netCDF's own messages are kept verbatim.
"""

from __future__ import annotations

import sys
import zipfile
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "netCDF4")


def open_dataset(netCDF4: Any, mode: str, archive: str, scratch: str, folder: str = "") -> Any:
    """``folder``: where the store is inside the archive (zipped from its parent). The unzipped control opens
    it there; NCZarr's zip mode takes no path inside the zip, so it opens the archive's root and says so."""
    if mode == "zarr-file":
        try:
            unzipped = c.unzip(archive, scratch)  # call: netcdf4-zarr-file
        except (NotImplementedError, zipfile.BadZipFile, OSError) as exc:
            raise c.Skipped(
                f"the control could not unzip this archive with Python {sys.version.split()[0]}'s zipfile, so "
                f"NCZarr was not asked: {type(exc).__name__}: {exc}"
            ) from exc
        where = c.inside(unzipped, folder)
        return netCDF4.Dataset(f"file://{where}#mode=zarr,file", "r")  # call: netcdf4-zarr-file
    if folder:
        c.OBSERVATIONS.append(f"NCZarr's zip mode takes no path inside the zip: the store in {folder}/ is not given")
    kind = {"zarr-zip": "zarr", "nczarr-zip": "nczarr"}[mode]
    return netCDF4.Dataset(f"{c.file_url(archive)}#mode={kind},zip", "r")  # call: netcdf4-zarr-zip netcdf4-nczarr-zip


class NotFound(LookupError):
    """netCDF opened the dataset but does not see this array."""


def variable(ds: Any, path: str) -> Any:
    group, name = c.split_path(path)
    node = ds
    for part in [p for p in group.split("/") if p]:
        if part not in node.groups:
            raise NotFound(f"netCDF sees no group {part!r} (groups: {sorted(node.groups)})")
        node = node.groups[part]
    if name not in node.variables:
        raise NotFound(
            f"netCDF sees no variable {name!r} (variables: {sorted(node.variables)}, groups: {sorted(node.groups)})"
        )
    return node.variables[name]


def describe(var: Any) -> dict[str, Any]:
    attrs = {a: var.getncattr(a) for a in var.ncattrs()}
    fill = attrs.pop("_FillValue", None)
    chunking = var.chunking()
    return {
        "chunks": list(chunking) if isinstance(chunking, (list, tuple)) else None,
        "fill_value": fill,
        "attrs": attrs,
        "dimension_names": list(var.dimensions),
    }


# netcdf-c error codes that mean "this build or version lacks the feature" (netcdf.h)
NC_ENOTNC, NC_ENOTBUILT, NC_ENOFILTER = -51, -128, -136


def missing_feature(exc: Exception, archive: str, zarr_format: int | None, version: str) -> str | None:
    """netCDF's own message, framed as unsupported, when the error says a feature is absent."""
    code = getattr(exc, "errno", None)
    message = str(exc)
    if code == NC_ENOTBUILT:
        return f"netCDF4 {version}: zip storage is not built into this netcdf-c: {message}"
    if code == NC_ENOFILTER or "undefined filter" in message:
        codecs = ", ".join(c.codec_ids(archive)) or "?"
        return f"netCDF4 {version}: no filter for this archive's codec(s) ({codecs}): {message}"
    if code == NC_ENOTNC and (zarr_format or c.archive_format(archive)) == 3:
        return f"netCDF4 {version} reports this Zarr format 3 data as an unknown format: {message}"
    return None


def control(netCDF4: Any, archive: str, scratch: str, folder: str) -> None:
    """Open the same data unzipped (#mode=zarr,file) and note the result: zip layer or NCZarr itself?"""
    try:
        open_dataset(netCDF4, "zarr-file", archive, scratch, folder).close()
        c.OBSERVATIONS.append("the same data unzipped opens with #mode=zarr,file: the zip layer is what fails")
    except Exception as failure:
        c.OBSERVATIONS.append(f"the unzipped control (#mode=zarr,file) fails too: {failure}")


def read(args: dict[str, Any]) -> dict[str, Any]:
    import netCDF4

    archive, mode, paths = args.get("archive", ""), args["mode"], args["arrays"]
    version = f"{netCDF4.__version__} (netcdf-c {netCDF4.__netcdf4libversion__})"
    if getattr(netCDF4, "__has_nczarr_support__", True) is False:
        raise c.Unsupported(f"netCDF4 {version} was built without NCZarr")
    if c.over_http(args):
        return read_over_http(netCDF4, args["url"], version)

    def read_all() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        ds = open_dataset(netCDF4, mode, archive, args["scratch"], args.get("root", ""))
        try:
            ds.set_auto_maskandscale(False)
            values, meta = {}, {}
            for path in paths:
                var = variable(ds, path)
                values[path] = var[...]
                meta[path] = describe(var)
            return values, meta, {a: ds.getncattr(a) for a in ds.ncattrs()}
        finally:
            ds.close()

    try:
        (values, meta, root_attrs), samples = c.repeat(read_all, int(args.get("repeats", 3)))
    except NotFound as exc:
        if (args.get("zarr_format") or c.archive_format(archive)) == 3:
            raise c.Unsupported(f"netCDF4 {version} opens this Zarr format 3 data but sees none of it: {exc}") from exc
        raise
    except (OSError, RuntimeError) as exc:
        if mode != "zarr-file":
            control(netCDF4, archive, args["scratch"], args.get("root", ""))
        lacking = missing_feature(exc, archive, args.get("zarr_format"), version)
        if lacking:
            raise c.Unsupported(lacking) from exc
        raise
    for p in paths:
        codec = c.undecoded(values[p])
        if codec:
            c.OBSERVATIONS.append(
                f"{p}: the values read begin with a {codec} stream header: netcdf-c returned the chunks "
                f"undecoded, without an error (no {codec} filter in this build?)"
            )
    return {
        "library": "netcdf4",
        "version": version,
        "arrays": {p: c.describe_array(values[p], **meta[p]) for p in paths},
        "attrs": c.jsonable(root_attrs),
        "timings": {"read_s": c.median(samples), "read_samples": samples},
    }


def read_over_http(netCDF4: Any, url: str, version: str) -> dict[str, Any]:
    """NCZarr documents zip storage as a local file (``#mode=zarr,zip`` on a file path) and remote storage
    as S3 only (``#mode=zarr,s3``): no way to read a zip over HTTP. Asked anyway, in the same syntax, so
    the cell carries netcdf-c's own words; should it ever open, the cell says so instead."""
    url = url.replace("{phase}", "r0")
    target = url + "#mode=zarr,zip"
    try:
        netCDF4.Dataset(url + "#mode=zarr,zip", "r").close()  # call: netcdf4-zarr-zip@http
    except (OSError, RuntimeError) as exc:
        raise c.Unsupported(
            f"netCDF4 {version}: NCZarr reads a zip from a local file only (remote: S3); asked for {target}: {exc}"
        ) from exc
    raise RuntimeError(f"netCDF4 {version} opened a zip over HTTP ({target}), which NCZarr does not document")


if __name__ == "__main__":
    c.main(read)
