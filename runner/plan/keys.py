"""Pure: the key of an archive and of a cell, the hash of everything that decides it.

A night reuses the result of a key it has measured before (the history keeps the last record of each
key), and measures the rest. What goes in:

- an archive written here: the writer's image tag (a hash of its rendered Dockerfile and files, so of
  its exact package versions), the writer probe (its id, options and script), the fixture (name and
  spec), the settings that decide outcomes, the scripts every probe shares (harness, ``_common``), the
  ZIP checks' scripts, and the host code that turns records into results. Not the archive's bytes:
  writers are not deterministic (zarr's ZipStore and Python's zipfile stamp the time of writing into every
  local header), so the writer's inputs decide, and the bytes they made are recorded with the archive.
- an archive from outside (``--external``, ``--hostile``): its id (two files with the same bytes are two
  archives, each with its own cells), its SHA-256, the ZIP checks' and shared scripts, the code.
- a cell: its archive's key, the reader's image tag and probe (id, options, script), the access mode, and
  the same shared scripts, settings and code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.probes import Access, Probe

#: bump when what a key covers changes meaning (not when code changes: ``code`` covers that)
KEY_VERSION = 1
#: scripts every probe runs through: a change to one decides every cell
SHARED_SCRIPTS = ("harness.py", "_common.py", "zarrita_common.mjs", "browser_common.mjs", "browser_server.mjs")
#: the ZIP checks' scripts: they decide an archive's record
CHECK_SCRIPTS = ("zipcheck_probe.py", "zipinspect.py")


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class KeyInputs:
    """What the keys are made of besides the task itself, gathered once per run."""

    scripts: Mapping[str, str]  # probe script file name -> its SHA-256
    code: str  # SHA-256 of the host modules that turn probe records into results
    settings: Mapping[str, Any]  # the settings that decide outcomes (not how many run at once)

    def probe(self, probe: Probe) -> str:
        return _hash(probe.id, probe.library, dict(probe.options), self.scripts.get(probe.script, "?"))

    @property
    def shared(self) -> str:
        return _hash([self.scripts.get(name, "?") for name in (*SHARED_SCRIPTS, *CHECK_SCRIPTS)])


def writer_key(inputs: KeyInputs, image: str, probe: Probe, fixture: str, spec: Mapping[str, Any]) -> str:
    return _hash(
        "archive", KEY_VERSION, image, inputs.probe(probe), fixture, dict(spec), inputs.settings, inputs.shared,
        inputs.code,
    )  # fmt: skip


def external_key(inputs: KeyInputs, archive_id: str, sha256: str) -> str:
    return _hash("external", KEY_VERSION, archive_id, sha256, inputs.shared, inputs.code)


def cell_key(
    inputs: KeyInputs, archive: str, image: str, probe: Probe, access: Access = "file", server: str = ""
) -> str:
    """``server``: the image the archive was served from (http modes), which decides the cell too."""
    parts: tuple[Any, ...] = (access,) if access == "file" else (access, server)
    return _hash(
        "cell", KEY_VERSION, archive, image, inputs.probe(probe), *parts, inputs.settings, inputs.shared, inputs.code
    )


def hash_slot(key: str, every: int) -> int:
    """A key's slot by its hash alone: what a key outside tonight's ring gets (see ``ring_slots``)."""
    return int(key[:12], 16) % every


def ring_slots(archive_keys: Iterable[str], every: int) -> dict[str, int]:
    """Each of tonight's archive keys' slot, 0 to ``every`` - 1: the keys in the order of their hashes (a
    ring), cut into ``every`` runs of as many keys as can be, so each night's share is 1/every of the
    archives, give or take one. Independent draws (a hash modulo ``every``) are lumpy: with 258 archives
    over 7 nights the fullest night held a median 1.22 times the mean (``bench/rotation.py``). A key keeps
    its slot while the keys stay; a key that comes or goes moves a few of the others (those next to a cut)
    into the neighbouring slot: such a key is measured once sooner than it would have been, and by ``due``'s
    other rule none waits longer than ``every`` nights."""
    ordered = sorted(set(archive_keys), key=lambda k: (int(k[:12], 16), k))
    return {k: n * every // len(ordered) for n, k in enumerate(ordered)}


def due(slot: int, measured_night: int, night: int, every: int) -> bool:
    """Is a key measured on night ``measured_night`` to be measured again on night ``night``? Each key has a
    slot (``ring_slots``): it is measured again on its slot's night, and in any case once ``every`` nights
    have passed, so a share of about 1/every is measured every night and none goes unmeasured longer than
    ``every`` nights. A cell's slot is its archive's: an archive and all its cells come due on the same
    night, so the other nights need not write that archive at all."""
    if night - measured_night >= every:
        return True
    return night != measured_night and slot == night % every
