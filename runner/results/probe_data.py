"""What the host makes of a probe's own JSON: the ZIP checks' findings and a probe's timings, built field by
field from untrusted text (a field of the wrong type is left out, never trusted) into typed records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

T = TypeVar("T")


class Timings(TypedDict, total=False):
    """What a probe timed, in seconds (a dict because it is the probe's JSON, kept as it is in results.json)."""

    write_s: float  # the writer: from opening the store to the archive closed
    open_s: float  # a reader: opening the archive
    read_s: float  # a reader: the median of its timed reads
    read_samples: list[float]  # every timed read
    keys: int  # the raw key reader: how many keys it read


def timings(value: object) -> Timings:
    """A probe's timings (untrusted): finite, non-negative numbers under the known names; the rest left out."""
    out = Timings()
    if not isinstance(value, Mapping):
        return out
    for name in ("write_s", "open_s", "read_s"):
        seconds = _seconds(value.get(name))
        if seconds is not None:
            out[name] = seconds
    samples = value.get("read_samples")
    if isinstance(samples, list):
        out["read_samples"] = [s for s in (_seconds(v) for v in samples[:10_000]) if s is not None]
    keys = _of(int, value.get("keys"))
    if keys is not None:
        out["keys"] = keys
    return out


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


@dataclass(frozen=True, kw_only=True)
class Rfc9:
    """How an archive meets OME-Zarr RFC-9 (single-file OME-Zarr): each check, what differs, a verdict."""

    conformant: bool
    musts: bool  # the MUSTs hold: a root zarr.json, no nested zip
    checks: dict[str, bool]
    differs: list[str]
    verdict: str  # "RFC-9 conformant", "meets the MUSTs; ...", "not RFC-9: ..."


@dataclass(frozen=True, kw_only=True)
class ZipChecks:
    """What the ZIP-level checks found in an archive. They run in a container (``probes/zipinspect.py``);
    their record is untrusted text, made into this record field by field (:meth:`from_record`)."""

    checked: bool  # False: the checks did not complete (the first problem says why)
    problems: list[str] = field(default_factory=list)  # what a reader may trip on: a warning on every cell
    notes: list[str] = field(default_factory=list)  # departures from the single-file conventions
    valid_zip: bool | None = None
    entries: int | None = None
    directories: int | None = None
    duplicates: list[str] = field(default_factory=list)
    duplicates_differing: list[str] = field(default_factory=list)
    crc_ok: bool | None = None
    crc_bad_member: str | None = None
    crc_bad_members: list[str] = field(default_factory=list)
    #: chunk entries of uncompressed arrays whose size is not chunk shape × item size
    chunk_size_wrong: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    zip64: bool | None = None
    compression: dict[str, int] = field(default_factory=dict)
    root_metadata: list[str] = field(default_factory=list)
    first_entry: str | None = None
    root_metadata_first: bool | None = None
    comment_bytes: int | None = None
    rfc9: Rfc9 | None = None

    @classmethod
    def unchecked(cls, why: str) -> ZipChecks:
        return cls(checked=False, problems=[f"the ZIP checks did not complete: {why}"])

    @classmethod
    def from_record(cls, facts: Mapping[str, Any], checked: bool = True) -> ZipChecks:
        """From the checker's record (or a ``results.json``): a field of the wrong type is left out, never
        trusted."""
        rfc9 = facts.get("rfc9")
        return cls(
            checked=facts.get("checked", checked) is True,
            problems=_strings(facts.get("problems")),
            notes=_strings(facts.get("notes")),
            valid_zip=_of(bool, facts.get("valid_zip")),
            entries=_of(int, facts.get("entries")),
            directories=_of(int, facts.get("directories")),
            duplicates=_strings(facts.get("duplicates")),
            duplicates_differing=_strings(facts.get("duplicates_differing")),
            crc_ok=_of(bool, facts.get("crc_ok")),
            crc_bad_member=_of(str, facts.get("crc_bad_member")),
            crc_bad_members=_strings(facts.get("crc_bad_members")),
            chunk_size_wrong=_strings(facts.get("chunk_size_wrong")),
            unreadable=_strings(facts.get("unreadable")),
            capped=_strings(facts.get("capped")),
            zip64=_of(bool, facts.get("zip64")),
            compression=_counts(facts.get("compression")),
            root_metadata=_strings(facts.get("root_metadata")),
            first_entry=_of(str, facts.get("first_entry")),
            root_metadata_first=_of(bool, facts.get("root_metadata_first")),
            comment_bytes=_of(int, facts.get("comment_bytes")),
            rfc9=_rfc9(rfc9) if isinstance(rfc9, Mapping) else None,
        )


def _of(kind: type[T], value: object) -> T | None:
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def _rfc9(data: Mapping[str, Any]) -> Rfc9 | None:
    checks = data.get("checks")
    verdict = data.get("verdict")
    if not isinstance(checks, Mapping) or not isinstance(verdict, str):
        return None
    return Rfc9(
        conformant=data.get("conformant") is True,
        musts=data.get("musts") is True,
        checks={str(k): v for k, v in checks.items() if isinstance(v, bool)},
        differs=_strings(data.get("differs")),
        verdict=verdict,
    )
