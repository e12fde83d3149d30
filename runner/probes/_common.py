"""Helpers shared by the probe scripts (run inside containers: standard library + numpy only).

A probe is ``python PROBE.py ARGS.json``. It calls :func:`main` with a handler; the handler returns a
dict and may raise :class:`Unsupported` (the library lacks the feature) or anything else (a clean
failure, recorded with the library's own message). The record lands at ``args["record"]``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

RECORD_VERSION = 1
#: Created (in the probe's own working directory) when a pickle from an archive is unpickled: the
#: hostile corpus's canary (runner/hostile.py). Its presence means code from the archive ran.
CANARY = "zipstore-pickle-canary"

#: What a probe noticed on the way (e.g. how a control read went); kept in the record even on failure.
OBSERVATIONS: list[str] = []
#: Warnings its library gave while a fork server imported it (harness.py), kept in every child's record.
PRELOAD_WARNINGS: list[str] = []


class Unsupported(Exception):
    """The library (at this version) cannot do what was asked: a finding, not an error."""


class Skipped(Exception):
    """The probe could not set up what it needed, and the library under test was never asked (a control
    whose input this probe cannot prepare): neither a finding about the library nor an error of it."""


def origin(exc: BaseException) -> str:
    """Which code raised ``exc``: the package under site-/dist-packages, or Python's own module."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    parts = frames[-1].filename.replace("\\", "/").split("/")
    packages = [i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages")]
    if packages and packages[-1] + 1 < len(parts):
        return parts[packages[-1] + 1].removesuffix(".py")
    module = parts[-2] if parts[-1] == "__init__.py" and len(parts) > 1 else parts[-1].removesuffix(".py")
    return f"Python {sys.version.split()[0]}'s {module}"


def main(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        args = json.load(fh)
    record: dict[str, Any] = {"record_version": RECORD_VERSION}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            record.update(handler(args))
            record.setdefault("status", "ok")
        except Unsupported as exc:
            record.update(status="unsupported", message=str(exc))
        except Skipped as exc:
            record.update(status="skipped", message=str(exc))
        except NotImplementedError as exc:  # the code's own "not implemented": it lacks the feature
            words = f"{origin(exc)}: NotImplementedError: {first_line_words(exc)}"
            record.update(status="unsupported", message=words, traceback=traceback.format_exc()[-6000:])
        except Exception as exc:
            lacking = lacking_cause(exc)
            if lacking is not None:  # raised *from* a "not implemented" (bioio wraps zipfile's): unsupported
                words = f"{type(exc).__module__}.{type(exc).__qualname__}: {first_line_words(exc)} (raised from "
                words += f"{origin(lacking)}: NotImplementedError: {first_line_words(lacking)})"
                record.update(status="unsupported", message=words, traceback=traceback.format_exc()[-6000:])
            else:
                record.update(
                    status="error",
                    error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
                    message=first_line_words(exc),
                    traceback=traceback.format_exc()[-6000:],
                )
        except BaseException as exc:
            record.update(
                status="error",
                error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
                message=first_line_words(exc),
                traceback=traceback.format_exc()[-6000:],
            )
    record["warnings"] = dedupe([*PRELOAD_WARNINGS, *(f"{w.category.__name__}: {w.message}" for w in caught)])
    if os.path.exists(os.path.join(args.get("scratch") or os.getcwd(), CANARY)):
        record["executed_code"] = True
    if OBSERVATIONS:
        record["observations"] = list(record.get("observations", [])) + OBSERVATIONS
    record.setdefault("library", args.get("library"))
    tmp = args["record"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True, default=str)
    os.replace(tmp, args["record"])


def lacking_cause(exc: BaseException) -> NotImplementedError | None:
    """The NotImplementedError an exception was raised from (``raise X from e``, a few links deep), if any:
    a library that wraps "That compression method is not supported" in its own error still lacks the feature.
    Only explicit causes count: an error raised while handling another is not caused by it."""
    cause = exc.__cause__
    for _ in range(8):
        if cause is None:
            return None
        if isinstance(cause, NotImplementedError):
            return cause
        cause = cause.__cause__
    return None


def first_line_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 2000 else text[:2000] + "…"


def dedupe(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(item)[:500], None)
    return list(seen)


def version_of(module: Any, distribution: str | None = None) -> str:
    """``module.__version__``, else the installed distribution's version (tensorstore has no __version__)."""
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    from importlib import metadata

    try:
        return metadata.version(distribution or module.__name__)
    except metadata.PackageNotFoundError:
        return "unknown"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def repeat(fn: Callable[[], Any], times: int) -> tuple[Any, list[float]]:
    """Call ``fn`` ``times`` times (at least once); return the last value and every duration."""
    samples = []
    value = None
    for _ in range(max(1, times)):
        value, seconds = timed(fn)
        samples.append(seconds)
    return value, samples


# ------------------------------------------------------------------------------------ over HTTP
# A reader task over HTTP has ``url`` (with ``{phase}``) instead of ``archive``. Each read asks its own URL
# (r0, r1, ...; ``one`` for one chunk), so no cache carries over from one read to the next and the servers'
# logs give each read's requests and bytes.


def over_http(args: dict[str, Any]) -> bool:
    return str(args.get("access", "file")) != "file"


def url_for(args: dict[str, Any], phase: str) -> str:
    return str(args["url"]).replace("{phase}", phase)


def repeat_over_http(fn: Callable[[str], Any], args: dict[str, Any]) -> tuple[Any, list[float]]:
    """Call ``fn(url)`` once per timed read, each at its own URL; return the last value and every duration."""
    samples = []
    value = None
    for i in range(max(1, int(args.get("repeats", 3)))):
        value, seconds = timed(functools.partial(fn, url_for(args, f"r{i}")))
        samples.append(seconds)
    return value, samples


def one_chunk_over_http(fn: Callable[[str], Any], args: dict[str, Any]) -> None:
    """Over HTTP, read one chunk at the ``one`` URL (what it cost is counted from the server's log). A
    failure here is noted, not the cell's verdict: the whole read already said what the reader can do."""
    if not over_http(args):
        return
    try:
        fn(url_for(args, "one"))
    except Exception as exc:
        OBSERVATIONS.append(f"reading one chunk over HTTP failed: {type(exc).__name__}: {first_line_words(exc)}")


def first_chunk(shape: Any, chunks: Any) -> tuple[slice, ...]:
    """The index of an array's first chunk (its whole extent when the array is smaller)."""
    return tuple(slice(0, max(1, min(int(s), int(c)))) for s, c in zip(shape, chunks, strict=False))


def part_regions(shape: Any, chunks: Any) -> list[list[list[int]]]:
    """The part of an array that is read over HTTP when the whole is too large to read there: its first chunk
    and its last, each as [start, stop] per dimension (one region when they are the same chunk)."""
    first = [[0, min(int(s), int(k))] for s, k in zip(shape, chunks, strict=True)]
    last = [[(max(int(s) - 1, 0) // int(k)) * int(k), int(s)] for s, k in zip(shape, chunks, strict=True)]
    return [first] if first == last else [first, last]


def read_values(get: Callable[[Any], Any], regions: list[list[list[int]]] | None) -> Any:
    """An array's values: the whole (``get(...)``), or the regions the host names (``part`` of the task,
    from :func:`part_regions`), each read on its own and joined flat in C order, as the writer described
    them in its record."""
    if regions is None:
        return get(Ellipsis)
    import numpy as np

    return np.concatenate([np.asarray(get(tuple(slice(a, b) for a, b in r))).ravel() for r in regions])


def inside(folder: str, path: str) -> str:
    """A path below the store's folder inside the archive ("" when the store is the archive's root)."""
    return "/".join(p for p in (folder, path) if p)


def part_of(args: dict[str, Any], path: str) -> list[list[list[int]]] | None:
    """The regions of ``path`` to read instead of the whole array (a large fixture over HTTP), or None."""
    part = args.get("part") or {}
    return part.get(path) if isinstance(part, dict) else None


def path_only_zipstore(version: str, exc: BaseException) -> Unsupported | None:
    """zarr before 3.3 takes a path only: its refusal of a file object (a TypeError in zarr 2, an assertion in
    3.0 to 3.2), in its words; None for a zarr that should have taken it."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) >= (3, 3) or not isinstance(exc, (TypeError, AssertionError)):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    words = str(exc) or (frames[-1].line if frames else "") or ""
    return Unsupported(
        f"zarr {version}: ZipStore takes a local path; a file object from zarr 3.3.0 (PR #4187): "
        f"{type(exc).__name__}: {words}"
    )


#: What a fork server preloads for reads over HTTP through fsspec (aiohttp alone is ~70 ms an import, paid in
#: every forked child otherwise). Importing them starts no thread; a library without them imports nothing.
HTTP_PRELOAD = ("aiohttp", "fsspec.implementations.http")


def needs_aiohttp() -> None:
    """fsspec's HTTPFileSystem (``fsspec.open(url)``, ``zip::http://``) is built on aiohttp."""
    try:
        import aiohttp  # noqa: F401
    except ImportError as exc:
        raise Unsupported(f"fsspec's HTTP filesystem needs aiohttp, which is not installed: {exc}") from exc


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ------------------------------------------------------------------------------------- fixture data


BLOCK = 1 << 22  # elements generated at once: bounds the uint64 temporaries for 400 MB arrays


def make_values(spec: dict[str, Any]) -> Any:
    """The array a fixture describes, deterministic across numpy versions (no RNG streams involved)."""
    import numpy as np

    shape = tuple(spec["shape"])
    dtype = np.dtype(spec["dtype"])
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    out = np.empty(n, dtype=dtype)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        out[start:stop] = _values_block(spec, dtype, start, stop)
    return out.reshape(shape)


def _values_block(spec: dict[str, Any], dtype: Any, start: int, stop: int) -> Any:
    import numpy as np

    seed = np.uint64(spec.get("seed", 1))
    # splitmix64 over the element index: well mixed, pure integer arithmetic, identical everywhere.
    with np.errstate(over="ignore"):
        z = np.arange(start, stop, dtype=np.uint64) + seed * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    kind = spec.get("generator", "random")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        span = int(info.max) - int(info.min) + 1
        values = (z % np.uint64(span)).astype(np.int64 if dtype.kind == "i" else np.uint64)
        if dtype.kind == "i":
            values = values + int(info.min)
        if kind == "images":  # soft blobs on a dark background, like handwritten digits
            values = np.where(z % np.uint64(5) == 0, z % np.uint64(256), 0)
        return values.astype(dtype)
    if dtype.kind == "f":
        out = ((z >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 200.0 - 100.0).astype(dtype)
        if kind == "nan-fill":
            out[(z % np.uint64(7)) == 0] = np.nan
            out[(z % np.uint64(11)) == 0] = spec["fill_value"]
        return out
    if dtype.kind == "b":
        return (z & np.uint64(1)).astype(bool)
    raise ValueError(f"fixture generator has no rule for dtype {dtype}")


def canonical_sha256(values: Any) -> str:
    """SHA-256 of the values as little-endian, C-ordered bytes of their dtype; text by its UTF-8 values."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind in "OUT":  # object/unicode/StringDType: the same text whatever the container type
        text = "\x00".join("" if v is None else str(v) for v in arr.ravel(order="C"))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def describe_array(values: Any, **metadata: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind in "OUT":
        dtype = "str"
    else:
        dtype = arr.dtype.newbyteorder("<").str if arr.dtype.byteorder == ">" else arr.dtype.str
    out = {
        "shape": list(arr.shape),
        "dtype": dtype,
        "stored_dtype": arr.dtype.str,
        "sha256": canonical_sha256(arr),
    }
    if arr.dtype.kind == "f":
        out["nan_count"] = int(np.isnan(arr).sum())
    out.update({k: jsonable(v) for k, v in metadata.items() if v is not None})
    return out


#: The first bytes of a compressed stream, by codec: values that begin so were returned undecoded.
STREAM_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x78\x01": "zlib",
    b"\x78\x5e": "zlib",
    b"\x78\x9c": "zlib",
    b"\x78\xda": "zlib",
}


def undecoded(values: Any) -> str | None:
    """The codec whose stream header the values' first bytes are (a reader that skipped decompression
    returns the chunk's bytes as values), or None. An observation, not a verdict: the host compares."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return None
    head = np.ascontiguousarray(arr).tobytes()[:4]
    return next((codec for magic, codec in STREAM_MAGIC.items() if head.startswith(magic)), None)


def jsonable(value: Any) -> Any:
    """Attributes and fill values as plain JSON (numpy scalars, tuples, NaN as the string 'NaN')."""
    import math

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def expected_record(fixture: dict[str, Any]) -> dict[str, Any]:
    """What a perfect reader must see: per array, values hash plus the metadata the fixture declares."""
    arrays = {}
    for spec in fixture["arrays"]:
        values = make_values(spec)
        arrays[spec["path"]] = describe_array(
            values,
            chunks=spec["chunks"],
            fill_value=spec.get("fill_value"),
            attrs=spec.get("attrs", {}),
            dimension_names=spec.get("dims"),
        )
        if fixture.get("part_over_http"):  # too large to read whole over HTTP: readers there read this part
            regions = part_regions(spec["shape"], spec["chunks"])
            part = describe_array(read_values(values.__getitem__, regions))
            arrays[spec["path"]]["part"] = {"regions": regions, **part}
    return {"arrays": arrays, "attrs": jsonable(fixture.get("attrs", {}))}


def file_url(path: str) -> str:
    return "file://" + os.path.abspath(path)


def archive_format(archive: str) -> int | None:
    """Zarr format of an archive by its metadata names (3: zarr.json; 2: .zgroup/.zarray), or None."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = {n.rsplit("/", 1)[-1] for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError):
        return None
    return 3 if "zarr.json" in names else 2 if names & {".zgroup", ".zarray"} else None


def split_path(path: str) -> tuple[str, str]:
    """'a/b/leaf' -> ('a/b', 'leaf'); 'data' -> ('', 'data')."""
    group, _, name = path.rpartition("/")
    return group, name


def cf_encoded(values: Any, fill_value: Any) -> Any:
    """What a CF-encoding writer (xarray with _FillValue) stores: NaN replaced by the fill value."""
    import numpy as np

    if fill_value is None or np.asarray(values).dtype.kind != "f":
        return values
    return np.where(np.isnan(values), np.asarray(fill_value, dtype=np.asarray(values).dtype), values)


def unzip(archive: str, scratch: str) -> str:
    """Extract an archive into the probe's scratch space (tmpfs); return the directory."""
    target = os.path.join(scratch, "unzipped.zarr")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    return target


def codec_ids(archive: str) -> list[str]:
    """Codec names the archive's array metadata asks for (v2 compressor/filters, v3 codecs)."""
    found: dict[str, None] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.rsplit("/", 1)[-1] not in (".zarray", "zarr.json"):
                    continue
                meta = json.loads(zf.read(name))
                for codec in [meta.get("compressor"), *(meta.get("filters") or []), *(meta.get("codecs") or [])]:
                    if isinstance(codec, dict):
                        found.setdefault(str(codec.get("id") or codec.get("name")), None)
                        inner = (codec.get("configuration") or {}).get("codecs") or []
                        for sub in inner:
                            found.setdefault(str(sub.get("name")), None)
    except (zipfile.BadZipFile, OSError, ValueError):
        pass
    return list(found)


def zarr_codec(name: str, zarr_format: int) -> Any:
    """The compressor a fixture names, as a codec object for that Zarr format (None for "none").

    Format 3 takes ``zarr.codecs`` (zarr 3 only); format 2 takes numcodecs, under zarr 2 and zarr 3 alike.
    """
    if name == "none":
        return None
    if zarr_format == 3:
        from zarr import codecs

        table = {
            "gzip": lambda: codecs.GzipCodec(level=5),
            "zstd": lambda: codecs.ZstdCodec(level=3),
            "blosc": lambda: codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
        }
    else:
        import numcodecs

        table = {
            "gzip": lambda: numcodecs.GZip(level=5),
            "zlib": lambda: numcodecs.Zlib(level=5),
            "zstd": lambda: numcodecs.Zstd(level=3),
            "blosc": lambda: numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
        }
    if name not in table:
        raise Unsupported(f"compressor {name!r} has no Zarr format {zarr_format} codec")
    return table[name]()


def ome_dataset_paths(archive: str) -> list[str] | None:
    """The datasets' paths of the first multiscales, in level order, from the archive's root metadata (None:
    the root names no multiscales), for OME readers that name levels by index. Read with zipfile."""
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        for name in ("zarr.json", ".zattrs"):
            if name in names:
                attrs = json.loads(zf.read(name))
                attrs = attrs.get("attributes", attrs)
                multiscales = attrs.get("ome", attrs).get("multiscales")
                if multiscales:
                    return [str(d["path"]) for d in multiscales[0]["datasets"]]
    return None


def ozx_with_twin(
    args: dict[str, Any], library: str, write: Callable[[str, Any, dict[str, Any], dict[str, Any]], None]
) -> dict[str, Any]:
    """A writer record for an OME-Zarr writer whose lower levels are its own downsampling: ``write(target,
    values, spec, ome)`` writes the fixture's image to ``image.ozx`` (timed), then once more to a directory
    store beside it, and each level is described from that twin with zarr (never from the archive being
    judged). Level 0 is checked against the fixture's values (an observation when it is not them)."""
    import zarr

    ome = args["fixture"].get("ome")
    if not ome:
        raise Unsupported(f"{library} writes OME-Zarr images; this fixture is not one")
    (spec,) = args["fixture"]["arrays"]
    values = make_values(spec)
    target = os.path.join(args["scratch"], "image.ozx")
    _, seconds = timed(lambda: write(target, values, spec, ome))
    with open(target, "rb") as src, open(args["archive"], "wb") as dst:  # the runner's name ends .zip
        dst.write(src.read())
    twin = os.path.join(args["scratch"], "image.zarr")
    write(twin, values, spec, ome)
    group = zarr.open_group(twin, mode="r")
    with zipfile.ZipFile(args["archive"]) as zf:
        root = json.loads(zf.read("zarr.json"))
    datasets = root["attributes"]["ome"]["multiscales"][0]["datasets"]
    arrays = {}
    for dataset in datasets:
        level = group[dataset["path"]]
        arrays[dataset["path"]] = describe_array(
            level[...],
            chunks=list(level.chunks),
            fill_value=jsonable(level.fill_value),
            dimension_names=list(level.metadata.dimension_names or []) or None,
        )
    first = datasets[0]["path"]
    if arrays[first]["sha256"] != canonical_sha256(values):
        OBSERVATIONS.append(f"{library}'s level {first} does not hold the fixture's values")
    return {
        "library": library,
        "zarr_format": 3,
        "method": "ozx",
        "expected": {"arrays": arrays, "attrs": jsonable(root.get("attributes", {}))},
        "timings": {"write_s": seconds},
    }
