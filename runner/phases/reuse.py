"""Reuse: a night takes the result of every key it has measured before (the history's ``measured`` table)
instead of measuring it again, but for a rotating share (``plan.keys.due``: every key at least once every
``every`` nights) and everything with ``--fresh``. The keys of this run are made here from the plan, the
snapshotted probe scripts and the host code that classifies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.matrix.model import Settings
from runner.plan import cells as cells_module
from runner.plan import keys
from runner.plan.keys import KeyInputs
from runner.plan.planner import Plan, ReadTask, WriteTask
from runner.results import classify, probe_data
from runner.results.history import Measured
from runner.results.model import ArchiveResult, CellResult, Reused, archive_from_dict, cell_from_dict

#: the host modules that turn a probe's record into an archive's or a cell's result
CODE = (cells_module, classify, probe_data)
#: the settings that decide an outcome (not how many probes run at once, nor fork or fresh processes)
DECIDING = ("probe_timeout", "memory", "pids_limit", "read_repeats", "scale")


def key_inputs(plan: Plan, probes: Path) -> KeyInputs:
    scripts = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(probes.iterdir()) if p.is_file()}
    code = hashlib.sha256()
    for module in CODE:
        code.update(Path(str(module.__file__)).read_bytes())
    settings: Settings = plan.settings
    return KeyInputs(
        scripts=scripts, code=code.hexdigest(), settings={name: getattr(settings, name) for name in DECIDING}
    )


@dataclass(kw_only=True)
class Reuse:
    store: Mapping[str, Measured]
    night: int  # tonight's number: how many finished runs the history holds
    every: int = 7
    fresh: bool = False  # --fresh: measure everything
    inputs: KeyInputs | None = None  # set when the run starts (the snapshotted probes)
    counts: dict[str, int] = field(default_factory=lambda: {"reused": 0, "due": 0, "new": 0})
    slots: dict[str, int] = field(default_factory=dict)  # tonight's archive keys' slots (``rotate``)

    def rotate(self, archive_keys: Iterable[str]) -> None:
        """Spread tonight's archive keys (every archive of the run: written or from outside) evenly over the
        nights, before any of them is reused or written."""
        self.slots = keys.ring_slots(archive_keys, self.every)

    def slot(self, key: str) -> int:
        found = self.slots.get(key)
        return keys.hash_slot(key, self.every) if found is None else found

    def take(self, key: str, slot: str = "") -> Measured | None:
        """The earlier measurement of ``key`` to reuse tonight, or None: measure it. ``slot``: the key whose
        slot decides the night it comes due (a cell's archive's key; the key itself by default)."""
        found = self.store.get(key)
        if found is None:
            return None
        if self.fresh or keys.due(self.slot(slot or key), found.night, self.night, self.every):
            return None
        return found

    def count(self, key: str, reused: bool) -> None:
        what = "reused" if reused else "due" if key in self.store else "new"
        self.counts[what] += 1

    def writer_key(self, image: str, task: WriteTask) -> str:
        assert self.inputs is not None
        return keys.writer_key(self.inputs, image, task.probe, task.fixture.name, task.fixture.spec)

    def cell_key(self, image: str, task: ReadTask, archive: ArchiveResult, server: str = "") -> str:
        assert self.inputs is not None
        return keys.cell_key(self.inputs, archive.key, image, task.probe, task.access, server)

    def archive(self, key: str, slot: str = "") -> ArchiveResult | None:
        """The archive's earlier record to reuse tonight, or None (not due, not readable: it is made again)."""
        found = self.take(key, slot)
        if found is None:
            return None
        try:
            archive = archive_from_dict(found.record())
        except (ValueError, TypeError, KeyError):
            return None
        archive.reused = Reused(run=found.run_id, started=found.started)
        return archive

    def cell(self, key: str, cell_id: str, slot: str = "") -> CellResult | None:
        """Cell ``cell_id``'s earlier record to reuse tonight, or None (not due, not readable, another
        cell's: it is measured)."""
        found = self.take(key, slot)
        if found is None:
            return None
        try:
            cell = cell_from_dict(found.record())
        except (ValueError, TypeError, KeyError):
            return None
        if cell.id != cell_id:
            return None
        cell.reused = Reused(run=found.run_id, started=found.started)
        return cell
