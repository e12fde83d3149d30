"""The store benchmark: one array written and read through every store, in rounds, against a raw file.

Stores: zarr's ``ZipStore``; a directory store (zarr 2 ``DirectoryStore``, zarr 3 ``LocalStore``);
zarr's ``MemoryStore``; an fsspec in-memory store (``memory://``); and the raw baseline, the same bytes
as one plain file. Each timed operation runs in a fresh process forked from this one before zarr has
done anything (no event loop, no open store): a write process opens the store, creates the array,
assigns it and closes the store; a read process opens the store, reads the whole array and closes it.
In-memory stores cannot outlive their process, so they are read in the writing process, after the
store was closed. SHA-256 of what was read is checked against the source after the clock stops.

Rounds interleave the stores (rotating their order), so drift on a shared machine hits all alike and
each store can be compared with the raw file of its own round. The first ``warmup`` rounds are dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import _common as c

#: Imported once per container by the harness's fork server; each task is a child forked after it.
PRELOAD = ("numpy", "zarr", "numcodecs", "fsspec")

STORES = ("raw", "zipstore", "directory", "memory", "fsspec-memory")
IN_MEMORY = ("memory", "fsspec-memory")


def major(zarr: Any) -> int:
    return int(zarr.__version__.split(".")[0])


# --------------------------------------------------------------------------------- fresh processes


def in_child(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` in a forked process; its dict result, or how it failed (error, unsupported, signal)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the parent's code
        os.close(read_end)
        try:
            result = {"ok": True, **fn()}
        except c.Unsupported as exc:
            result = {"ok": False, "status": "unsupported", "message": str(exc)}
        except BaseException as exc:
            result = {"ok": False, "status": "error", "message": f"{type(exc).__name__}: {c.first_line_words(exc)}"}
        with os.fdopen(write_end, "wb") as fh:
            fh.write(json.dumps(result, default=str).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"ok": False, "status": "crash", "message": f"killed by {signal.Signals(os.WTERMSIG(status)).name}"}
    if not data:
        return {"ok": False, "status": "crash", "message": f"exited {os.WEXITSTATUS(status)} without a result"}
    outcome: dict[str, Any] = json.loads(data)
    return outcome


# ----------------------------------------------------------------------------------------- stores


class Bench:
    """How each store is opened, written and read with the zarr API of this environment."""

    def __init__(self, zarr: Any, values: Any, chunks: list[int], compressor: str) -> None:
        self.zarr = zarr
        self.v = major(zarr)
        self.fmt = 2 if self.v == 2 else 3
        self.values = values
        self.chunks = chunks
        self.codec = c.zarr_codec(compressor, self.fmt)

    # -- stores

    def store(self, kind: str, target: str, write: bool, memory: Any = None) -> Any:
        zarr = self.zarr
        if kind == "zipstore":
            return zarr.storage.ZipStore(target, mode="w" if write else "r")
        if kind == "directory":
            if self.v == 2:
                return zarr.storage.DirectoryStore(target)
            return zarr.storage.LocalStore(target, read_only=not write)
        if kind == "memory":
            if self.v == 2:
                return zarr.storage.MemoryStore(root=memory) if memory is not None else zarr.storage.MemoryStore()
            return zarr.storage.MemoryStore(store_dict=memory, read_only=not write)
        if kind == "fsspec-memory":
            try:
                import fsspec
            except ImportError as exc:
                raise c.Unsupported(f"fsspec is not installed: {exc}") from exc
            url = "memory://" + target.strip("/")
            if self.v == 2:
                return fsspec.get_mapper(url)
            return zarr.storage.FsspecStore.from_url(url, read_only=not write)
        raise ValueError(f"unknown store {kind!r}")

    @staticmethod
    def close(store: Any) -> None:
        if hasattr(store, "close"):
            store.close()

    def write_array(self, store: Any) -> None:
        values = self.values
        # the same array either way; zarr 3 renamed create -> create_array and compressor -> compressors
        create = self.zarr.create if self.v == 2 else self.zarr.create_array
        codec = {"compressor": self.codec} if self.v == 2 else {"compressors": self.codec}
        arr = create(
            store=store,
            shape=values.shape,
            chunks=self.chunks,
            dtype=values.dtype,
            fill_value=0,
            overwrite=True,
            **codec,
        )
        arr[...] = values

    def read_array(self, store: Any) -> Any:
        return self.zarr.open_array(store=store, mode="r")[...]

    # -- one sample

    def write_sample(self, kind: str, target: str) -> dict[str, Any]:
        if kind == "raw":
            started = time.perf_counter()
            with open(target, "wb") as fh:
                fh.write(self.values.data)
            return {"write_s": time.perf_counter() - started, "stored_bytes": os.path.getsize(target)}
        memory: dict[str, Any] | None = {} if kind == "memory" else None
        started = time.perf_counter()
        store = self.store(kind, target, write=True, memory=memory)
        self.write_array(store)
        self.close(store)
        seconds = time.perf_counter() - started
        if kind == "memory" and self.v == 2:
            memory = store.root  # zarr 2 replaces an empty root mapping with one of its own
        out = {"write_s": seconds, "stored_bytes": stored_bytes(kind, target, memory)}
        if kind in IN_MEMORY:  # the only process that can see it: read here, from a fresh store object
            out.update(self.read_sample(kind, target, memory=memory if kind == "memory" else None))
        return out

    def read_sample(self, kind: str, target: str, memory: Any = None) -> dict[str, Any]:
        import numpy as np

        started = time.perf_counter()
        if kind == "raw":
            values = np.fromfile(target, dtype=self.values.dtype).reshape(self.values.shape)
        else:
            store = self.store(kind, target, write=False, memory=memory)
            values = self.read_array(store)
            self.close(store)
        seconds = time.perf_counter() - started
        return {"read_s": seconds, "sha256": c.canonical_sha256(values)}  # hashed after the clock stopped


def stored_bytes(kind: str, target: str, memory: Any) -> int | None:
    if kind == "zipstore":
        return os.path.getsize(target)
    if kind == "directory":
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(target) for f in files)
    if kind == "memory":
        return mapping_bytes(memory if memory is not None else {})
    if kind == "fsspec-memory":
        import fsspec

        fs = fsspec.filesystem("memory")
        return sum(int(info.get("size") or 0) for info in fs.find(target.strip("/"), detail=True).values())
    return None


def mapping_bytes(mapping: dict[str, Any]) -> int:
    """Bytes held by an in-memory store (zarr 2 nests dicts per folder; zarr 3 holds Buffer objects)."""
    total = 0
    for value in mapping.values():
        if isinstance(value, dict):
            total += mapping_bytes(value)
        elif hasattr(value, "to_bytes"):
            total += len(value.to_bytes())
        else:
            total += len(value)
    return total


def discard(kind: str, target: str) -> None:
    if kind in ("raw", "zipstore") and os.path.exists(target):
        os.remove(target)
    elif kind == "directory":
        shutil.rmtree(target, ignore_errors=True)


# ---------------------------------------------------------------------------------- what it ran on


def mount_of(path: str) -> dict[str, Any]:
    """The mount a path lives on, from /proc/self/mountinfo: point, file system type, bind-mount root."""
    best: dict[str, Any] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                point = fields[4]
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(
                    best.get("mount_point", "")
                ):
                    best = {"mount_point": point, "fs_type": right.split()[0], "root": fields[3]}
    except OSError:
        pass
    if best:
        best["bind_mount"] = best["fs_type"] != "tmpfs" and best["root"] != "/"
    return best


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def environment(workdir: str, storage: str) -> dict[str, Any]:
    import numpy

    return {
        "storage": storage,
        "workdir": workdir,
        "mount": mount_of(workdir),
        "page_cache": "warm: every read follows its write on the same machine and caches are not dropped "
        "(an unprivileged container cannot); on tmpfs the data is in memory either way",
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_max": read_text("/sys/fs/cgroup/cpu.max"),
        "memory_max": read_text("/sys/fs/cgroup/memory.max"),
        "loadavg_before": read_text("/proc/loadavg"),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
    }


# ------------------------------------------------------------------------------------------ rounds


def load_values(dataset: dict[str, Any]) -> Any:
    import numpy as np

    if "generate" in dataset:
        return np.ascontiguousarray(c.make_values(dataset["generate"]))
    return np.ascontiguousarray(np.load(dataset["file"], allow_pickle=False))


def run(args: dict[str, Any]) -> dict[str, Any]:
    values = load_values(args["dataset"])
    import zarr  # imported, not used, before forking: children pay no import time and share no state

    expected = c.canonical_sha256(values)
    chunks = [max(1, min(int(a), int(b))) for a, b in zip(args["chunks"], values.shape, strict=True)]
    bench = Bench(zarr, values, chunks, args.get("compressor", "none"))
    workdir = os.path.join(args.get("workdir") or args["scratch"], "bench")
    os.makedirs(workdir, exist_ok=True)
    setup = environment(workdir, args.get("storage", "tmpfs"))
    stores = [s for s in args.get("stores", STORES) if s in STORES]
    warmup, repeats = int(args.get("warmup", 1)), int(args.get("repeats", 7))
    found: dict[str, dict[str, Any]] = {s: {"status": "ok", "write_s": [], "read_s": [], "warmup": []} for s in stores}
    started = time.perf_counter()
    for round_no in range(warmup + repeats):
        shift = round_no % len(stores)
        for kind in stores[shift:] + stores[:shift]:
            entry = found[kind]
            if entry["status"] != "ok":
                continue
            target = os.path.join(workdir, f"{kind}-{round_no}" + (".zip" if kind == "zipstore" else ""))
            sample = in_child(lambda: bench.write_sample(kind, target))  # noqa: B023 (called at once)
            if sample.get("ok") and kind not in IN_MEMORY:
                read = in_child(lambda: bench.read_sample(kind, target))  # noqa: B023
                sample = {**sample, **read, "ok": read.get("ok")} if read.get("ok") else read
            discard(kind, target)
            if not sample.get("ok"):
                entry.update(status=sample["status"], message=sample["message"], failed_round=round_no)
                continue
            if sample["sha256"] != expected:
                entry.update(
                    status="mismatch",
                    message=f"read back SHA-256 {sample['sha256'][:16]}…, wrote {expected[:16]}…",
                    failed_round=round_no,
                )
                continue
            entry["stored_bytes"] = sample.get("stored_bytes")
            if round_no < warmup:
                entry["warmup"].append({"write_s": sample["write_s"], "read_s": sample["read_s"]})
            else:
                entry["write_s"].append(sample["write_s"])
                entry["read_s"].append(sample["read_s"])
    setup["loadavg_after"] = read_text("/proc/loadavg")
    setup["seconds"] = round(time.perf_counter() - started, 3)
    try:
        import fsspec

        setup["fsspec"] = fsspec.__version__
    except ImportError:
        setup["fsspec"] = None
    return {
        "library": "zarr",
        "version": zarr.__version__,
        "zarr_format": bench.fmt,
        "dataset": args["dataset"]["name"],
        "shape": list(values.shape),
        "dtype": values.dtype.str,
        "nbytes": int(values.nbytes),
        "chunks": chunks,
        "compressor": args.get("compressor", "none"),
        "sha256": expected,
        "warmup": warmup,
        "repeats": repeats,
        "setup": setup,
        "stores": found,
    }


if __name__ == "__main__":
    c.main(run)
