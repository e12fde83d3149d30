"""zarr-python 2.x and 3.x: write a ZipStore, or read one (ZipStore, or ``zip::`` through fsspec).

Asked the way each major version documents it (see ZIPSTORE-FACTS.md): zarr 2 ``ZipStore(path, mode=)``
by keyword (the second positional is *compression*); zarr 3 ``ZipStore(path, mode=)`` keyword-only with
default mode "r"; always ``close()`` before anyone reads the archive.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarr", "numcodecs", "fsspec", "fsspec.implementations.zip", *c.HTTP_PRELOAD)


def major(zarr: Any) -> int:
    return int(zarr.__version__.split(".")[0])


# ----------------------------------------------------------------------------------------- writing


def parent_group(root: Any, path: str) -> Any:
    group = root
    for part in path.split("/")[:-1]:
        group = group.require_group(part)
    return group, path.split("/")[-1]


def write(args: dict[str, Any]) -> dict[str, Any]:
    import zarr

    fixture, fmt, archive = args["fixture"], args["zarr_format"], args["archive"]
    v = major(zarr)
    if v == 2 and fmt != 2:
        raise c.Unsupported(f"zarr {zarr.__version__} writes Zarr format 2 only")
    if v >= 3 and not hasattr(zarr.storage, "ZipStore"):
        raise c.Unsupported(f"zarr {zarr.__version__} has no ZipStore (added in 3.0.0a4)")
    for spec in fixture["arrays"]:
        if spec.get("shards") and fmt != 3:
            raise c.Unsupported("the sharding codec exists in Zarr format 3 only")
    expected = c.expected_record(fixture)

    method = args.get("method", "zipstore")
    directory = os.path.join(args["scratch"], "store.zarr")

    def open_store() -> Any:
        if method == "zipstore":
            return zarr.storage.ZipStore(archive, mode="w")
        if method == "zipdir":  # what many users do instead: write a directory, zip it afterwards
            return directory_store(zarr, directory)
        raise ValueError(f"unknown write method {method!r}")

    def do_write() -> None:
        store = open_store()
        try:
            fill(zarr, store, fixture, fmt)
        finally:
            if hasattr(store, "close"):
                store.close()
        if method == "zipdir":
            zip_directory(directory, archive)

    _, seconds = c.timed(do_write)
    return {
        "library": "zarr",
        "version": zarr.__version__,
        "zarr_format": fmt,
        "method": method,
        "expected": expected,
        "timings": {"write_s": seconds},
    }


def directory_store(zarr: Any, directory: str) -> Any:
    """A directory store at ``directory``, as each major version names it."""
    return zarr.storage.DirectoryStore(directory) if major(zarr) == 2 else zarr.storage.LocalStore(directory)


def fill(zarr: Any, store: Any, fixture: dict[str, Any], fmt: int) -> None:
    """Write the fixture's groups, arrays and attributes into an open store."""
    if major(zarr) == 2:
        root = zarr.group(store=store)
        if fixture.get("attrs"):
            root.attrs.update(fixture["attrs"])  # one write of .zattrs: no duplicate entry
        for spec in fixture["arrays"]:
            group, name = parent_group(root, spec["path"])
            arr = group.create_dataset(
                name,
                shape=spec["shape"],
                chunks=spec["chunks"],
                dtype=spec["dtype"],
                fill_value=spec.get("fill_value"),
                compressor=c.zarr_codec(spec["compressor"], 2),
            )
            arr[...] = c.make_values(spec)
            arr.attrs.update(dict(spec.get("attrs", {}), _ARRAY_DIMENSIONS=spec["dims"]))
        return
    root = zarr.open_group(store=store, mode="w", zarr_format=fmt, attributes=fixture.get("attrs") or {})
    for spec in fixture["arrays"]:
        group, name = parent_group(root, spec["path"])
        attrs = dict(spec.get("attrs", {}))
        extra = {}
        if fmt == 3:
            extra["dimension_names"] = spec["dims"]
            if spec.get("shards"):
                extra["shards"] = spec["shards"]
        else:
            attrs["_ARRAY_DIMENSIONS"] = spec["dims"]
        comp = c.zarr_codec(spec["compressor"], fmt)
        arr = group.create_array(
            name,
            shape=spec["shape"],
            chunks=spec["chunks"],
            dtype=spec["dtype"],
            fill_value=spec.get("fill_value"),
            compressors=comp,
            attributes=attrs,
            **extra,
        )
        arr[...] = c.make_values(spec)


