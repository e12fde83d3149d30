"""The probe catalog, read on the host. The probe *scripts* in this folder run inside containers and
import nothing from ``runner``; this module only says which script does what, for which library.

A probe applies to an environment when the environment declares the probe's library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.specifiers import SpecifierSet


@dataclass(frozen=True, kw_only=True)
class Probe:
    id: str
    role: Literal["writer", "reader"]
    library: str
    script: str
    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    #: PEP 440 specifier the library must meet; checked at plan time against exact pins only.
    requires: str = ""


WRITERS: tuple[Probe, ...] = (
    Probe(
        id="zarr-v2",
        role="writer",
        library="zarr",
        script="zarr_probe.py",
        label="zarr ZipStore, format 2",
        options={"zarr_format": 2},
    ),
    Probe(
        id="zarr-v3",
        role="writer",
        library="zarr",
        script="zarr_probe.py",
        label="zarr ZipStore, format 3",
        options={"zarr_format": 3},
        requires=">=3.0.0a4",
    ),
)

READERS: tuple[Probe, ...] = (
    Probe(
        id="zarr-zipstore",
        role="reader",
        library="zarr",
        script="zarr_probe.py",
        label="zarr ZipStore",
        options={"method": "zipstore"},
    ),
    Probe(
        id="zarr-fsspec",
        role="reader",
        library="zarr",
        script="zarr_probe.py",
        label="zarr on zip:: (fsspec)",
        options={"method": "fsspec"},
    ),
)

ALL: Mapping[str, Probe] = {p.id: p for p in WRITERS + READERS}


def applicable(probes: tuple[Probe, ...], pins: Mapping[str, str | None]) -> tuple[Probe, ...]:
    """Probes whose library the environment declares, minus those its exact pin rules out.

    ``pins`` maps each declared library to its exact pinned version, or None when not pinned (then the
    probe runs and says ``unsupported`` itself if the installed version cannot do it).
    """
    out = []
    for probe in probes:
        if probe.library not in pins:
            continue
        pinned = pins[probe.library]
        if (
            probe.requires
            and pinned is not None
            and not SpecifierSet(probe.requires).contains(pinned, prereleases=True)
        ):
            continue
        out.append(probe)
    return tuple(out)
