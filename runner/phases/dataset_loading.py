"""The benchmark's datasets, ready as probe arguments: synthetic ones described, real ones loaded once.

Loaded datasets are saved once as ``.npy`` in the cache (``~/.cache/zipstore-matrix/datasets``), named
by a hash of the loader image and the source file, and reused by later runs. Loading runs in the
loader image, through the same container protocol as every probe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import probes
from runner.engines.engine import Mount
from runner.engines.images import image_tag
from runner.engines.workdir import shared_dir
from runner.matrix import datasets
from runner.phases.context import RunContext
from runner.plan.planner import safe_id
from runner.protocol import Task, load_json
from runner.results.model import DatasetResult, DatasetStatus, EnvStatus


def shelf(ctx: RunContext) -> Path:
    """Loaded datasets as .npy, shared by every run that uses the same cache (named by content)."""
    return ctx.options.cache / "datasets"


@dataclass(frozen=True, kw_only=True)
class Pending:
    result: DatasetResult
    npy: Path
    args: dict[str, Any]


def prepare(ctx: RunContext) -> dict[str, dict[str, Any]]:
    """Every configured dataset as probe arguments, by name; the rest recorded as unavailable, with why."""
    bench = ctx.plan.matrix.benchmark
    assert bench is not None
    known = datasets.catalog(bench.size)
    store = shared_dir(shelf(ctx))
    loader_tag = image_tag(bench.loader)
    ready: dict[str, dict[str, Any]] = {}
    pending: list[Pending] = []
    source_mounts: list[Mount] = []
    for name in bench.datasets:
        ds = known[name]
        result = DatasetResult(
            name=name, kind=ds.kind, description=ds.description, status=DatasetStatus.OK, source=ds.source
        )
        ctx.results.datasets.append(result)
        if ds.kind == "synthetic":
            result.shape, result.dtype, result.nbytes = list(ds.spec["shape"]), ds.spec["dtype"], ds.nbytes or 0
            ready[name] = {"name": name, "generate": dict(ds.spec), "chunks": ds.chunks, "nbytes": result.nbytes}
            continue
        identity: list[Any] = [loader_tag, name]
        args: dict[str, Any] = {"dataset": name}
        if ds.kind == "file":
            configured = Path(bench.mnist) if bench.mnist else None
            path, how = datasets.locate_mnist(configured, ctx.options.cache, download=bench.download)
            if path is None:
                where = f" ({bench.mnist_source})" if configured is not None and bench.mnist_source else ""
                result.status, result.reason = DatasetStatus.SKIPPED, f"dataset unavailable: {how}{where}"
                continue
            result.source = how
            stat = path.stat()
            identity += [str(path), stat.st_size, stat.st_mtime_ns]
            target = f"/source/{len(source_mounts)}/{path.name}"
            source_mounts.append(Mount(source=str(path), target=target))
            args["source"] = target
        npy = store / f"{name}-{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]}.npy"
        args["output"] = f"/datasets/{npy.name}"
        meta = load_json(npy.with_suffix(".json"))
        if npy.is_file() and meta is not None:
            ready[name] = _loaded(result, npy, meta, ds)
        else:
            pending.append(Pending(result=result, npy=npy, args=args))
    if pending:
        _load(ctx, loader_tag, pending, source_mounts, ready, known)
    return ready


def _loaded(result: DatasetResult, npy: Path, meta: dict[str, Any], ds: datasets.Dataset) -> dict[str, Any]:
    array = meta.get("array", {})
    result.shape, result.dtype = list(array.get("shape", [])), str(array.get("dtype", ""))
    result.nbytes, result.sha256 = int(meta.get("nbytes") or 0), str(array.get("sha256", ""))
    result.source = f"{meta.get('loader')} ({meta.get('version')})"
    return {
        "name": result.name,
        "file": f"/datasets/{npy.name}",
        "chunks": datasets.chunks_for(ds, result.shape),
        "nbytes": result.nbytes,
    }


def _load(
    ctx: RunContext,
    tag: str,
    pending: list[Pending],
    source_mounts: list[Mount],
    ready: dict[str, dict[str, Any]],
    known: dict[str, datasets.Dataset],
) -> None:
    bench = ctx.plan.matrix.benchmark
    assert bench is not None
    loader = ctx.environment(bench.loader, tag, "datasets")
    if loader.status is not EnvStatus.OK:
        for p in pending:
            p.result.status = DatasetStatus.SKIPPED
            p.result.reason = f"dataset unavailable: the loader image did not install: {loader.reason}"
        return
    ctx.progress(f"[datasets] loading {', '.join(p.result.name for p in pending)} ...")
    tasks = [
        Task(
            id=safe_id("d", p.result.name),
            script=probes.DATASET_LOADER,
            timeout=ctx.plan.settings.probe_timeout,
            args={"role": "loader", "library": "datasets", **p.args},
        )
        for p in pending
    ]
    out = Mount(source=str(shelf(ctx)), target="/datasets", read_only=False)
    batch = ctx.run(loader.slug, "datasets", tasks, (out, *source_mounts))
    for p, task in zip(pending, tasks, strict=True):
        result = batch.results[task.id]
        verdict = result.verdict()
        if verdict is None and result.record is not None and p.npy.is_file():
            p.npy.with_suffix(".json").write_text(json.dumps(result.record, indent=1), encoding="utf-8")
            ready[p.result.name] = _loaded(p.result, p.npy, dict(result.record), known[p.result.name])
        else:
            why = verdict.reason if verdict is not None else "the loader reported success but saved nothing"
            p.result.status, p.result.reason = DatasetStatus.SKIPPED, f"dataset unavailable: the loader failed: {why}"