def zip_directory(directory: str, archive: str) -> None:
    """Zip a directory store from its root, uncompressed, files only, in walk order (like ``zip -r -0``)."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for folder, subfolders, files in os.walk(directory):
            subfolders.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                zf.write(full, os.path.relpath(full, directory))


# ----------------------------------------------------------------------------------------- reading


def open_store(zarr: Any, method: str, archive: str, http: bool = False) -> Any:
    """The store (or, for zarr 2 on fsspec, the URL) the way each version documents it. Over HTTP
    (``archive`` is then a URL): ``ZipStore`` on an fsspec HTTP file object (zarr 3.3+, PR #4187), and
    ``zip::http://...`` through fsspec."""
    if method == "zipstore" and http:
        import fsspec

        url = archive
        c.needs_aiohttp()
        source = fsspec.open(url, "rb").open()  # call: zarr-zipstore@http
        try:
            return zarr.storage.ZipStore(source, mode="r")  # call: zarr-zipstore@http
        except (TypeError, AssertionError) as exc:
            refusal = c.path_only_zipstore(zarr.__version__, exc)
            if refusal is not None:
                raise refusal from exc
            raise
    if method == "zipstore":
        return zarr.storage.ZipStore(archive, mode="r")  # call: zarr-zipstore
    if method == "fsspec":
        if http:
            url = archive
            zip_url = "zip::" + url  # call: zarr-fsspec@http
        else:
            zip_url = "zip::" + c.file_url(archive)  # call: zarr-fsspec
        if major(zarr) == 2:
            return zip_url  # zarr 2 opens the URL itself
        return zarr.storage.FsspecStore.from_url(zip_url, read_only=True)  # call: zarr-fsspec zarr-fsspec@http
    raise ValueError(f"unknown method {method!r}")


def open_nodes(zarr: Any, store: Any, paths: list[str], folder: str = "") -> Any:
    """(root or None, {path: array}). Arrays come from the root group (at ``folder`` inside the archive when
    the store was zipped from its parent); where there is no root node, each array is opened by its path,
    which is noted."""
    try:
        root = zarr.open(store=store, mode="r", path=folder)  # call: zarr-zipstore zarr-fsspec
    except Exception as exc:
        if not paths:
            raise
        c.OBSERVATIONS.append(f"the archive root opens as neither group nor array ({exc}); arrays opened by path")
        return None, {p: zarr.open_array(store=store, path=c.inside(folder, p), mode="r") for p in paths}
    is_group = hasattr(root, "group_keys")
    return root, {p: (root[p] if is_group and p else root) for p in paths}


def array_metadata(zarr: Any, arr: Any) -> dict[str, Any]:
    attrs = dict(arr.attrs)
    dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    metadata = getattr(arr, "metadata", None)
    if dims is None and metadata is not None:
        dims = getattr(metadata, "dimension_names", None)
    return {
        "chunks": list(arr.chunks),
        "fill_value": arr.fill_value,
        "attrs": attrs,
        "dimension_names": list(dims) if dims is not None else None,
    }


def read(args: dict[str, Any]) -> dict[str, Any]:
    import zarr  # call: zarr-zipstore zarr-fsspec

    method, http = args["method"], c.over_http(args)
    fmt = args.get("zarr_format") or (None if http else c.archive_format(args["archive"]))
    if major(zarr) == 2 and fmt == 3:
        raise c.Unsupported(f"zarr {zarr.__version__} reads Zarr format 2 only; this archive is format 3")
    if method == "fsspec" or http:
        try:
            import fsspec  # noqa: F401
        except ImportError as exc:
            raise c.Unsupported(f"zip:: URLs need fsspec, which is not installed: {exc}") from exc
    paths = args["arrays"]
    if http:
        (found, attrs), read_times = c.repeat_over_http(lambda url: read_once(zarr, method, url, args), args)
        if paths:
            c.one_chunk_over_http(lambda url: read_first_chunk(zarr, method, url, paths[0], args.get("root", "")), args)
        timings: dict[str, Any] = {"read_s": c.median(read_times), "read_samples": read_times}
    else:
        store = open_store(zarr, method, args["archive"])
        try:
            (root, nodes), open_s = c.timed(lambda: open_nodes(zarr, store, paths, args.get("root", "")))
            values, read_times = c.repeat(
                lambda: {path: nodes[path][...] for path in paths}, int(args.get("repeats", 3))
            )
            found = {path: c.describe_array(values[path], **array_metadata(zarr, nodes[path])) for path in paths}
            attrs = dict(root.attrs) if root is not None and hasattr(root, "group_keys") else None
        finally:
            if hasattr(store, "close"):
                store.close()
        timings = {"open_s": open_s, "read_s": c.median(read_times), "read_samples": read_times}
    result = {"library": "zarr", "version": zarr.__version__, "arrays": found, "timings": timings}
    if attrs is not None:
        result["attrs"] = c.jsonable(attrs)
    return result


def read_once(zarr: Any, method: str, url: str, args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Over HTTP: open the store at ``url``, read every array (or the part the task names), close (each timed
    read on its own URL)."""
    paths = args["arrays"]
    store = open_store(zarr, method, url, http=True)
    try:
        root, nodes = open_nodes(zarr, store, paths, args.get("root", ""))
        found = {
            path: c.describe_array(
                c.read_values(nodes[path].__getitem__, c.part_of(args, path)), **array_metadata(zarr, nodes[path])
            )
            for path in paths
        }
        attrs = dict(root.attrs) if root is not None and hasattr(root, "group_keys") else None
    finally:
        if hasattr(store, "close"):
            store.close()
    return found, attrs


def read_first_chunk(zarr: Any, method: str, url: str, path: str, folder: str) -> None:
    store = open_store(zarr, method, url, http=True)
    try:
        _, nodes = open_nodes(zarr, store, [path], folder)
        arr = nodes[path]
        arr[c.first_chunk(arr.shape, arr.chunks)]
    finally:
        if hasattr(store, "close"):
            store.close()


if __name__ == "__main__":
    c.main(lambda args: write(args) if args["role"] == "writer" else read(args))
