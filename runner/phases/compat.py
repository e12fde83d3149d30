"""The compatibility phases, orchestration only: writers write (one container per environment), archives
from ``--external`` join them, every archive is checked at the ZIP level (in a container), readers read
(one container per environment, every archive). The decisions are in ``cells.py``; the container
protocol in ``container.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from runner.engines.engine import Mount
from runner.engines.workdir import shared_dir
from runner.phases import serving, zipcheck
from runner.phases.context import ContainerJob, RunContext
from runner.plan import cells, keys
from runner.plan.planner import EnvPlan, ReadTask, WriteTask, reader_modes, safe_id
from runner.probes import Access
from runner.protocol import ProbeResult
from runner.resources import sha256_file
from runner.results import external
from runner.results.model import WRITTEN, ArchiveResult, CellResult, Outcome, Status


def write_archives(ctx: RunContext) -> None:
    _rotate(ctx)
    done = {a.id for a in ctx.results.archives}  # a resumed run's archives stand
    by_env: dict[str, list[WriteTask]] = {}
    for task in ctx.plan.writes:
        if task.id not in done:
            by_env.setdefault(task.env, []).append(task)
    runnable: list[tuple[str, list[WriteTask]]] = []
    for slug, writes in by_env.items():
        down = ctx.unavailable(slug)
        if down is not None:
            for w in writes:
                _record_archive(ctx, w, down, {})
            continue
        for w in writes:
            if w.skip_reason:
                _record_archive(ctx, w, Outcome(status=Status.SKIPPED, reason=w.skip_reason), {})
        writes = [w for w in writes if not w.skip_reason and not _reuse_archive(ctx, w)]
        for w in writes:
            shared_dir((ctx.workdir.artifacts / w.archive).parent)
        if writes:  # else every archive was skipped or reused: no container to start
            runnable.append((slug, writes))
    artifacts = Mount(source=str(ctx.workdir.artifacts), target="/artifacts", read_only=False)
    jobs = []
    for n, (slug, writes) in enumerate(runnable, 1):
        label = f"[write {n}/{len(runnable)}] {slug}: {len(writes)} archive(s) ..."
        tasks = [cells.write_task(w, ctx.plan.settings) for w in writes]
        jobs.append(ContainerJob(slug=slug, phase="write", tasks=tasks, mounts=(artifacts,), label=label))
    for (_, writes), batch in zip(runnable, ctx.run_each(jobs), strict=True):
        for w in writes:
            result = batch.results[w.id]
            _record_archive(ctx, w, result.verdict() or Outcome(status=Status.PASS), result.data)
        ctx.save()


def _rotate(ctx: RunContext) -> None:
    """Tonight's slots of every archive of the run, the written ones' (but those skipped up front) and those
    from outside this machine reads, made before any archive is reused or written (``keys.ring_slots``)."""
    reuse = ctx.options.reuse
    if reuse is None or reuse.inputs is None:
        return
    archive_keys = [reuse.writer_key(ctx.image(w.env), w) for w in ctx.plan.writes if not w.skip_reason]
    for k, directory in enumerate(ctx.options.external):
        for a in (_external_archive(ext, k) for ext in external.discover(directory)):
            if ctx.plan.reads_external(a.id):
                archive_keys.append(keys.external_key(reuse.inputs, a.id, a.sha256 or ""))
    reuse.rotate(archive_keys)


def _reuse_archive(ctx: RunContext, w: WriteTask) -> bool:
    """Take the archive's earlier record instead of writing it, when its key was measured before and so
    was every cell it leads to (else it is written: some reader must read it)."""
    reuse = ctx.options.reuse
    if reuse is None:
        return False
    key = reuse.writer_key(ctx.image(w.env), w)
    archive = reuse.archive(key)
    if archive is None or archive.key != key or archive.id != w.id:
        return False
    for ep in ctx.plan.environments:
        if not ep.readers or ctx.unavailable(ep.slug) is not None:
            continue
        tasks, _ = cells.split_reads(ep, cells.readable([archive]))
        if any(reuse.cell(reuse.cell_key(ctx.image(t.env), t, archive), t.cell_id, archive.key) is None for t in tasks):
            return False
    ctx.results.archives.append(archive)
    return True


def _record_archive(ctx: RunContext, w: WriteTask, outcome: Outcome, record: Mapping[str, Any]) -> None:
    archive = cells.archive_result(w, outcome, record, ctx.version(w.env, w.probe.library))
    if ctx.options.reuse is not None and outcome.status is not Status.SKIPPED:
        archive.key = ctx.options.reuse.writer_key(ctx.image(w.env), w)
    path = ctx.workdir.artifacts / w.archive
    if archive.status is WRITTEN and path.is_file():
        archive.path = w.archive
        archive.sha256, archive.size = sha256_file(path), path.stat().st_size
    elif archive.status is WRITTEN:
        archive.status, archive.reason = Status.FAIL, "the writer reported success but left no archive"
    ctx.results.archives.append(archive)


def add_external_archives(ctx: RunContext) -> None:
    """Archives from ``--external`` (and ``--hostile``): their arrays from their own metadata (read by the
    ZIP checks), no writer's record. Directory k is mounted at /external/k in the readers."""
    done = {a.id for a in ctx.results.archives}
    for k, directory in enumerate(ctx.options.external):
        found = external.discover(directory)
        mine = [a for a in (_external_archive(ext, k) for ext in found) if ctx.plan.reads_external(a.id)]
        share = f" ({len(mine)} of them this shard's)" if len(mine) != len(found) else ""
        ctx.progress(f"external: {len(found)} archive(s) from {directory}{share}")
        ctx.results.archives.extend(_reused_external(ctx, a) for a in mine if a.id not in done)


