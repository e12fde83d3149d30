"""Pure: which share of a run one machine does (``--shard K/N``), (``results/merge.py`` puts the shards together again).

A shard writes the archives of its share of the writer environments (and reads its share of the
``--external`` archives), and every reader environment reads exactly those: cells, archives and benchmark
rows of different shards never overlap, so merging only has to check that the shards belong to one
run and put them together. Shares are balanced by expected cost, longest first (the history's read times
of the previous run where it has them, cell counts otherwise), and depend on nothing but the plan and
those costs, so every machine computes the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def assign(costs: Mapping[str, float], count: int) -> dict[str, int]:
    """Unit -> shard (1-based): longest first onto the least loaded shard; ties broken by name."""
    loads = [0.0] * count
    out: dict[str, int] = {}
    for unit in sorted(costs, key=lambda u: (-costs[u], u)):
        k = min(range(count), key=lambda i: (loads[i], i))
        loads[k] += costs[unit]
        out[unit] = k + 1
    return out


def of_external(archive_id: str, count: int) -> int:
    """The shard that reads an ``--external`` archive: a stable hash of its id (known only at run time)."""
    return int(hashlib.sha256(archive_id.encode()).hexdigest(), 16) % count + 1
