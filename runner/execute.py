"""Build the images, run the probes, collect and classify: the only place the pipeline has side effects.

Phases: bases -> images -> writes (one container per writer environment) -> ZIP checks on the host ->
reads (one container per reader environment, every archive) -> cells. Each phase tolerates the failure
of any environment: an image that does not build marks its cells ``install-failed`` and the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import runner
from runner import benchmark, classify, datasets, external, probes, zipcheck
from runner.bases import ensure_base
from runner.config import EnvironmentSpec
from runner.engine import Engine, Mount, RunSpec
from runner.errors import BaseImageError
from runner.images import PYTHON, build_context, image_plan, image_tag
from runner.plan import Archive, EnvPlan, Plan, ReadTask, WriteTask, cell_id, read_tasks, safe_id
from runner.probes import Probe
from runner.resources import probes_dir
from runner.results import (
    ArchiveResult,
    BenchmarkResult,
    CellResult,
    DatasetResult,
    EnvironmentResult,
    Outcome,
    Results,
    RunInfo,
    Side,
    Status,
)

log = logging.getLogger("runner")

CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)
CONTAINER_SLACK = 60.0  # seconds on top of the probes' own timeouts before a container is killed


@dataclass(frozen=True, kw_only=True)
class Options:
    out: Path
    work: Path
    rebuild: bool = False
    allow_bootstrap: bool = True
    external: Path | None = None  # a directory of archives written by other software (``--external``)
    #: which phases run: the compatibility matrix, the store benchmark, or both
    phases: Literal["all", "compat", "benchmark"] = "all"
    #: where downloaded datasets are kept between runs
    cache: Path = Path("~/.cache/zipstore-matrix")


EXTERNAL = "external"  # archives from --external: path prefix in results, mount point /external in readers


def container_path(relative: str) -> str:
    """Where a reader container sees an archive: written ones under /artifacts, external under /external."""
    if relative.startswith(EXTERNAL + "/"):
        return "/" + relative
    return f"/artifacts/{relative}"


Progress = Callable[[str], None]
Checkpoint = Callable[[Results], None]


def read_ca_bundle() -> bytes | None:
    """The host's CA bundle (what pip/requests are told to trust), handed to image builds."""
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value).read_bytes()
    for candidate in CA_BUNDLE_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def container_user() -> str:
    """Probes never run as root: the invoking user, or nobody when the runner itself is root."""
    uid = os.getuid()
    return "65534:65534" if uid == 0 else f"{uid}:{os.getgid()}"


def _shared_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        path.chmod(0o777)  # the container runs as nobody and must write here
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DOCKER_NOISE = re.compile(r"^\s*(---> |Removing intermediate container|Step \d+/\d+ :)")
_PIP_ADVICE = re.compile(r"^(To fix this you could try to:|\d\. (loosen the range|remove package versions))")