def _reused_external(ctx: RunContext, fresh: ArchiveResult) -> ArchiveResult:
    """An archive from outside whose key (its bytes, the ZIP checks' scripts) was measured before keeps
    that record, so its ZIP checks are not run again; its path is tonight's (the --external order may
    differ)."""
    reuse = ctx.options.reuse
    if reuse is None or reuse.inputs is None:
        return fresh
    fresh.key = keys.external_key(reuse.inputs, fresh.id, fresh.sha256 or "")
    archive = reuse.archive(fresh.key)
    if archive is None or archive.id != fresh.id:
        return fresh
    archive.path = fresh.path
    return archive


def _external_archive(ext: external.ExternalArchive, k: int) -> ArchiveResult:
    return ArchiveResult(
        id=safe_id("x", ext.folder, ext.name),
        env=cells.EXTERNAL,
        probe=ext.name,
        library=ext.source or ext.folder,
        version=ext.commit[:10],
        zarr_format=None,  # from its metadata, once the ZIP checks have read it
        fixture=ext.fixture,
        status=WRITTEN,
        path=f"{cells.EXTERNAL}/{k}/{ext.relative}",
        sha256=sha256_file(ext.path),
        size=ext.path.stat().st_size,
    )


def check_archives(ctx: RunContext) -> None:
    """The ZIP-level checks of every archive, in a locked-down container: the host parses no archive."""
    archives = [a for a in ctx.results.archives if a.status is WRITTEN and a.path and a.zip_checks is None]
    if not archives:
        return
    inspector = next((ep.slug for ep in ctx.plan.environments if ctx.unavailable(ep.slug) is None), None)
    if inspector is None:
        for archive in archives:
            zipcheck.unchecked(archive, "no environment's image is available to run them in")
        return
    tasks = {archive.id: zipcheck.check_task(archive, ctx.plan.settings) for archive in archives}
    ctx.progress(f"[checks] {len(tasks)} archive(s), in {inspector}'s image ...")
    batch = ctx.run(inspector, "checks", list(tasks.values()), _archive_mounts(ctx))
    for archive in archives:
        result = batch.results[tasks[archive.id].id]
        zipcheck.apply(archive, result, from_metadata=archive.env == cells.EXTERNAL)


def _archive_mounts(ctx: RunContext) -> list[Mount]:
    """Every archive, read-only: the written ones under /artifacts, --external ones under /external."""
    mounts = [Mount(source=str(ctx.workdir.artifacts), target="/artifacts")]
    for k, directory in enumerate(ctx.options.external):
        mounts.append(Mount(source=str(directory), target=f"/{cells.EXTERNAL}/{k}"))
    return mounts


