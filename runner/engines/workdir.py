"""The host side of a run: its directories, the user probes run as, and
the snapshot of the probe scripts this run mounts into every container."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from runner.resources import probes_dir


def container_user() -> str:
    """Probes never run as root: the invoking user, or nobody when the runner itself is root."""
    uid = os.getuid()
    return "65534:65534" if uid == 0 else f"{uid}:{os.getgid()}"


def shared_dir(path: Path) -> Path:
    """A directory the container user can write to (made if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        path.chmod(0o777)  # the container runs as nobody and must write here
    return path


def snapshot_probes(target: Path) -> tuple[Path, str]:
    """Copy the probe scripts for this run (edits made while it runs cannot leak into it) and hash them."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(probes_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted([*target.glob("*.py"), *target.glob("*.mjs")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    if os.getuid() == 0:
        target.chmod(0o755)
    return target, digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class Workdir:
    """Where this run keeps its archives, jobs and records (all absolute: they are bind-mounted)."""

    work: Path
    probes: Path
    probes_sha256: str
    artifacts: Path
    user: str

    @classmethod
    def prepare(cls, work: Path) -> Workdir:
        work = work.resolve()
        probes, digest = snapshot_probes(work / "probes")
        return cls(
            work=work,
            probes=probes,
            probes_sha256=digest,
            artifacts=shared_dir(work / "artifacts"),
            user=container_user(),
        )

    def job_dirs(self, phase: str, slug: str) -> tuple[Path, Path]:
        """(the job directory the harness reads, the output directory it writes) of one container."""
        job = shared_dir(self.work / "jobs" / phase / slug)
        out = shared_dir(self.work / "records" / phase / slug)
        for stale in out.glob("*.json"):
            stale.unlink()
        return job, out
