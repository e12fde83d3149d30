"""Pure: turn what a probe process did and said into a status with a reason.

A probe reports observations; the verdict (pass or mismatch, and what differs) is reached here, on the
host, against the writer's record, so the rules live in one tested place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.results.model import Outcome, Status

#: Attributes that carry metadata for a specific library rather than user data.
RESERVED_ATTRS = frozenset({"_ARRAY_DIMENSIONS"})


def process_outcome(run: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> Outcome | None:
    """The status when the process itself went wrong, or None when the probe's record stands."""
    if run is None:
        return Outcome(status=Status.CRASH, reason="the probe never reported (its container died or was killed)")
    stderr = str(run.get("stderr_tail", ""))
    if run.get("timed_out"):
        return Outcome(
            status=Status.TIMEOUT,
            reason=f"no answer within the probe timeout ({run.get('seconds', 0):.0f}s)",
            detail=stderr,
        )
    if run.get("oom_killed"):
        return Outcome(
            status=Status.OOM,
            reason="killed by the kernel OOM killer (container memory limit)",
            detail=stderr,
        )
    if run.get("signal"):
        last = _last_line(stderr)
        return Outcome(
            status=Status.CRASH,
            reason=f"killed by {run['signal']}" + (f": {last}" if last else ""),
            detail=stderr,
        )
    if record is None:
        last = _last_line(stderr) or "no output"
        return Outcome(
            status=Status.CRASH,
            reason=f"exited {run.get('exit_code')} without a record: {last}",
            detail=stderr,
        )
    return None


def record_outcome(record: Mapping[str, Any]) -> Outcome | None:
    """The status when the probe says it could not do the job, or None when it did."""
    status = record.get("status")
    if status == "unsupported":
        return Outcome(
            status=Status.UNSUPPORTED, reason=str(record.get("message", "")), detail=str(record.get("traceback", ""))
        )
    if status == "skipped":
        return Outcome(status=Status.SKIPPED, reason=str(record.get("message", "")))
    if status == "error":
        error_type = str(record.get("error_type", "")).removeprefix("builtins.")
        reason = f"{error_type}: {record.get('message', '')}" if error_type else str(record.get("message", ""))
        return Outcome(status=Status.FAIL, reason=reason, detail=str(record.get("traceback", "")))
    if status != "ok":
        return Outcome(status=Status.CRASH, reason=f"probe wrote a record with unknown status {status!r}")
    return None


def compare_outcome(expected: Mapping[str, Any], record: Mapping[str, Any]) -> Outcome:
    """The verdict on what a reader read, once its process and probe are known to have done the job.

    Wrong *data* (values, shape, dtype, a missing array or key, wrong bytes) is a mismatch. Metadata that
    differs (chunks, fill value, attributes, dimension names) leaves the data right: a pass, with each
    difference as a warning, because a pass with warnings is not a clean pass.
    """
    if "arrays" in record and not record["arrays"] and not expected.get("arrays"):
        return Outcome(
            status=Status.FAIL,
            reason="the reader reported success but read no array (the archive's metadata declares none)",
        )
    found = compare(expected, record)
    if found.data:
        shown = found.data[:6] + ([f"and {len(found.data) - 6} more"] if len(found.data) > 6 else [])
        return Outcome(
            status=Status.MISMATCH,
            reason="; ".join(shown),
            detail="\n".join(found.data + found.metadata),
            warnings=tuple(f"metadata: {m}" for m in found.metadata),
        )
    return Outcome(status=Status.PASS, warnings=tuple(f"metadata: {m}" for m in found.metadata))


@dataclass(frozen=True)
class Differences:
    data: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.data or self.metadata)