def read_archives(ctx: RunContext) -> None:
    archives = cells.readable(ctx.results.archives)
    by_id = {a.id: a for a in ctx.results.archives}
    readers = [ep for ep in ctx.plan.environments if ep.readers]
    mounts = _archive_mounts(ctx)
    access = ctx.plan.settings.access
    done = {c.id for c in ctx.results.cells}  # a resumed run's cells stand
    server = serving.server_image(ctx, access)
    planned: list[tuple[EnvPlan, list[ReadTask], list[tuple[ReadTask, str]]]] = []
    jobs: list[ContainerJob] = []
    reuse = ctx.options.reuse
    taken: dict[str, CellResult] = {}  # cell id -> the earlier measurement reused tonight
    served_modes: set[Access] = set()
    with_job: set[str] = set()  # the readers a container runs for, in the order of ``jobs``
    for n, ep in enumerate(readers, 1):
        tasks, skipped = cells.split_reads(ep, archives, access)
        tasks = [t for t in tasks if t.cell_id not in done]
        planned.append((ep, tasks, [(t, why) for t, why in skipped if t.cell_id not in done]))
        if reuse is not None and ctx.unavailable(ep.slug) is None:
            for t in tasks:
                archive = by_id[t.archive.id]
                key = reuse.cell_key(ctx.image(t.env), t, archive, server.image)
                cell = reuse.cell(key, t.cell_id, archive.key)
                reuse.count(key, cell is not None)
                if cell is not None:
                    taken[t.cell_id] = cell
        measure = [t for t in tasks if t.cell_id not in taken and (t.access == "file" or server.down is None)]
        if ctx.unavailable(ep.slug) is None and measure:
            n_taken = sum(t.cell_id in taken for t in tasks)
            reused = f", {n_taken} reused" if n_taken else ""
            label = f"[read {n}/{len(readers)}] {ep.slug}: {len(measure)} read(s){reused} ..."
            read_tasks = [cells.read_task(t, ctx.plan.settings) for t in measure]
            http = {t.access for t in measure if t.access != "file"}
            served_modes |= http
            with_job.add(ep.slug)
            jobs.append(
                ContainerJob(
                    slug=ep.slug,
                    phase="read",
                    tasks=read_tasks,
                    mounts=mounts,
                    label=label,
                    network=serving.NETWORK if http else None,
                )
            )
        elif tasks:
            ctx.progress(f"[read {n}/{len(readers)}] {ep.slug}: {len(tasks)} cell(s) reused, nothing to read")
    over_http: list[tuple[CellResult, ReadTask]] = []
    with serving.serving(ctx, server, sorted(served_modes), mounts) as served:
        if served.down is not None:
            server.down = served.down
        batches = ctx.run_each([_on_network(job, served.network) for job in jobs])
        for ep, tasks, skipped in planned:
            down = ctx.unavailable(ep.slug)
            # the container first: then every cell of this reader names the version its image reported,
            # however many containers ran at once
            ran = ep.slug in with_job
            results: dict[str, ProbeResult] = dict(next(batches).results) if ran else {}
            for task, reason in skipped:
                reader = cells.reader_side(ep.slug, task.probe, ctx.version(ep.slug, task.probe.library))
                outcome = Outcome(status=Status.SKIPPED, reason=reason)
                ctx.results.cells.append(cells.decided_cell(by_id[task.archive.id], reader, outcome, task.access))
            for task in tasks:
                if task.cell_id in taken:
                    ctx.results.cells.append(taken[task.cell_id])
                    continue
                archive = by_id[task.archive.id]
                reader = cells.reader_side(ep.slug, task.probe, ctx.version(ep.slug, task.probe.library))
                if task.access != "file" and server.down is not None:
                    ctx.results.cells.append(cells.decided_cell(archive, reader, down or server.down, task.access))
                    continue
                result = results.get(task.id, ProbeResult(run=None, record=None))
                verdict = down or cells.corrupt_read(
                    result.read_verdict(cells.expected_of(task, archive)), archive, result
                )
                cell = cells.read_cell(task, archive, reader, verdict, result)
                if reuse is not None and down is None:
                    cell.key = reuse.cell_key(ctx.image(task.env), task, archive, server.image)
                ctx.results.cells.append(cell)
                if task.access != "file" and down is None:
                    over_http.append((cell, task))
            for archive in ctx.results.archives:
                if archive.status is not WRITTEN:
                    for probe, mode in reader_modes(ep, access):
                        reader = cells.reader_side(ep.slug, probe, ctx.version(ep.slug, probe.library))
                        cell = cells.decided_cell(archive, reader, cells.unwritten_outcome(archive, down), mode)
                        if cell.id not in done:
                            ctx.results.cells.append(cell)
            ctx.save()
    for cell, task in over_http:
        cell.http = cells.http_cost(task, served.costs, served.software, by_id[task.archive.id].size)
    cells.judge_by_consensus(ctx.results.cells)


def _on_network(job: ContainerJob, network: str | None) -> ContainerJob:
    """A reader's container joins the servers' network when it has reads over HTTP and the servers run;
    when they do not, its HTTP tasks are left out (their cells say why)."""
    if job.network is None:
        return job
    if network is None:
        return replace(job, network=None, tasks=[t for t in job.tasks if t.args.get("access") == "file"])
    return replace(job, network=network)
