"""The zips people make by hand: a directory store written by zarr, then zipped by a tool, as users do.

Each ``tool`` is one way people make a zip (the writer probe's id names it):

* ``zip-r``: Info-ZIP ``zip -r data.zip data.zarr`` from the store's parent (a top-level ``data.zarr/`` folder,
  directory entries, deflate); ``zip-r0``: ``zip -r -0 ../data.zip .`` from inside the store (stored).
* ``7z``: 7-Zip ``7z a -tzip`` from inside the store, with its default zip method (Deflate) or ``-mm=Deflate64``,
  ``-mm=BZip2``, ``-mm=LZMA``.
* ``shutil``: Python's ``shutil.make_archive(base, "zip", root_dir=store)`` (deflate, directory entries).
* ``zipfile-zstd``, ``zipfile-deflated``: Python's ``zipfile`` from the store's root with ``ZIP_ZSTANDARD``
  (method 93, Python 3.14+) or ``ZIP_DEFLATED``.
* ``finder``: the layout macOS Finder's "Compress" makes (a top-level folder with directory entries, deflate, and
  ``__MACOSX/`` holding an AppleDouble ``._NAME`` beside every file), built here with ``zipfile``: no Mac here.

Where the tool puts the store in a folder (``zip-r``, ``finder``), the record's ``root`` names it: readers are
given that path inside the archive, the way a user would have to.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarr", "numcodecs")

STORE = "data.zarr"  # the store's folder name, as a user would call it
#: 7-Zip's -mm value per tool (its default zip method is Deflate)
SEVEN_METHODS = {"7z": None, "7z-deflate64": "Deflate64", "7z-bzip2": "BZip2", "7z-lzma": "LZMA"}
#: tools that put the store in a top-level folder
IN_A_FOLDER = ("zip-r", "finder")
#: an AppleDouble file (magic, version 2, filler, no entries): what Finder stores as __MACOSX/…/._NAME when a
#: file has no extended attributes worth keeping; real ones also carry Finder info and xattrs
APPLE_DOUBLE = struct.pack(">II16sH", 0x00051607, 0x00020000, b"Mac OS X        ", 0)


def seven_zip() -> str:
    """7-Zip's command: ``7z`` (Debian trixie and later), or ``7zz`` (bookworm's 7zip package has only that)."""
    found = shutil.which("7z") or shutil.which("7zz")
    if found is None:
        raise c.Unsupported("7-Zip is not installed (Debian: apt-get install 7zip)")
    return found


def run(command: list[str], cwd: str) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}"
        )
    return done.stdout


def tool_version(tool: str) -> str:
    """The zip maker's own version: Info-ZIP's, 7-Zip's, or this Python's (its zipfile and shutil)."""
    if tool.startswith("zip-"):
        found = re.search(r"This is Zip (\S+)", run(["zip", "-v"], "/"))
        return found[1] if found else "?"
    if tool.startswith("7z"):
        found = re.search(r"7-Zip (?:\(z\) )?(?:\[\d+\] )?(\d[\w.]*)", run([seven_zip(), "i"], "/"))
        return found[1] if found else "?"
    return sys.version.split()[0]


def make(tool: str, parent: str, archive: str) -> None:
    """Zip ``parent/data.zarr`` into ``archive`` the way ``tool`` does."""
    store = os.path.join(parent, STORE)
    if tool == "zip-r":
        run(["zip", "-r", "-q", archive, STORE], parent)
    elif tool == "zip-r0":
        run(["zip", "-r", "-0", "-q", archive, "."], store)
    elif tool in SEVEN_METHODS:
        method = SEVEN_METHODS[tool]
        run([seven_zip(), "a", "-tzip", "-bd", *([f"-mm={method}"] if method else []), archive, "."], store)
    elif tool == "shutil":
        made = shutil.make_archive(archive.removesuffix(".zip"), "zip", root_dir=store)
        if made != archive:
            os.replace(made, archive)
    elif tool in ("zipfile-zstd", "zipfile-deflated"):
        compression = getattr(zipfile, "ZIP_ZSTANDARD", None) if tool == "zipfile-zstd" else zipfile.ZIP_DEFLATED
        if compression is None:
            raise c.Unsupported(f"Python {sys.version.split()[0]}'s zipfile has no ZIP_ZSTANDARD (Python 3.14+)")
        with zipfile.ZipFile(archive, "w", compression=int(compression)) as zf:
            for path in walk(store):
                zf.write(os.path.join(store, path), path)
    elif tool == "finder":
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            folders = {STORE + "/"} | {STORE + "/" + p.rsplit("/", 1)[0] + "/" for p in walk(store) if "/" in p}
            for folder in sorted(folders):
                zf.writestr(folder, b"")
            for path in walk(store):
                zf.write(os.path.join(store, path), f"{STORE}/{path}")
            zf.writestr("__MACOSX/", b"")
            for path in walk(store):
                head, _, name = f"{STORE}/{path}".rpartition("/")
                zf.writestr(f"__MACOSX/{head}/._{name}", APPLE_DOUBLE)
    else:
        raise ValueError(f"unknown tool {tool!r}")


def walk(directory: str) -> list[str]:
    """The files under ``directory``, relative and sorted, as a tool walking it finds them."""
    out = []
    for folder, subfolders, files in os.walk(directory):
        subfolders.sort()
        out += [os.path.relpath(os.path.join(folder, f), directory).replace(os.sep, "/") for f in sorted(files)]
    return out


def order(archive: str) -> list[str]:
    """Said when the tool did not add the files by name: Info-ZIP's ``zip -r`` takes them as the file system
    lists the folder, so two runs lay the same entries out otherwise (and a reader over HTTP, whose requests
    follow the layout, asks for other ranges)."""
    with zipfile.ZipFile(archive) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if names in (sorted(names), sorted(names, key=walk_order)):
        return []
    return ["its files are not in name order: the tool added them as the file system listed the folder"]


def walk_order(name: str) -> tuple[tuple[int, str], ...]:
    """Where a sorted walk (files, then subfolders, each by name) puts ``name``."""
    *folders, file = name.split("/")
    return (*((1, f) for f in folders), (0, file))


def write(args: dict[str, Any]) -> dict[str, Any]:
    try:
        import zarr
        import zarr_probe
    except ImportError as exc:
        raise c.Unsupported(f"a hand-made zip needs zarr to write the store it zips: {exc}") from exc
    tool, fmt, fixture, archive = args["tool"], args["zarr_format"], args["fixture"], args["archive"]
    if zarr_probe.major(zarr) == 2 and fmt != 2:
        raise c.Unsupported(f"zarr {zarr.__version__} writes Zarr format 2 only")
    for spec in fixture["arrays"]:
        if spec.get("shards") and fmt != 3:
            raise c.Unsupported("the sharding codec exists in Zarr format 3 only")
    expected = c.expected_record(fixture)
    parent = os.path.join(args["scratch"], "made")
    os.makedirs(parent)
    store = zarr_probe.directory_store(zarr, os.path.join(parent, STORE))
    try:
        zarr_probe.fill(zarr, store, fixture, fmt)
    finally:
        if hasattr(store, "close"):
            store.close()
    _, seconds = c.timed(lambda: make(tool, parent, os.path.abspath(archive)))
    if tool in IN_A_FOLDER:
        expected["root"] = STORE
    return {
        "library": args["library"],
        "version": tool_version(tool),
        "zarr_format": fmt,
        "method": tool,
        "expected": expected,
        "observations": [f"the store written by zarr {zarr.__version__}, then zipped ({tool})", *order(archive)],
        "timings": {"write_s": seconds},
    }


if __name__ == "__main__":
    c.main(write)