def compare(expected: Mapping[str, Any], observed: Mapping[str, Any]) -> Differences:
    """Every way ``observed`` differs from ``expected``, each said precisely enough to act on.

    Only what ``expected`` states is compared: an archive from outside has shapes and dtypes from its
    metadata but no known values (those are judged by :func:`consensus`).
    """
    found = Differences()
    if "keys" in observed:
        found.data.extend(_key_differences(expected.get("keys", {}), observed["keys"]))
    if "arrays" not in observed:
        return found  # a raw-bytes reader: the keys are what it read
    got_arrays = observed["arrays"]
    for path, want in expected.get("arrays", {}).items():
        got = got_arrays.get(path)
        if got is None:
            found.data.append(f"array {path!r}: not found by the reader")
            continue
        where = f"array {path!r}"
        if list(got.get("shape", [])) != list(want["shape"]):
            found.data.append(f"{where}: shape {tuple(got.get('shape', []))} != expected {tuple(want['shape'])}")
        if "dtype" in want and got.get("dtype") != want["dtype"]:
            found.data.append(f"{where}: dtype {got.get('dtype')} != expected {want['dtype']}")
        if "sha256" in want and got.get("sha256") != want["sha256"]:
            detail = ""
            if "nan_count" in want and got.get("nan_count") != want["nan_count"]:
                detail = f" (NaN count {got.get('nan_count')} vs {want['nan_count']}: fill/mask decoding?)"
            got_sha, want_sha = str(got.get("sha256"))[:12], want["sha256"][:12]
            found.data.append(f"{where}: values differ, sha256 {got_sha}… != {want_sha}…{detail}")
        if got.get("decoded_mismatch"):
            found.data.append(f"{where}: {got['decoded_mismatch']}")
        if "chunks" in want and got.get("chunks") is not None and list(got["chunks"]) != list(want["chunks"]):
            found.metadata.append(f"{where}: chunks {tuple(got['chunks'])} != expected {tuple(want['chunks'])}")
        if "fill_value" in want and "fill_value" in got and not _same_scalar(got["fill_value"], want["fill_value"]):
            found.metadata.append(f"{where}: fill_value {got['fill_value']!r} != expected {want.get('fill_value')!r}")
        if "attrs" in want and "attrs" in got:
            found.metadata.extend(f"{where}: {d}" for d in _attr_differences(want.get("attrs", {}), got["attrs"]))
        if (
            got.get("dimension_names") is not None
            and want.get("dimension_names") is not None
            and list(got["dimension_names"]) != list(want["dimension_names"])
        ):
            found.metadata.append(
                f"{where}: dimension names {got['dimension_names']} != expected {want['dimension_names']}"
            )
    if "attrs" in expected and "attrs" in observed:
        root = _attr_differences(expected.get("attrs", {}), observed["attrs"])
        found.metadata.extend(f"root group: {d}" for d in root)
    return found


def _key_differences(want: Mapping[str, str | None], got: Mapping[str, str]) -> list[str]:
    """Keys a raw reader listed against the archive's; an entry the checks could not read, or the reader
    listed without reading (None: a part read), is not compared byte for byte."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(
        k for k in set(want) & set(got) if want[k] is not None and got[k] is not None and want[k] != got[k]
    )
    out = []
    if missing:
        out.append(f"{len(missing)} key(s) in the archive not listed by the reader, e.g. {missing[0]!r}")
    if extra:
        out.append(f"{len(extra)} key(s) listed that the archive does not hold, e.g. {extra[0]!r}")
    if changed:
        out.append(f"{len(changed)} key(s) read with different bytes, e.g. {changed[0]!r}")
    return out


def _attr_differences(want: Mapping[str, Any], got: Mapping[str, Any]) -> list[str]:
    got = {k: v for k, v in got.items() if k not in RESERVED_ATTRS}
    want = {k: v for k, v in want.items() if k not in RESERVED_ATTRS}
    out = []
    for key in sorted(set(want) | set(got)):
        if key not in got:
            out.append(f"attribute {key!r} missing")
        elif key not in want:
            out.append(f"unexpected attribute {key!r}={got[key]!r}")
        elif got[key] != want[key]:
            out.append(f"attribute {key!r}={got[key]!r} != expected {want[key]!r}")
    return out


def _same_scalar(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, str) and x in ("NaN", "nan"):
            return "NaN"
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, bool):
            return x
        if isinstance(x, (int, float)):
            return float(x)
        return x

    return bool(norm(a) == norm(b))


#: Warning categories that announce API changes rather than say anything about the data read or written.
NOTICE_CATEGORIES = ("DeprecationWarning", "PendingDeprecationWarning", "FutureWarning")


def split_warnings(warnings: list[str]) -> tuple[list[str], list[str]]:
    """(warnings that put a ⚠ on a cell, notices that are only recorded), by the category prefix."""
    notices = [w for w in warnings if w.split(":", 1)[0] in NOTICE_CATEGORIES]
    return [w for w in warnings if w not in notices], notices


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def consensus(readings: Mapping[str, Mapping[str, str]]) -> dict[str, Outcome]:
    """Judge values nobody recorded by agreement: cell id -> mismatch for readers in the minority.

    ``readings`` maps each cell that read the archive cleanly to {array path: sha256}. Per array, the
    value read by a strict majority of those readers stands; a reader that read something else is a
    mismatch, said with the counts. Without a strict majority nobody is judged.
    """
    verdicts: dict[str, list[str]] = {}
    paths = sorted({p for values in readings.values() for p in values})
    for path in paths:
        votes: dict[str, list[str]] = {}
        for cell, values in readings.items():
            if path in values:
                votes.setdefault(values[path], []).append(cell)
        total = sum(len(cells) for cells in votes.values())
        winner, backers = max(votes.items(), key=lambda kv: len(kv[1]))
        if len(votes) < 2 or len(backers) * 2 <= total:
            continue
        for sha, cells in votes.items():
            if sha != winner:
                for cell in cells:
                    verdicts.setdefault(cell, []).append(
                        f"array {path!r}: values differ from the majority reading "
                        f"(sha256 {sha[:12]}… vs {winner[:12]}…, read by {len(backers)} of {total} readers)"
                    )
    return {
        cell: Outcome(status=Status.MISMATCH, reason="; ".join(d), detail="\n".join(d)) for cell, d in verdicts.items()
    }
