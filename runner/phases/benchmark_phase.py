"""The store benchmark phase: every benchmark environment, one after another, one probe at a time, so the
timings run alone. The statistics are in ``benchmark.py`` and ``stats.py``; the datasets in
``dataset_loading.py``."""

from __future__ import annotations

import shutil
from typing import Any

from runner.engines.engine import Mount
from runner.engines.workdir import shared_dir
from runner.matrix.model import BenchmarkSettings
from runner.phases import dataset_loading
from runner.phases.context import RunContext
from runner.plan.planner import EnvPlan, safe_id
from runner.protocol import Task
from runner.results import benchmark
from runner.results.model import BenchmarkResult, DatasetStatus, Outcome, Status

TMPFS_SLACK = 256 << 20  # on top of twice the largest dataset: the store being written and the raw file


def bench_task(ep: EnvPlan, bench: BenchmarkSettings, result: BenchmarkResult, dataset: dict[str, Any]) -> Task:
    probe = ep.benchmarks[0]
    return Task(
        id=result.id,
        script=probe.script,
        timeout=bench.timeout,
        args={
            "role": "benchmark",
            "library": probe.library,
            "dataset": {k: v for k, v in dataset.items() if k in ("name", "generate", "file")},
            "chunks": list(dataset["chunks"]),
            "compressor": bench.compressor,
            "repeats": bench.repeats,
            "warmup": bench.warmup,
            "storage": bench.storage,
            "workdir": "/bench-disk" if bench.storage == "disk" else None,
        },
    )


def run_benchmark(ctx: RunContext) -> None:
    envs = [ep for ep in ctx.plan.environments if ep.benchmarks and ep.slug in ctx.envs]
    bench = ctx.plan.matrix.benchmark
    if not envs or bench is None:
        return
    ready = dataset_loading.prepare(ctx)
    datasets = {d.name: d for d in ctx.results.datasets}
    largest = max([int(d["nbytes"]) for d in ready.values()] or [0])
    done = {b.id for b in ctx.results.benchmarks}  # a resumed run's benchmarks stand
    envs = [ep for ep in envs if any(safe_id("b", ep.slug, name) not in done for name in bench.datasets)]
    for n, ep in enumerate(envs, 1):
        down = ctx.unavailable(ep.slug)
        results = [
            BenchmarkResult(
                id=safe_id("b", ep.slug, name),
                env=ep.slug,
                dataset=name,
                status=Status.PASS,
                version=ctx.version(ep.slug, "zarr"),
            )
            for name in bench.datasets
            if safe_id("b", ep.slug, name) not in done
        ]
        tasks = []
        for result in results:
            if down is not None:
                _decide(result, down)
            elif result.dataset not in ready:
                dataset = datasets[result.dataset]
                assert dataset.status is DatasetStatus.SKIPPED
                _decide(result, Outcome(status=Status.SKIPPED, reason=dataset.reason))
            else:
                tasks.append(bench_task(ep, bench, result, ready[result.dataset]))
        mounts = [Mount(source=str(shared_dir(dataset_loading.shelf(ctx))), target="/datasets")]
        disk = shared_dir(ctx.workdir.work / "bench-scratch" / ep.slug)
        if bench.storage == "disk":
            mounts.append(Mount(source=str(disk), target="/bench-disk", read_only=False))
        if tasks:
            ctx.progress(f"[benchmark {n}/{len(envs)}] {ep.slug}: {len(tasks)} dataset(s), one at a time ...")
            batch = ctx.run(ep.slug, "benchmark", tasks, mounts, jobs=1, tmpfs_size=2 * largest + TMPFS_SLACK)
            for result in results:
                if result.id not in batch.results:
                    continue
                probe_result = batch.results[result.id]
                verdict = probe_result.verdict()
                if verdict is not None:
                    _decide(result, verdict)
                else:
                    benchmark.fill_from_record(result, probe_result.data)
                    result.setup.update(alone=True, jobs=1)
        shutil.rmtree(disk, ignore_errors=True)
        ctx.results.benchmarks.extend(results)
        ctx.save()


def _decide(result: BenchmarkResult, outcome: Outcome) -> None:
    result.status, result.reason, result.detail = outcome.status, outcome.reason, outcome.detail