def snapshot_probes(target: Path) -> tuple[Path, str]:
    """Copy the probe scripts for this run (edits made while it runs cannot leak into it) and hash them."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(probes_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted(target.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    if os.getuid() == 0:
        target.chmod(0o755)
    return target, digest.hexdigest()


def install_error(log_text: str, error: str | None) -> str:
    """pip's or apt's own explanation from a failed build log, not Docker's summary.

    From the failed step's first ERROR/E: line to its end (pip's "The conflict is caused by:" lines
    included), without colour codes, Docker's step chatter or pip's generic advice.
    """
    lines = [_ANSI.sub("", line).rstrip() for line in log_text.splitlines()]
    steps = [i for i, line in enumerate(lines) if line.lstrip().startswith("Step ")]
    step = lines[steps[-1] + 1 :] if steps else lines
    first = next((i for i, line in enumerate(step) if re.match(r"^\s*(ERROR:|E: |error:)", line)), None)
    picked = step[first:] if first is not None else [line for line in step if line.strip()][-8:]
    picked = [line for line in picked if line.strip() and not _DOCKER_NOISE.match(line) and not _PIP_ADVICE.match(line)]
    text = "\n".join(dict.fromkeys(picked))
    if error and error not in text:
        text = f"{text}\n{error}" if text else error
    return text.strip()


def libraries_from_info(info: dict[str, Any]) -> dict[str, str]:
    """Resolved versions of the libraries under test (and the C libraries under them)."""
    out: dict[str, str] = {}
    dists = info.get("distributions", {})
    for name in ("zarr", "numcodecs", "numpy", "xarray", "fsspec", "h5py", "netcdf4", "gdal", "tensorstore"):
        if name in dists:
            out[name] = dists[name]
    modules = info.get("modules", {})
    names = {"osgeo.gdal": "gdal", "netCDF4": "netcdf4"}
    for module, attrs in modules.items():
        key = names.get(module, module)
        if "__version__" in attrs:
            out.setdefault(key, attrs["__version__"])
        if "import_error" in attrs:
            out.setdefault(key, "import failed")
    if "netCDF4" in modules:
        out["netcdf-c"] = modules["netCDF4"].get("__netcdf4libversion__", "?")
    if "h5py" in modules and "version.hdf5_version" in modules["h5py"]:
        out["hdf5"] = modules["h5py"]["version.hdf5_version"]
    return out


class Execution:
    """One run of a plan against an engine; methods are the phases, state is the results so far."""

    def __init__(
        self,
        plan: Plan,
        engine: Engine,
        options: Options,
        progress: Progress,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.plan = plan
        self.engine = engine
        # Bind mounts need absolute paths; --out defaults to the relative "site".
        self.options = options = replace(
            options,
            out=options.out.resolve(),
            work=options.work.resolve(),
            external=options.external.resolve() if options.external is not None else None,
            cache=options.cache.expanduser(),
        )
        self.progress = progress
        self.checkpoint = checkpoint
        self.started_monotonic = time.monotonic()
        info = engine.info()
        self.results = Results(
            run=RunInfo(
                id=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
                started=now(),
                finished="",
                engine=asdict(info),
                runner_version=runner.__version__,
                matrix_sha256=plan.matrix.sha256,
                matrix_path=plan.matrix.path,
                settings={**asdict(plan.settings), "benchmark": _bench_settings(plan)},
                host={
                    "machine": platform.machine(),
                    "cpus": os.cpu_count() or 0,
                    "python": platform.python_version(),
                },
            ),
            environments=[],
            archives=[],
            cells=[],
        )
        self.jobs = plan.settings.jobs or os.cpu_count() or 1
        self.results.run.settings["jobs"] = self.jobs
        self.envs: dict[str, EnvironmentResult] = {}
        self.artifacts = _shared_dir(options.work / "artifacts")
        self.probes, self.results.run.probes_sha256 = snapshot_probes(options.work / "probes")

    # ------------------------------------------------------------------------------------- phases

    def run(self) -> Results:
        removed = self.engine.cleanup()
        if removed:
            log.info("removed %d leftover container(s) from an earlier run", removed)
        self.base_refs: dict[str, str | BaseImageError] = {}
        self.build_images()
        if self.options.phases in ("all", "compat"):
            self.write_phase()
            self.add_external_archives()
            self.read_phase()
        if self.options.phases in ("all", "benchmark"):
            self.benchmark_phase()
        self.results.run.finished = now()
        self.results.run.seconds = round(time.monotonic() - self.started_monotonic, 3)
        self._save()
        return self.results

    def _save(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint(self.results)

    def _base(self, base: str) -> str | BaseImageError:
        """The local reference of a base image (bootstrapped if need be), or why it cannot be had."""
        if base not in self.base_refs:
            try:
                resolved = ensure_base(self.engine, base, allow_bootstrap=self.options.allow_bootstrap)
                self.base_refs[base] = resolved.ref
                if resolved.how != "local":
                    self.progress(f"base {base}: {resolved.how} as {resolved.ref} ({resolved.seconds:.0f}s)")
            except BaseImageError as exc:
                self.base_refs[base] = exc
                self.progress(f"base {base}: unavailable: {exc}")
        return self.base_refs[base]

    def _ensure_image(self, env: EnvironmentSpec, tag: str, result: EnvironmentResult, label: str) -> None:
        """Reuse or build the image of ``env``; the outcome lands in ``result`` (status, reason, timing)."""
        base_ref = self._base(env.base)
        if isinstance(base_ref, BaseImageError):
            result.status = Status.INSTALL_FAILED.value
            result.reason = f"base image unavailable: {base_ref}"
            return
        if not self.options.rebuild and self.engine.has_image(tag):
            result.cached = True
            self.progress(f"[{label}] {env.slug}: cached ({tag})")
            return
        self.progress(f"[{label}] {env.slug}: building {tag} ...")
        built = self.engine.build(build_context(image_plan(env, self.ca, base_ref=base_ref)))
        result.cached, result.build_seconds = False, round(built.seconds, 2)
        if not built.ok:
            result.status = Status.INSTALL_FAILED.value
            result.reason = install_error(built.log, built.error)
            self.progress(f"[{label}] {env.slug}: install failed: {result.reason.splitlines()[-1]}")
        else:
            self.progress(f"[{label}] {env.slug}: built in {built.seconds:.0f}s")

    def _environment(self, env: EnvironmentSpec, tag: str, label: str) -> EnvironmentResult:
        """Record an environment in the results and reuse or build its image."""
        result = EnvironmentResult(
            slug=env.slug,
            base=env.base,
            python=env.python,
            channel=env.channel,
            packages=list(env.packages + env.pip),
            image=tag,
        )
        self.envs[env.slug] = result
        self.results.environments.append(result)
        self._ensure_image(env, tag, result, label)
        return result

    def build_images(self) -> None:
        self.ca = read_ca_bundle()
        if self.ca is None:
            log.warning("no CA bundle found on the host; builds behind a TLS-intercepting proxy will fail")
        wanted = [ep for ep in self.plan.environments if self.options.phases != "benchmark" or ep.benchmarks]
        for n, ep in enumerate(wanted, 1):
            self._environment(ep.env, ep.tag, f"image {n}/{len(wanted)}")
            self._save()

    def _ok(self, slug: str) -> bool:
        return self.envs[slug].status == "ok"

    def _probe_container(
        self,
        ep: EnvPlan,
        phase: str,
        tasks: list[dict[str, Any]],
        writable_artifacts: bool,
        *,
        jobs: int | None = None,
        mounts: tuple[Mount, ...] = (),
        tmpfs_size: int | None = None,
    ) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Run the harness over ``tasks`` in one container; per task id: (run outcome, probe record).

        ``jobs`` caps probes at once (1 for timed phases); ``tmpfs_size`` enlarges /tmp for big stores.
        """
        job = _shared_dir(self.options.work / "jobs" / phase / ep.slug)
        out = _shared_dir(self.options.work / "records" / phase / ep.slug)
        for stale in out.glob("*.json"):
            stale.unlink()
        spec_json = {"jobs": jobs or self.jobs, "tasks": tasks}
        (job / "tasks.json").write_text(json.dumps(spec_json, indent=1), encoding="utf-8")
        timeout = sum(t["timeout"] for t in tasks) + CONTAINER_SLACK
        tmpfs = {"/tmp": f"rw,exec,size={max(tmpfs_size or 0, 1 << 30)}"}
        spec = RunSpec(
            image=ep.tag,
            command=(PYTHON, "/probes/harness.py", "/job/tasks.json", "/out"),
            mounts=(
                Mount(source=str(self.probes), target="/probes"),
                Mount(source=str(job), target="/job"),
                Mount(source=str(out), target="/out", read_only=False),
                Mount(source=str(self.artifacts), target="/artifacts", read_only=not writable_artifacts),
                *(
                    [Mount(source=str(self.options.external.resolve()), target="/" + EXTERNAL)]
                    if self.options.external is not None and not writable_artifacts
                    else []
                ),
                *mounts,
            ),
            tmpfs=tmpfs,
            timeout=timeout,
            memory=self.plan.settings.memory,
            pids_limit=self.plan.settings.pids_limit,
            user=container_user(),
            labels={"org.zipstore-matrix.env": ep.slug, "org.zipstore-matrix.phase": phase},
        )
        ran = self.engine.run(spec)
        info_path = out / "env.json"
        if info_path.is_file() and ep.slug in self.envs:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            env_result = self.envs[ep.slug]
            env_result.info = info
            env_result.libraries = libraries_from_info(info)
        outcomes: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
        for task in tasks:
            run = _load(out / f"{task['id']}.run.json")
            record = _load(out / f"{task['id']}.probe.json")
            if run is None and ran.oom_killed:
                run = {"oom_killed": True, "stderr_tail": ran.logs[-2000:]}
            elif run is None and ran.timed_out:
                run = {"timed_out": True, "seconds": timeout, "stderr_tail": ran.logs[-2000:]}
            outcomes[task["id"]] = (run, record)
        if ran.exit_code not in (0, None):
            log.warning("%s %s container exited %s:\n%s", phase, ep.slug, ran.exit_code, ran.logs[-2000:])
        return outcomes

    def _library_version(self, slug: str, library: str) -> str:
        """Resolved version from inside the image, else the exact pin, else '?'."""
        resolved = self.envs[slug].libraries.get(library)
        return resolved or self.plan.env(slug).env.pins.get(library) or "?"

    def write_phase(self) -> None:
        by_env: dict[str, list[WriteTask]] = {}
        for task in self.plan.writes:
            by_env.setdefault(task.env, []).append(task)
        total = len(by_env)
        for n, (slug, writes) in enumerate(by_env.items(), 1):
            ep = self.plan.env(slug)
            if not self._ok(slug):
                for w in writes:
                    self._archive(w, Outcome(status=Status.INSTALL_FAILED, reason=self.envs[slug].reason), None)
                continue
            tasks = []
            for w in [w for w in writes if w.skip_reason]:
                self._archive(w, Outcome(status=Status.SKIPPED, reason=str(w.skip_reason)), None)
            writes = [w for w in writes if not w.skip_reason]
            for w in writes:
                _shared_dir((self.artifacts / w.archive).parent)
                tasks.append(
                    {
                        "id": w.id,
                        "script": w.probe.script,
                        "timeout": self.plan.settings.probe_timeout,
                        "args": {
                            "role": "writer",
                            "library": w.probe.library,
                            "archive": f"/artifacts/{w.archive}",
                            "fixture": {"name": w.fixture.name, **w.fixture.spec},
                            **w.probe.options,
                        },
                    }
                )
            self.progress(f"[write {n}/{total}] {slug}: {len(tasks)} archive(s) ...")
            outcomes = self._probe_container(ep, "write", tasks, writable_artifacts=True)
            for w in writes:
                run, record = outcomes[w.id]
                outcome = classify.process_outcome(run, record) or classify.record_outcome(record or {})
                self._archive(w, outcome or Outcome(status=Status.PASS), record)
            self._save()

    def _archive(self, w: WriteTask, outcome: Outcome, record: dict[str, Any] | None) -> None:
        record = record or {}
        warnings, notices = classify.split_warnings(list(record.get("warnings", [])))
        result = ArchiveResult(
            id=w.id,
            env=w.env,
            probe=w.probe.id,
            library=w.probe.library,
            version=str(record.get("version") or self._library_version(w.env, w.probe.library)),
            zarr_format=w.probe.options.get("zarr_format"),
            fixture=w.fixture.name,
            status="written" if outcome.status is Status.PASS else outcome.status.value,
            reason=outcome.reason,
            detail=outcome.detail,
            warnings=warnings,
            notices=notices,
            timings=dict(record.get("timings", {})),
            expected=dict(record.get("expected", {})),
        )
        path = self.artifacts / w.archive
        if outcome.status is Status.PASS and path.is_file():
            result.path = w.archive
            checks = zipcheck.check_archive(path)
            result.sha256, result.size = checks.pop("sha256"), checks.pop("size")
            result.zip_checks = checks
            result.manifest = zipcheck.manifest(path)
        elif outcome.status is Status.PASS:
            result.status, result.reason = (
                Status.FAIL.value,
                "the writer reported success but left no archive",
            )
        self.results.archives.append(result)

    def read_phase(self) -> None:
        readable = [
            Archive(
                id=a.id,
                path=a.path,
                fixture=a.fixture,
                arrays=tuple(a.expected.get("arrays", {})),
                zarr_format=a.zarr_format,
                writer_env=a.env,
                writer_probe=a.probe,
                shapes={p: list(d.get("shape", [])) for p, d in a.expected.get("arrays", {}).items()},
            )
            for a in self.results.archives
            if a.status == "written" and a.path
        ]
        by_archive = {a.id: a for a in self.results.archives}
        readers = [ep for ep in self.plan.environments if ep.readers]
        for n, ep in enumerate(readers, 1):
            every = read_tasks(ep, readable)
            tasks = [t for t in every if t.archive.arrays or not t.probe.needs_arrays]
            for task in every:
                if task not in tasks:
                    reason = f"no Zarr arrays in the archive's metadata: {task.probe.id} opens arrays by path"
                    self._unread_cell(by_archive[task.archive.id], ep.slug, task.probe, Status.SKIPPED, reason)
            outcomes: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
            if self._ok(ep.slug) and tasks:
                self.progress(f"[read {n}/{len(readers)}] {ep.slug}: {len(tasks)} read(s) ...")
                outcomes = self._probe_container(
                    ep, "read", [self._read_task(t) for t in tasks], writable_artifacts=False
                )
            for task in tasks:
                self._cell(task, by_archive[task.archive.id], outcomes.get(task.id))
            for archive in self.results.archives:
                if archive.status != "written":
                    for probe in ep.readers:
                        self._unwritten_cell(ep, probe, archive)
            self._save()
        self.judge_by_consensus()
        self._save()

    def add_external_archives(self) -> None:
        """Archives from ``--external``: their arrays from their own metadata, no writer's record."""
        if self.options.external is None:
            return
        found = external.discover(self.options.external)
        self.progress(f"external: {len(found)} archive(s) from {self.options.external}")
        for ext in found:
            checks = zipcheck.check_archive(ext.path)
            self.results.archives.append(
                ArchiveResult(
                    id=safe_id("x", ext.folder, ext.name),
                    env=EXTERNAL,
                    probe=ext.name,
                    library=ext.source or ext.folder,
                    version=ext.commit[:10],
                    zarr_format=ext.zarr_format,
                    fixture=ext.fixture,
                    status="written",
                    path=f"{EXTERNAL}/{ext.relative}",
                    sha256=checks.pop("sha256"),
                    size=checks.pop("size"),
                    zip_checks=checks,
                    manifest=zipcheck.manifest(ext.path),
                    expected={"arrays": ext.arrays},
                )
            )

    def judge_by_consensus(self) -> None:
        """External archives have no recorded values: a clean reading against the majority is a mismatch."""
        groups: dict[tuple[str, str], dict[str, CellResult]] = {}
        for cell in self.results.cells:
            if cell.writer.env == EXTERNAL and cell.status == Status.PASS.value and cell.values:
                groups.setdefault((cell.writer.probe, cell.fixture), {})[cell.id] = cell
        for cells in groups.values():
            for cell_id_, verdict in classify.consensus({i: c.values for i, c in cells.items()}).items():
                cell = cells[cell_id_]
                cell.status, cell.reason, cell.detail = verdict.status.value, verdict.reason, verdict.detail

    def _reader_side(self, env: str, probe: Probe) -> Side:
        return Side(env=env, probe=probe.id, library=probe.library, version=self._library_version(env, probe.library))

    def _unread_cell(self, archive: ArchiveResult, env: str, probe: Probe, status: Status, reason: str) -> None:
        """A cell decided without running its reader (nothing to read, or an image that did not build)."""
        self.results.cells.append(
            CellResult(
                id=cell_id(archive.env, archive.probe, env, probe.id, archive.fixture),
                writer=self._writer_side(archive),
                reader=self._reader_side(env, probe),
                fixture=archive.fixture,
                status=status.value,
                reason=reason,
            )
        )

    def _read_task(self, task: ReadTask) -> dict[str, Any]:
        return {
            "id": task.id,
            "script": task.probe.script,
            "timeout": self.plan.settings.probe_timeout,
            "args": {
                "role": "reader",
                "library": task.probe.library,
                "archive": container_path(task.archive.path),
                "arrays": list(task.archive.arrays),
                "shapes": dict(task.archive.shapes),
                "zarr_format": task.archive.zarr_format,
                "fixture": task.archive.fixture,
                "repeats": self.plan.settings.read_repeats,
                **task.probe.options,
            },
        }

    def _writer_side(self, archive: ArchiveResult) -> Side:
        return Side(
            env=archive.env,
            probe=archive.probe,
            library=archive.library,
            version=archive.version,
            zarr_format=archive.zarr_format,
        )

    def _cell(
        self,
        task: ReadTask,
        archive: ArchiveResult,
        outcome: tuple[dict[str, Any] | None, dict[str, Any] | None] | None,
    ) -> None:
        reader = self._reader_side(task.env, task.probe)
        if not self._ok(task.env):
            verdict = Outcome(status=Status.INSTALL_FAILED, reason=self.envs[task.env].reason)
            record: dict[str, Any] = {}
        else:
            run, maybe_record = outcome if outcome is not None else (None, None)
            record = maybe_record or {}
            verdict = classify.classify_read(run, maybe_record, {**archive.expected, "keys": archive.manifest})
            reader.version = str(record.get("version") or reader.version)
        reader_warnings, reader_notices = classify.split_warnings(list(record.get("warnings", [])))
        warnings = [f"archive: {p}" for p in archive.zip_checks.get("problems", [])]
        if archive.warnings:  # listed in full once, on the archive's row
            warnings.append(f"writer: {len(archive.warnings)} warning(s) while writing (see the archive)")
        warnings += [f"reader: {w}" for w in reader_warnings]
        warnings += list(verdict.warnings)
        notices = [f"writer: {w}" for w in archive.notices] + [f"reader: {w}" for w in reader_notices]
        notices += [f"reader observed: {o}" for o in record.get("observations", [])]
        self.results.cells.append(
            CellResult(
                id=task.cell_id,
                writer=self._writer_side(archive),
                reader=reader,
                fixture=archive.fixture,
                status=verdict.status.value,
                reason=verdict.reason,
                detail=verdict.detail,
                warnings=warnings,
                notices=notices,
                timings=dict(record.get("timings", {})),
                values={p: str(a["sha256"]) for p, a in record.get("arrays", {}).items() if a.get("sha256")},
            )
        )

    def _unwritten_cell(self, ep: EnvPlan, probe: Probe, archive: ArchiveResult) -> None:
        """A cell whose archive was never written: install-failed if an image failed, else skipped."""
        if archive.status == Status.INSTALL_FAILED.value:
            self._unread_cell(
                archive, ep.slug, probe, Status.INSTALL_FAILED, f"writer environment {archive.env} did not install"
            )
        elif not self._ok(ep.slug):
            self._unread_cell(archive, ep.slug, probe, Status.INSTALL_FAILED, self.envs[ep.slug].reason)
        else:
            self._unread_cell(
                archive,
                ep.slug,
                probe,
                Status.SKIPPED,
                f"the writer could not produce this archive ({archive.status}: {archive.reason})",
            )

    # ---------------------------------------------------------------------------------- benchmark

    @property
    def shelf(self) -> Path:
        """Loaded datasets as .npy, shared by every run that uses the same cache (named by content)."""
        return self.options.cache / "datasets"

    def benchmark_phase(self) -> None:
        """Every benchmark environment, one after another, one probe at a time: timings run alone."""
        envs = [ep for ep in self.plan.environments if ep.benchmarks and ep.slug in self.envs]
        bench = self.plan.matrix.benchmark
        if not envs or bench is None:
            return
        ready = self.prepare_datasets()
        shelf = self.shelf
        largest = max([int(d["nbytes"]) for d in ready.values()] or [0])
        for n, ep in enumerate(envs, 1):
            results = {
                name: BenchmarkResult(
                    id=safe_id("b", ep.slug, name),
                    env=ep.slug,
                    dataset=name,
                    status=Status.PASS.value,
                    version=self._library_version(ep.slug, "zarr"),
                )
                for name in bench.datasets
            }
            tasks = []
            for name, result in results.items():
                dataset = next(d for d in self.results.datasets if d.name == name)
                if not self._ok(ep.slug):
                    result.status, result.reason = Status.INSTALL_FAILED.value, self.envs[ep.slug].reason
                elif name not in ready:
                    result.status, result.reason = Status.SKIPPED.value, dataset.reason
                else:
                    tasks.append(self._bench_task(ep, result, ready[name]))
            mounts = [Mount(source=str(_shared_dir(shelf)), target="/datasets")]
            disk = _shared_dir(self.options.work / "bench-scratch" / ep.slug)
            if bench.storage == "disk":
                mounts.append(Mount(source=str(disk), target="/bench-disk", read_only=False))
            outcomes: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
            if tasks:
                self.progress(f"[benchmark {n}/{len(envs)}] {ep.slug}: {len(tasks)} dataset(s), one at a time ...")
                outcomes = self._probe_container(
                    ep,
                    "benchmark",
                    tasks,
                    writable_artifacts=False,
                    jobs=1,
                    mounts=tuple(mounts),
                    tmpfs_size=2 * largest + (256 << 20),
                )
            shutil.rmtree(disk, ignore_errors=True)
            for result in results.values():
                if result.id in outcomes:
                    run, record = outcomes[result.id]
                    verdict = classify.process_outcome(run, record) or classify.record_outcome(record or {})
                    if verdict is not None:
                        result.status, result.reason, result.detail = (
                            verdict.status.value,
                            verdict.reason,
                            verdict.detail,
                        )
                    else:
                        benchmark.fill_from_record(result, record or {})
                        result.setup.update(alone=True, jobs=1)
                self.results.benchmarks.append(result)
            self._save()

    def _bench_task(self, ep: EnvPlan, result: BenchmarkResult, dataset: dict[str, Any]) -> dict[str, Any]:
        bench = self.plan.matrix.benchmark
        assert bench is not None
        probe = ep.benchmarks[0]
        return {
            "id": result.id,
            "script": probe.script,
            "timeout": bench.timeout,
            "args": {
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
        }

    def prepare_datasets(self) -> dict[str, dict[str, Any]]:
        """Every configured dataset as probe arguments, by name; the rest recorded as unavailable, with why.

        Loaded datasets are saved once as ``.npy`` in the cache (``~/.cache/zipstore-matrix/datasets``),
        named by a hash of the loader image and the source file, and reused by later runs.
        """
        bench = self.plan.matrix.benchmark
        assert bench is not None
        known = datasets.catalog(bench.size)
        shelf = _shared_dir(self.shelf)
        loader = bench.loader
        loader_tag = image_tag(loader)
        ready: dict[str, dict[str, Any]] = {}
        pending: list[tuple[DatasetResult, Path, dict[str, Any]]] = []
        source_mounts: list[Mount] = []
        for name in bench.datasets:
            ds = known[name]
            result = DatasetResult(name=name, kind=ds.kind, description=ds.description, status="ok", source=ds.source)
            self.results.datasets.append(result)
            if ds.kind == "synthetic":
                result.shape, result.dtype, result.nbytes = list(ds.spec["shape"]), ds.spec["dtype"], ds.nbytes or 0
                ready[name] = {"name": name, "generate": dict(ds.spec), "chunks": ds.chunks, "nbytes": result.nbytes}
                continue
            identity: list[Any] = [loader_tag, name]
            args: dict[str, Any] = {"dataset": name}
            if ds.kind == "file":
                configured = Path(bench.mnist) if bench.mnist else None
                path, how = datasets.locate_mnist(configured, self.options.cache, download=bench.download)
                if path is None:
                    where = f" ({bench.mnist_source})" if configured is not None and bench.mnist_source else ""
                    result.status, result.reason = Status.SKIPPED.value, f"dataset unavailable: {how}{where}"
                    continue
                result.source = how
                stat = path.stat()
                identity += [str(path), stat.st_size, stat.st_mtime_ns]
                target = f"/source/{len(source_mounts)}/{path.name}"
                source_mounts.append(Mount(source=str(path), target=target))
                args["source"] = target
            npy = shelf / f"{name}-{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]}.npy"
            args["output"] = f"/datasets/{npy.name}"
            meta = _load(npy.with_suffix(".json"))
            if npy.is_file() and meta is not None:
                ready[name] = self._loaded(result, npy, meta, ds)
            else:
                pending.append((result, npy, args))
        if pending:
            self._load_datasets(loader, loader_tag, pending, tuple(source_mounts), ready, known)
        return ready

    def _loaded(self, result: DatasetResult, npy: Path, meta: dict[str, Any], ds: datasets.Dataset) -> dict[str, Any]:
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

    def _load_datasets(
        self,
        loader: EnvironmentSpec,
        tag: str,
        pending: list[tuple[DatasetResult, Path, dict[str, Any]]],
        source_mounts: tuple[Mount, ...],
        ready: dict[str, dict[str, Any]],
        known: dict[str, datasets.Dataset],
    ) -> None:
        env_result = self._environment(loader, tag, "datasets")
        if env_result.status != "ok":
            for result, _, _ in pending:
                result.status = Status.SKIPPED.value
                result.reason = f"dataset unavailable: the loader image did not install: {env_result.reason}"
            return
        self.progress(f"[datasets] loading {', '.join(r.name for r, _, _ in pending)} ...")
        tasks = [
            {
                "id": safe_id("d", result.name),
                "script": probes.DATASET_LOADER,
                "timeout": self.plan.settings.probe_timeout,
                "args": {"role": "loader", "library": "datasets", **args},
            }
            for result, _, args in pending
        ]
        shelf = Mount(source=str(self.shelf), target="/datasets", read_only=False)
        loader_plan = EnvPlan(env=loader, tag=tag, writers=(), readers=())
        outcomes = self._probe_container(
            loader_plan, "datasets", tasks, writable_artifacts=False, mounts=(shelf, *source_mounts)
        )
        for (result, npy, _), task in zip(pending, tasks, strict=True):
            run, record = outcomes[str(task["id"])]
            verdict = classify.process_outcome(run, record) or classify.record_outcome(record or {})
            if verdict is None and record is not None and npy.is_file():
                npy.with_suffix(".json").write_text(json.dumps(record, indent=1), encoding="utf-8")
                ready[result.name] = self._loaded(result, npy, record, known[result.name])
            else:
                why = verdict.reason if verdict is not None else "the loader reported success but saved nothing"
                result.status, result.reason = Status.SKIPPED.value, f"dataset unavailable: the loader failed: {why}"


def _bench_settings(plan: Plan) -> dict[str, Any] | None:
    if plan.matrix.benchmark is None:
        return None
    settings = asdict(plan.matrix.benchmark)
    settings.pop("mnist_source", None)
    return settings


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def execute(
    plan: Plan, engine: Engine, options: Options, progress: Progress, checkpoint: Checkpoint | None = None
) -> Results:
    return Execution(plan, engine, options, progress, checkpoint).run()
