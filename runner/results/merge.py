"""Pure: the results of the shards of one run (``--shard K/N``) become one run, or are refused with the
file and the reason (different matrix, probes, runner, split or versions; a cell twice)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from runner.errors import MergeError
from runner.results.model import DatasetResult, EnvironmentResult, Results, RunInfo, Shard


def merge(parts: Sequence[tuple[str, Results]]) -> Results:
    """One run from its shards (``(file name, results)`` each): refused unless they are the shards 1..N
    of one matrix, probe set and set of resolved versions."""
    if not parts:
        raise MergeError("merge: no results files given")
    first_name, first = parts[0]
    shards: dict[int, str] = {}
    for name, part in parts:
        if not part.run.shard:
            raise MergeError(f"{name}: run {part.run.id} was not run with --shard: nothing to merge")
        shard = Shard.parse(part.run.shard)
        if shard.count != len(parts):
            raise MergeError(f"{name}: shard {shard} of {shard.count}, but {len(parts)} file(s) were given")
        if shard.index in shards:
            raise MergeError(f"{name}: shard {shard} is also {shards[shard.index]}")
        shards[shard.index] = name
        for what, mine, theirs in (
            ("matrix", part.run.matrix_sha256, first.run.matrix_sha256),
            ("probe scripts", part.run.probes_sha256, first.run.probes_sha256),
            ("runner version", part.run.runner_version, first.run.runner_version),
        ):
            if mine != theirs:
                raise MergeError(f"{name}: another {what} than {first_name} ({mine[:12]} != {theirs[:12]})")
        if part.run.split != first.run.split:
            raise MergeError(
                f"{name}: the shards split the writers differently than {first_name} (one balanced by a "
                "history the other did not have?): run them again with the same history"
            )
        if not part.run.finished:
            raise MergeError(f"{name}: run {part.run.id} did not finish (complete it with --resume first)")
    _same_versions(parts)
    owner: dict[str, str] = {}
    for name, part in parts:
        for cell in part.cells:
            if owner.setdefault(cell.id, name) != name:
                raise MergeError(f"{name}: cell {cell.id} is also in {owner[cell.id]}: the shards overlap")
    ordered = [parts[[n for n, _ in parts].index(shards[k])][1] for k in sorted(shards)]
    environments: dict[str, EnvironmentResult] = {}
    for part in ordered:
        for env in part.environments:
            environments.setdefault(env.slug, env)
    datasets: dict[str, DatasetResult] = {}
    for part in ordered:
        for d in part.datasets:
            datasets.setdefault(d.name, d)
    run = replace(
        first.run,
        id=f"{ordered[0].run.id}-merged",
        started=min(p.run.started for p in ordered),
        finished=max(p.run.finished for p in ordered),
        seconds=max(p.run.seconds for p in ordered),
        shard="",
        split={},
        shards=[_shard_info(p.run) for p in ordered],
        resumed=sorted({r for p in ordered for r in p.run.resumed}),
    )
    return Results(
        run=run,
        environments=[environments[slug] for slug in _env_order(ordered)],
        archives=sorted((a for p in ordered for a in p.archives), key=lambda a: a.id),
        cells=sorted((c for p in ordered for c in p.cells), key=lambda c: c.id),
        datasets=list(datasets.values()),
        benchmarks=sorted((b for p in ordered for b in p.benchmarks), key=lambda b: b.id),
    )


def _env_order(parts: Sequence[Results]) -> list[str]:
    return list(dict.fromkeys(e.slug for p in parts for e in p.environments))


def _shard_info(run: RunInfo) -> dict[str, Any]:
    return {"shard": run.shard, "id": run.id, "seconds": run.seconds, "host": run.host, "engine": run.engine}


def _same_versions(parts: Sequence[tuple[str, Results]]) -> None:
    """Shards that resolved ``latest`` differently (a release between them) are not one run."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for name, part in parts:
        for env in part.environments:
            for r in env.resolved:
                key = (env.slug, r.package)
                version = str(r.version)
                if key in seen and seen[key][0] != version:
                    raise MergeError(
                        f"{name}: {env.slug} has {key[1]} {version}, but {seen[key][1]} has {seen[key][0]}: "
                        "the shards resolved different versions (run them again)"
                    )
                seen.setdefault(key, (version, name))
