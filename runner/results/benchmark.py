"""Pure: benchmark probe records -> summarised store timings, and comparisons between two runs.

The probe records raw samples only; every statistic is computed here, on the host, by ``runner.results.stats``,
so the numbers on the page can be recomputed from ``results.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.results import stats
from runner.results.model import MEASURES, BenchmarkResult, Measure, Status, StoreTiming

BASELINE = "raw"
#: Display order and names of the stores (the probe's ids).
STORES: Mapping[str, str] = {
    "raw": "raw file (baseline)",
    "zipstore": "ZipStore",
    "directory": "directory store",
    "memory": "zarr MemoryStore",
    "fsspec-memory": "fsspec memory://",
}
OPERATIONS: tuple[Measure, ...] = ("write", "read")
STATUS = {"ok": Status.PASS, "error": Status.FAIL}  # probe words -> statuses; others are already Status values


def store_status(word: Any) -> Status:
    """A store's status from the probe's word; a word outside the protocol is the probe misbehaving."""
    if word in STATUS:
        return STATUS[word]
    try:
        return Status(word)
    except ValueError:
        return Status.CRASH


def _summary(samples: list[float]) -> stats.Summary | None:
    return stats.summarize(samples) if samples else None


def store_timings(record: Mapping[str, Any]) -> list[StoreTiming]:
    """Every store of a benchmark record, summarised, with ratios to the raw file of the same round."""
    found: Mapping[str, Mapping[str, Any]] = record.get("stores", {})
    nbytes = int(record.get("nbytes") or 0)
    raw = found.get(BASELINE, {})
    out = []
    for name in sorted(found, key=lambda s: list(STORES).index(s) if s in STORES else len(STORES)):
        entry = found[name]
        status = store_status(entry.get("status", "error"))
        timing = StoreTiming(
            store=name,
            status=status,
            reason=str(entry.get("message", "")),
            stored_bytes=entry.get("stored_bytes"),
            samples={op: list(entry.get(f"{op}_s", [])) for op in OPERATIONS},
        )
        if status is Status.PASS:
            for op in OPERATIONS:
                samples = timing.samples[op]
                summary = _summary(samples)
                setattr(timing, op, summary)
                if summary is not None and nbytes:
                    setattr(timing, f"{op}_mbps", stats.throughput(nbytes, summary))
                raw_samples = list(raw.get(f"{op}_s", []))
                if raw.get("status") == "ok" and len(raw_samples) == len(samples) and samples:
                    setattr(timing, f"{op}_ratio", _summary(stats.paired_ratios(samples, raw_samples)))
        out.append(timing)
    return out


def fill_from_record(result: BenchmarkResult, record: Mapping[str, Any]) -> None:
    """Copy what the probe measured into ``result`` (whose status the caller has already decided)."""
    result.version = str(record.get("version", result.version))
    result.zarr_format = record.get("zarr_format")
    result.shape = list(record.get("shape", []))
    result.dtype = str(record.get("dtype", ""))
    result.nbytes = int(record.get("nbytes") or 0)
    result.chunks = list(record.get("chunks", []))
    result.compressor = str(record.get("compressor", ""))
    result.warmup = int(record.get("warmup") or 0)
    result.repeats = int(record.get("repeats") or 0)
    result.setup = dict(record.get("setup", {}))
    result.stores = store_timings(record)


# ------------------------------------------------------------------------------- two runs compared


@dataclass(frozen=True, kw_only=True)
class Agreement:
    env: str
    dataset: str
    store: str
    measure: Measure
    first: stats.Summary
    second: stats.Summary

    @property
    def agree(self) -> bool:
        return self.first.overlaps(self.second)

    @property
    def change(self) -> float:
        """Second median over first."""
        return self.second.median / self.first.median if self.first.median else float("inf")


def compare(first: Iterable[BenchmarkResult], second: Iterable[BenchmarkResult]) -> list[Agreement]:
    """Every measure present in both runs, paired by environment, dataset and store."""
    later = {(b.env, b.dataset): b for b in second}
    out = []
    for a in first:
        b = later.get((a.env, a.dataset))
        if b is None:
            continue
        for timing in a.stores:
            other = b.store(timing.store)
            if other is None:
                continue
            for measure in MEASURES:
                x, y = timing.summary(measure), other.summary(measure)
                if x and y:
                    out.append(
                        Agreement(
                            env=a.env,
                            dataset=a.dataset,
                            store=timing.store,
                            measure=measure,
                            first=x,
                            second=y,
                        )
                    )
    return out
