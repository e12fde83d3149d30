"""Pure: the probe protocol as the host sees it. One task type in, one result type out, one version check.

A :class:`Task` is what the in-container harness (``probes/harness.py``) runs as one process. For each
task it leaves two files: ``<id>.run.json`` (how the process ended: the harness's words) and
``<id>.probe.json`` (what the probe found: the probe's record, written by ``probes/_common.py``).
:class:`ProbeResult` holds both and turns them into a verdict. A record that carries a different
``record_version`` than :data:`RECORD_VERSION` is refused with a clear reason, never half-read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.results import classify
from runner.results.model import Outcome, Status

#: The record format the host reads; ``probes/_common.py`` writes the same number (a test holds them equal).
RECORD_VERSION = 1
RUN_SUFFIX, RECORD_SUFFIX = ".run.json", ".probe.json"
#: The largest record the host will parse: a probe's record is untrusted output.
MAX_RECORD_BYTES = 64 << 20


@dataclass(frozen=True, kw_only=True)
class Task:
    """One probe process: which script, with which arguments, for how long at most."""

    id: str
    script: str
    timeout: float
    args: Mapping[str, Any] = field(default_factory=dict)
    #: the probe drives a web page: with ``fork`` on, it opens a context in the container's one Chromium
    browser: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "script": self.script, "timeout": self.timeout, "args": dict(self.args)}
        return {**out, "browser": True} if self.browser else out


def job_file(tasks: list[Task], jobs: int, fork: bool = True) -> str:
    """The ``tasks.json`` the harness reads: how many probes at once, whether what a probe needs is started
    once per container (children forked from a process that imported the library once, one Chromium for
    the pages; else a fresh interpreter and browser per task), and the tasks."""
    return json.dumps({"jobs": jobs, "fork": fork, "tasks": [t.to_json() for t in tasks]}, indent=1)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """How one task's process ended (``run``, None if it never reported) and what its probe recorded."""

    run: Mapping[str, Any] | None
    record: Mapping[str, Any] | None
    #: the engine's own words when the container could not run at all (nothing of the task ran)
    container_error: str | None = None

    @property
    def data(self) -> Mapping[str, Any]:
        """The record, or an empty one: what a verdict other than pass may still carry (warnings, version)."""
        return self.record or {}

    def protocol_problem(self) -> Outcome | None:
        """A record in a format this host does not read: said plainly, not misread."""
        if self.record is None:
            return None
        version = self.record.get("record_version")
        if version == RECORD_VERSION:
            return None
        return Outcome(
            status=Status.CRASH,
            reason=(
                f"the probe wrote record version {version!r}; this runner reads version {RECORD_VERSION}: "
                "the probe scripts and the runner are from different releases"
            ),
        )

    def verdict(self) -> Outcome | None:
        """The status when the process or the probe could not do the job, or None when the record stands."""
        if self.container_error is not None:
            return Outcome(status=Status.CRASH, reason=f"the container could not run: {self.container_error}")
        return (
            classify.process_outcome(self.run, self.record)
            or self.protocol_problem()
            or classify.record_outcome(self.data)
        )

    def read_verdict(self, expected: Mapping[str, Any]) -> Outcome:
        """A reader's verdict: the above, else the comparison of what it read with ``expected``."""
        return self.verdict() or classify.compare_outcome(expected, self.data)


def load_json(path: Path, limit: int = MAX_RECORD_BYTES) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when missing, too large, not JSON or not an object."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)
    except OSError:
        return None
    if len(raw) > limit:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def collect(out: Path, task: Task) -> ProbeResult:
    """The two files the harness left for ``task`` in ``out``."""
    run, record = (load_json(out / f"{task.id}{suffix}") for suffix in (RUN_SUFFIX, RECORD_SUFFIX))
    return ProbeResult(run=run, record=record)
