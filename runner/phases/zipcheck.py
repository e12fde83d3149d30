"""The ZIP-level checks, as the host sees them: a task per archive for ``probes/zipcheck_probe.py``, which
runs in a locked-down container, and what its record means for the archive.

The host itself only hashes an archive's file (streamed, a block at a time); it never parses the bytes.
"""

from __future__ import annotations

from runner.matrix.model import Settings
from runner.plan.cells import container_path
from runner.plan.planner import safe_id
from runner.protocol import ProbeResult, Task
from runner.results.model import ArchiveResult
from runner.results.probe_data import ZipChecks

SCRIPT = "zipcheck_probe.py"


def check_task(archive: ArchiveResult, settings: Settings) -> Task:
    assert archive.path is not None
    return Task(
        id=safe_id("z", archive.id),
        script=SCRIPT,
        timeout=settings.probe_timeout,
        args={"role": "checker", "library": "zipfile", "archive": container_path(archive.path)},
    )


def unchecked(archive: ArchiveResult, why: str) -> None:
    archive.zip_checks = ZipChecks.unchecked(why)


def apply(archive: ArchiveResult, result: ProbeResult, *, from_metadata: bool) -> None:
    """The checker's findings onto ``archive``; with ``from_metadata`` (an archive nobody here wrote),
    also the arrays its metadata declares, which the readers are then asked for."""
    verdict = result.verdict()
    if verdict is not None:
        unchecked(archive, f"{verdict.status}: {verdict.reason}")
        return
    record = result.data
    facts = record.get("facts")
    manifest = record.get("manifest")
    if not isinstance(facts, dict) or not isinstance(manifest, dict):
        unchecked(archive, "the checker's record has no facts")
        return
    archive.zip_checks = ZipChecks.from_record(facts)
    archive.manifest = {str(k): v if isinstance(v, str) else None for k, v in manifest.items()}
    if from_metadata:
        arrays = record.get("arrays")
        archive.zarr_format = record.get("zarr_format") if record.get("zarr_format") in (2, 3) else None
        archive.expected = {"arrays": arrays if isinstance(arrays, dict) else {}}
