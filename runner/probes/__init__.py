"""The probe catalog, read on the host. The probe *scripts* in this folder run inside containers and
import nothing from ``runner``; this module only says which script does what, for which library.

A probe applies to an environment when the environment declares the probe's library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from packaging.specifiers import SpecifierSet

#: How a reader is given an archive: its local path, or a URL on one of the run's servers (``runner/served``):
#: ``http`` honours Range requests, ``http-norange`` ignores them and answers 200 with the whole body,
#: ``http-fault`` honours them but answers 503 once a read has made a few requests (nginx's rate limit),
#: ``http-truncated`` honours them but cuts every response body after 8 KiB (an upstream that stalls behind
#: nginx's proxy), ``http-nocors`` honours them but sends no CORS headers (only a browser cares).
Access = Literal["file", "http", "http-norange", "http-fault", "http-truncated", "http-nocors"]
ACCESS: tuple[Access, ...] = get_args(Access)
#: what a reader with a documented HTTP path is given; a page in a browser has no file path, and CORS
BY_URL: tuple[Access, ...] = ("http", "http-norange", "http-fault", "http-truncated")
IN_A_PAGE: tuple[Access, ...] = (*BY_URL, "http-nocors")
#: How a reader meets an archive whose store sits in a folder (``zip -r data.zip data.zarr``): ``given`` the
#: folder by the host (a path inside the archive), ``finds`` it on its own (a viewer's opener, given only the
#: archive), or ``none``: it takes no path inside an archive (the OME readers open the archive's root).
RootHandling = Literal["given", "finds", "none"]


@dataclass(frozen=True, kw_only=True)
class Probe:
    id: str
    role: Literal["writer", "reader", "benchmark"]
    library: str
    script: str
    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    #: library -> PEP 440 specifier it must meet; checked at plan time against exact pins only.
    requires: Mapping[str, str] = field(default_factory=dict)
    #: True for readers that open arrays by path and have nothing to try on an archive without any
    needs_arrays: bool = False
    #: how this reader can be given an archive; over HTTP only where its library documents a way
    access: tuple[Access, ...] = ("file",)
    #: the only channel whose images can run it (the browser probe needs Chromium); None: any
    channel: str | None = None
    #: how it meets a store in a folder inside the archive; only ``given`` is told where the folder is
    root: RootHandling = "given"


def _writer(
    id: str, library: str, script: str, label: str, zarr_format: int, channel: str | None = None, **options: Any
) -> Probe:
    requires = {"zarr": ">=3.0.0a4"} if zarr_format == 3 else {}
    requires = options.pop("requires", requires)
    return Probe(
        id=id,
        role="writer",
        library=library,
        script=script,
        label=label,
        options={"zarr_format": zarr_format, **options},
        requires=requires,
        channel=channel,
    )


def _reader(
    id: str,
    library: str,
    script: str,
    label: str,
    needs_arrays: bool = False,
    http: bool = True,
    access: tuple[Access, ...] | None = None,
    channel: str | None = None,
    root: RootHandling = "given",
    **options: Any,
) -> Probe:
    return Probe(
        id=id,
        role="reader",
        library=library,
        script=script,
        label=label,
        options=options,
        needs_arrays=needs_arrays,
        access=access or (("file", *BY_URL) if http else ("file",)),
        channel=channel,
        root=root,
    )


#: the libraries' own writers
LIBRARY_WRITERS: tuple[Probe, ...] = (
    _writer("zarr-v2", "zarr", "zarr_probe.py", "zarr ZipStore, format 2", 2, method="zipstore"),
    _writer("zarr-v3", "zarr", "zarr_probe.py", "zarr ZipStore, format 3", 3, method="zipstore"),
    _writer(
        "zarr-zipdir-v2", "zarr", "zarr_probe.py", "directory store zipped afterwards, format 2", 2, method="zipdir"
    ),
    _writer(
        "zarr-zipdir-v3", "zarr", "zarr_probe.py", "directory store zipped afterwards, format 3", 3, method="zipdir"
    ),
    _writer("xarray-v2", "xarray", "xarray_probe.py", "xarray to_zarr into a ZipStore, format 2", 2),
    _writer("xarray-v3", "xarray", "xarray_probe.py", "xarray to_zarr into a ZipStore, format 3", 3),
    _writer(
        "ngff-zarr-ozx",
        "ngff-zarr",
        "ngff_probe.py",
        "ngff-zarr to_ngff_zarr('x.ozx'): OME-Zarr 0.5 in one file (RFC-9)",
        3,
        ome=True,
        requires={},
    ),
    _writer(
        "bioio-ozx",
        "bioio-ome-zarr",
        "bioio_probe.py",
        "bioio-ome-zarr OMEZarrWriter('x.ozx', zarr_format=3): OME-Zarr 0.5 in one file (RFC-9)",
        3,
        ome=True,
        requires={},
    ),
    _writer(
        "ngff-zarr-js-ozx",
        "fideus-labs-ngff-zarr",
        "ngff_zarr_browser_probe.mjs",
        "JavaScript ngff-zarr toNgffZarrOzx(multiscales) in headless Chromium: OME-Zarr 0.5 in one file (RFC-9)",
        3,
        channel="browser",
        ome=True,
        requires={},
    ),
    _writer(
        "zarrnii-ozx",
        "zarrnii",
        "zarrnii_probe.py",
        "zarrnii ZarrNii.to_ome_zarr('x.ozx'): a 1×1×y×x volume, OME-Zarr 0.5 in one file (RFC-9)",
        3,
        ome=True,
        requires={},
    ),
)

#: The zips people make by hand (``handzip_probe.py``): a directory store written by the environment's zarr in
#: format 3, then zipped by a tool. Each probe's library is its zip maker, so it runs where the environment
#: declares that tool (``zip``, ``7zip``) or Debian's ``python3`` (its zipfile and shutil).
HAND_MADE: tuple[Probe, ...] = tuple(
    _writer(id, library, "handzip_probe.py", label, 3, tool=tool, requires={})
    for id, library, tool, label in (
        ("zip-r", "zip", "zip-r", "Info-ZIP zip -r data.zip data.zarr: a top-level folder, directory entries, deflate"),
        ("zip-r0", "zip", "zip-r0", "Info-ZIP zip -r -0 from inside the store: stored, directory entries"),
        ("7z", "7zip", "7z", "7-Zip 7z a -tzip from inside the store, its default method (Deflate)"),
        ("7z-deflate64", "7zip", "7z-deflate64", "7-Zip 7z a -tzip -mm=Deflate64"),
        ("7z-bzip2", "7zip", "7z-bzip2", "7-Zip 7z a -tzip -mm=BZip2"),
        ("7z-lzma", "7zip", "7z-lzma", "7-Zip 7z a -tzip -mm=LZMA"),
        ("shutil-zip", "python3", "shutil", "Python shutil.make_archive(base, 'zip', root_dir=store)"),
        ("zipfile-zstd", "python3", "zipfile-zstd", "Python 3.14 zipfile with ZIP_ZSTANDARD (method 93)"),
        ("zipfile-deflated", "python3", "zipfile-deflated", "Python zipfile with ZIP_DEFLATED"),
        (
            "finder-zip",
            "python3",
            "finder",
            "macOS Finder's Compress layout: a top-level folder, __MACOSX/, ._ AppleDouble files (made with zipfile)",
        ),
    )
)

WRITERS: tuple[Probe, ...] = LIBRARY_WRITERS + HAND_MADE

READERS: tuple[Probe, ...] = (
    _reader("zarr-zipstore", "zarr", "zarr_probe.py", "zarr ZipStore", method="zipstore"),
    _reader("zarr-fsspec", "zarr", "zarr_probe.py", "zarr on zip:: (fsspec)", method="fsspec"),
    _reader("xarray-zipstore", "xarray", "xarray_probe.py", "xarray open_zarr on a ZipStore", method="zipstore"),
    _reader("xarray-fsspec", "xarray", "xarray_probe.py", "xarray open_zarr on zip::", method="fsspec"),
    _reader("fsspec-mapper", "fsspec", "fsspec_probe.py", "fsspec get_mapper(zip::), raw keys and bytes"),
    _reader("gdal-multidim", "gdal", "gdal_probe.py", "GDAL Zarr driver, /vsizip/, multidim API", api="multidim"),
    _reader(
        "gdal-classic",
        "gdal",
        "gdal_probe.py",
        "GDAL Zarr driver, /vsizip/, classic 2-D API",
        api="classic",
        needs_arrays=True,
    ),
    _reader("netcdf4-zarr-zip", "netcdf4", "netcdf4_probe.py", "NCZarr #mode=zarr,zip", mode="zarr-zip"),
    _reader(
        "netcdf4-nczarr-zip", "netcdf4", "netcdf4_probe.py", "NCZarr #mode=nczarr,zip", http=False, mode="nczarr-zip"
    ),
    _reader(
        "netcdf4-zarr-file",
        "netcdf4",
        "netcdf4_probe.py",
        "NCZarr #mode=zarr,file on the unzipped data (control)",
        http=False,
        mode="zarr-file",
    ),
    _reader("h5py", "h5py", "h5py_probe.py", "h5py File()", http=False),
    _reader("tensorstore-zip", "tensorstore", "tensorstore_probe.py", "tensorstore zip kvstore", needs_arrays=True),
    _reader(
        "zarrista-zip",
        "zarrista",
        "zarrista_probe.py",
        "zarrista (Rust zarrs) ZipStore; over HTTP on obstore's HTTPStore",
        needs_arrays=True,
    ),
    _reader(
        "ngff-zarr-ozx",
        "ngff-zarr",
        "ngff_probe.py",
        "ngff-zarr from_ngff_zarr('x.ozx')",
        needs_arrays=True,
        http=False,
        root="none",
    ),
    _reader(
        "bioio-ome-zarr",
        "bioio-ome-zarr",
        "bioio_probe.py",
        "bioio-ome-zarr Reader('x.ozx'), every resolution level",
        needs_arrays=True,
        http=False,
        root="none",
    ),
    _reader(
        "zarrnii",
        "zarrnii",
        "zarrnii_probe.py",
        "zarrnii load_ngff_image('x.ozx', level=n), every level",
        needs_arrays=True,
        http=False,
        root="none",
    ),
    _reader(
        "zarrita-zip",
        "zarrita",
        "zarrita_probe.mjs",
        "zarrita.js ZipFileStore.fromBlob (Node)",
        needs_arrays=True,
    ),
    _reader(
        "vitessce-zip",
        "vitessce-zarr-utils",
        "vitessce_probe.mjs",
        "@vitessce/zarr-utils zarrOpenRoot(url, 'x.zip'): the viewers' opener (Node), one *.zarr/ folder stripped",
        needs_arrays=True,
        access=BY_URL,
        root="finds",
    ),
    _reader(
        "zarrita-browser",
        "zarrita",
        "zarrita_browser_probe.mjs",
        "zarrita.js ZipFileStore.fromUrl in headless Chromium (fetch with Range, from another origin)",
        needs_arrays=True,
        access=IN_A_PAGE,
        channel="browser",
    ),
)

#: Timed alone, after the compatibility phases, in every environment that has zarr (and this probe's id
#: passes the environment's ``probes`` globs).
BENCHMARKS: tuple[Probe, ...] = (
    Probe(
        id="zarr-bench",
        role="benchmark",
        library="zarr",
        script="bench_probe.py",
        label="store benchmark: ZipStore, directory, MemoryStore, fsspec memory:// and a raw file",
    ),
)

#: Not a matrix probe: loads package-shipped and file datasets in the loader image.
DATASET_LOADER = "dataset_probe.py"

ALL: Mapping[str, Probe] = {p.id: p for p in WRITERS + READERS + BENCHMARKS}


def applicable(
    probes: tuple[Probe, ...], pins: Mapping[str, str | None], channel: str | None = None
) -> tuple[Probe, ...]:
    """Probes whose library the environment declares, minus those its exact pin rules out.

    ``pins`` maps each declared library to its exact pinned version, or None when not pinned (then the
    probe runs and says ``unsupported`` itself if the installed version cannot do it).
    """
    out = []
    for probe in probes:
        if probe.library not in pins or (probe.channel is not None and probe.channel != channel):
            continue
        ruled_out = any(
            pins.get(library) is not None and not SpecifierSet(spec).contains(str(pins[library]), prereleases=True)
            for library, spec in probe.requires.items()
        )
        if not ruled_out:
            out.append(probe)
    return tuple(out)
