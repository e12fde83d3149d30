"""Pure: the page's "over HTTP" view. Each reader probe against each server (a file on disk, a server that
honours Range, one that ignores it), and what one chunk costs per reader and archive layout, from the
requests and bytes the servers logged for each cell."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from runner.probes import ACCESS, Access
from runner.results.model import ArchiveResult, CellResult, Results, Status

#: what each access mode means, for the table's header
ACCESS_WORDS: dict[Access, str] = {
    "file": "the archive as a local file",
    "http": "served by nginx, Range requests honoured (206)",
    "http-norange": "served by nginx with max_ranges 0: Range ignored, every GET answered 200 with the whole body",
    "http-fault": "served by nginx that answers each read's first 4 requests, then 503 (its rate limit)",
    "http-truncated": "served by nginx whose upstream stalls after 8 KiB of each body: longer responses are cut off",
    "http-nocors": "served by nginx honouring Range but sending no CORS headers (only a browser cares)",
}


@dataclass(kw_only=True)
class ServedRow:
    """One reader probe: its cells' outcomes per access mode."""

    library: str
    version: str
    env: str
    probe: str
    by_access: dict[Access, dict[Status, int]] = field(default_factory=dict)

    def tried(self, access: Access) -> int:
        return sum(self.by_access.get(access, {}).values())

    def passed(self, access: Access) -> int:
        return self.by_access.get(access, {}).get(Status.PASS, 0)

    def css(self, access: Access) -> str:
        tried, passed = self.tried(access), self.passed(access)
        if not tried:
            return ""
        return Status.PASS.value if passed == tried else Status.FAIL.value if not passed else Status.MISMATCH.value


@dataclass(kw_only=True)
class ChunkCost:
    """What a reader's passing reads of one archive layout cost over HTTP (medians over the archives)."""

    reader: str
    access: Access
    layout: str
    cells: int
    requests: float
    bytes: float
    chunk_requests: float | None
    chunk_bytes: float | None
    chunk_fraction: float | None


def layout(archive: ArchiveResult) -> str:
    """The properties of an archive that decide what a ranged read costs."""
    checks = archive.zip_checks
    if checks is None:
        return "unchecked"
    methods = sorted(checks.compression) or ["?"]
    words = ["+".join(m.upper() for m in methods), "ZIP64" if checks.zip64 else "no ZIP64"]
    if checks.root_metadata_first:
        words.append("metadata first")
    if "shard" in archive.fixture:
        words.append("sharded")
    return " · ".join(words)


def served_rows(results: Results) -> list[ServedRow]:
    """Every reader probe that was given any archive over HTTP, with its outcomes per access mode."""
    over_http = {(c.reader.env, c.reader.probe) for c in results.cells if c.access != "file"}
    rows: dict[tuple[str, str], ServedRow] = {}
    for cell in results.cells:
        key = (cell.reader.env, cell.reader.probe)
        if key not in over_http or cell.status is Status.SKIPPED:
            continue
        row = rows.setdefault(
            key, ServedRow(library=cell.reader.library, version=cell.reader.version, env=key[0], probe=key[1])
        )
        counts = row.by_access.setdefault(cell.access, {})
        counts[cell.status] = counts.get(cell.status, 0) + 1
    return list(rows.values())


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def chunk_costs(results: Results) -> list[ChunkCost]:
    """Per reader, access mode and archive layout: the median cost of a passing read and of one chunk."""
    archives = {(a.env, a.probe, a.fixture): a for a in results.archives}
    groups: dict[tuple[str, Access, str], list[CellResult]] = {}
    for cell in results.cells:
        if cell.http is None or cell.status is not Status.PASS:
            continue
        archive = archives.get((cell.writer.env, cell.writer.probe, cell.fixture))
        if archive is None:
            continue
        reader = f"{cell.reader.library} {cell.reader.version} · {cell.reader.probe}"
        groups.setdefault((reader, cell.access, layout(archive)), []).append(cell)
    out = []
    for (reader, access, shape), cells in sorted(
        groups.items(), key=lambda g: (g[0][0], ACCESS.index(g[0][1]), g[0][2])
    ):
        costs = [c.http for c in cells if c.http is not None]
        out.append(
            ChunkCost(
                reader=reader,
                access=access,
                layout=shape,
                cells=len(cells),
                requests=statistics.median(h.requests for h in costs),
                bytes=statistics.median(h.bytes for h in costs),
                chunk_requests=_median(h.chunk_requests for h in costs),
                chunk_bytes=_median(h.chunk_bytes for h in costs),
                chunk_fraction=_median(h.chunk_fraction for h in costs),
            )
        )
    return out
