"""Pure planning: matrix -> selected environments, their images, and the probe tasks to run.

Writes are planned up front (writer probe × fixture, per environment). Reads are planned once the
archives exist (every reader probe × every archive written), by :func:`read_tasks`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from runner import probes
from runner.engines.images import image_tag
from runner.errors import NothingSelectedError
from runner.matrix.fixtures import Fixture, select
from runner.matrix.model import EnvironmentSpec, Matrix, Settings
from runner.plan.split import assign, of_external
from runner.probes import Access, Probe
from runner.results.history import CELL_SECONDS
from runner.results.model import WHOLE, Shard
from runner.versions import resolve


@dataclass(frozen=True, kw_only=True)
class EnvPlan:
    env: EnvironmentSpec
    tag: str
    writers: tuple[Probe, ...]
    readers: tuple[Probe, ...]
    benchmarks: tuple[Probe, ...] = ()

    @property
    def slug(self) -> str:
        return self.env.slug


@dataclass(frozen=True, kw_only=True)
class WriteTask:
    env: str
    probe: Probe
    fixture: Fixture

    @property
    def id(self) -> str:
        return safe_id("w", self.env, self.probe.id, self.fixture.name)

    @property
    def skip_reason(self) -> str | None:
        """Why this writer cannot express this fixture, known before anything runs (fixture ``needs``)."""
        needs = self.fixture.spec.get("needs", {})
        wanted = needs.get("zarr_format")
        if wanted is not None and self.probe.options.get("zarr_format") != wanted:
            return f"the fixture needs Zarr format {wanted} ({needs.get('why', 'format feature')})"
        if needs.get("ome") and not self.probe.options.get("ome"):
            return f"the fixture is {needs.get('why', 'OME-Zarr')}: OME-Zarr writers only"
        if self.probe.options.get("ome") and not needs.get("ome"):
            return f"{self.probe.library} writes OME-Zarr images; this fixture is not one"
        return None

    @property
    def archive(self) -> str:
        """Path of the archive relative to the artifacts directory."""
        return f"{self.env}/{self.probe.id}/{self.fixture.name}.zip"


@dataclass(frozen=True, kw_only=True)
class Archive:
    """An archive that exists (written in this run, or brought from outside) and can be read."""

    id: str
    path: str  # relative to the artifacts directory
    fixture: str
    arrays: tuple[str, ...]
    zarr_format: int | None
    writer_env: str
    writer_probe: str
    shapes: Mapping[str, list[int]] = field(default_factory=dict)
    #: per array, the regions a reader reads over HTTP instead of the whole (a fixture too large to read whole
    #: there), as the writer recorded them with their values; empty: read whole
    part: Mapping[str, list[list[list[int]]]] = field(default_factory=dict)
    #: timed reads per cell, when the fixture asks for fewer than the run's read_repeats
    repeats: int | None = None
    #: the folder inside the archive that holds the store (a zip made from the store's parent), "" for none
    root: str = ""


@dataclass(frozen=True, kw_only=True)
class ReadTask:
    env: str
    probe: Probe
    archive: Archive
    access: Access = "file"

    @property
    def id(self) -> str:
        return safe_id("r", self.probe.id, self.archive.id, *access_part(self.access))

    @property
    def part(self) -> Mapping[str, list[list[list[int]]]]:
        """The regions this read covers instead of whole arrays: over HTTP, for a fixture that says so."""
        return self.archive.part if self.access != "file" else {}

    @property
    def cell_id(self) -> str:
        return cell_id(
            self.archive.writer_env,
            self.archive.writer_probe,
            self.env,
            self.probe.id,
            self.archive.fixture,
            self.access,
        )


@dataclass(frozen=True, kw_only=True)
class Plan:
    matrix: Matrix
    settings: Settings
    environments: tuple[EnvPlan, ...]
    fixtures: tuple[Fixture, ...]
    writes: tuple[WriteTask, ...]
    #: this machine's share (``--shard``): its writers' archives and its external archives, read by all
    shard: Shard = WHOLE
    #: every writer environment's shard: the same on every machine, or the shards do not merge
    split: Mapping[str, int] = field(default_factory=dict)

    def reads_external(self, archive_id: str) -> bool:
        return self.shard.count == 1 or of_external(archive_id, self.shard.count) == self.shard.index

    def env(self, slug: str) -> EnvPlan:
        return next(e for e in self.environments if e.slug == slug)

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.env.base for e in self.environments))


def safe_id(*parts: str) -> str:
    return "--".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)


def access_part(access: Access) -> tuple[str, ...]:
    """What an access mode adds to an id: nothing for a local file (ids from before the axis stand)."""
    return () if access == "file" else (access,)


def cell_id(
    writer_env: str, writer_probe: str, reader_env: str, reader_probe: str, fixture: str, access: Access = "file"
) -> str:
    return safe_id(f"{writer_env}.{writer_probe}", f"{reader_env}.{reader_probe}", fixture, *access_part(access))


def _chosen(candidates: tuple[Probe, ...], globs: tuple[str, ...]) -> tuple[Probe, ...]:
    if not globs:
        return candidates
    return tuple(p for p in candidates if any(fnmatch.fnmatch(p.id, g) for g in globs))


def make_plan(
    matrix: Matrix, only: Sequence[str] = (), shard: Shard = WHOLE, costs: Mapping[str, float] | None = None
) -> Plan:
    """The plan; with a ``shard``, only its share of the writes and benchmarks (``costs``: the expected
    seconds of each writer environment's cells, from the history; cell counts when None)."""
    plan = _whole_plan(matrix, only)
    return plan if shard.count == 1 else _share(plan, shard, costs or {})


def _share(plan: Plan, shard: Shard, costs: Mapping[str, float]) -> Plan:
    readers = sum(len(ep.readers) for ep in plan.environments)
    writes: dict[str, int] = {}
    for w in plan.writes:
        writes[w.env] = writes.get(w.env, 0) + 1
    expected = {slug: costs.get(slug, n * readers * CELL_SECONDS) for slug, n in writes.items()}
    split = assign(expected, shard.count)
    mine = {slug for slug, k in split.items() if k == shard.index}
    benched = assign({ep.slug: 1.0 for ep in plan.environments if ep.benchmarks}, shard.count)
    environments = tuple(
        ep if benched.get(ep.slug) == shard.index else replace(ep, benchmarks=()) for ep in plan.environments
    )
    writes_mine = tuple(w for w in plan.writes if w.env in mine)
    return replace(plan, environments=environments, writes=writes_mine, shard=shard, split=split)


def _whole_plan(matrix: Matrix, only: Sequence[str]) -> Plan:
    selected = [e for e in matrix.environments if not only or any(fnmatch.fnmatch(e.slug, g) for g in only)]
    if not selected:
        known = ", ".join(e.slug for e in matrix.environments)
        raise NothingSelectedError(
            f"--only {' '.join(only)} matches no environment of {matrix.path}. Known slugs: {known}"
        )
    fixtures = select(matrix.fixtures, matrix.settings.scale)
    env_plans = tuple(
        EnvPlan(
            env=env,
            tag=image_tag(env),
            writers=_chosen(probes.applicable(probes.WRITERS, env.pins, env.channel), env.probes),
            readers=_chosen(probes.applicable(probes.READERS, env.pins, env.channel), env.probes),
            benchmarks=_chosen(probes.applicable(probes.BENCHMARKS, env.pins, env.channel), env.probes)
            if matrix.benchmark is not None
            else (),
        )
        for env in selected
    )
    writes = tuple(
        WriteTask(env=ep.slug, probe=probe, fixture=fixture)
        for ep in env_plans
        for probe in ep.writers
        for fixture in fixtures
        if writes_it(matrix, fixture, ep.slug, probe.id)
    )
    return Plan(matrix=matrix, settings=matrix.settings, environments=env_plans, fixtures=fixtures, writes=writes)


def writes_it(matrix: Matrix, fixture: Fixture, env: str, probe: str) -> bool:
    """Whether this writer writes this fixture: any writer, unless the matrix names its writers
    (``writers_of``: ``ENV-GLOB.PROBE-GLOB``, the probe after the last dot); a costly fixture, only those."""
    globs = matrix.writers_of.get(fixture.name)
    if globs is None:
        return not fixture.spec.get("costly")
    return any(
        fnmatch.fnmatchcase(env, e) and fnmatch.fnmatchcase(probe, p) for e, _, p in (g.rpartition(".") for g in globs)
    )


def reader_modes(env_plan: EnvPlan, access: Sequence[Access] = ("file",)) -> tuple[tuple[Probe, Access], ...]:
    """Each reader probe with each access mode the run asks for and the probe has."""
    return tuple((p, a) for p in env_plan.readers for a in access if a in p.access)


def read_tasks(
    env_plan: EnvPlan, archives: Iterable[Archive], access: Sequence[Access] = ("file",)
) -> tuple[ReadTask, ...]:
    archives = tuple(archives)
    return tuple(
        ReadTask(env=env_plan.slug, probe=p, archive=a, access=mode)
        for p, mode in reader_modes(env_plan, access)
        for a in archives
    )


def describe(plan: Plan) -> str:
    """The plan as text, for ``--list``: nothing is built or run."""
    lines = [f"{len(plan.environments)} environment(s), {len(plan.fixtures)} fixture(s):"]
    if plan.shard.count > 1:
        mine = sorted({w.env for w in plan.writes})
        lines.insert(0, f"shard {plan.shard}: the archives of {', '.join(mine) or 'no writer'}, read by every reader")
    for ep in plan.environments:
        lines.append(f"  {ep.slug}")
        lines.append(f"      base {ep.env.base}, {ep.env.channel}: {' '.join(ep.env.packages + ep.env.pip)}")
        lines.append(f"      image {ep.tag}")
        if ep.env.resolved:
            lines.append(f"      resolved: {resolve.describe(ep.env)}")
        lines.append(f"      writers: {', '.join(p.id for p in ep.writers) or '-'}")
        lines.append(f"      readers: {', '.join(p.id for p in ep.readers) or '-'}")
        if ep.benchmarks:
            lines.append(f"      benchmark: {', '.join(p.id for p in ep.benchmarks)}")
    lines.append("fixtures: " + ", ".join(f.name for f in plan.fixtures))
    for fixture in plan.fixtures:
        if fixture.spec.get("costly") or fixture.name in plan.matrix.writers_of:
            by = sorted({f"{w.env}.{w.probe.id}" for w in plan.writes if w.fixture.name == fixture.name})
            named = ", ".join(by) or "no writer (name its writers in writers_of)"
            lines.append(f"  {fixture.name}: written by {named}")
    readers = sum(len(reader_modes(ep, plan.settings.access)) for ep in plan.environments)
    lines.append(f"{len(plan.writes)} archive(s) to write; up to {len(plan.writes) * readers} cell(s)")
    benched = sum(1 for ep in plan.environments if ep.benchmarks)
    bench = plan.matrix.benchmark
    if benched and bench is not None:
        lines.append(
            f"benchmark: {benched} environment(s) × {len(bench.datasets)} dataset(s) "
            f"({', '.join(bench.datasets)}); {bench.warmup} warm-up + {bench.repeats} timed round(s), "
            f"synthetic size {bench.size}, compressor {bench.compressor}, on {bench.storage}"
        )
    return "\n".join(lines)
