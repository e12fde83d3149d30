#!/usr/bin/env python3
"""How evenly the rotation spreads a night's share, and what a release costs it: the slots of the runner
(``keys.ring_slots``: tonight's archive keys in the order of their hashes, cut into equal runs) side by side
with each key's hash modulo the nights (what the runner did before), on random keys, no engine.

    python bench/rotation.py [--archives 258] [--every 7] [--release 28] [--draws 2000]

ARCHIVES is the default matrix's count of archives (the written ones and those from outside). For each of
DRAWS sets of random keys:

- ``fullest_night``: the night with the most archives due, over the mean (1/every of them): the unchanged
  night that costs most in the week. ``emptiest_night`` likewise. Medians over the draws, with the 5th and
  95th percentiles;
- ``moved_by_release``: RELEASE keys replaced by others (an environment's new version: its archives' keys
  change), how many of the other keys changed slot, each of which is measured once sooner than it would have
  been (hash modulo: none).

Prints one ``name=value`` line per figure.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.plan import keys

Slots = Callable[[Sequence[str], int], dict[str, int]]


def by_hash(ks: Sequence[str], every: int) -> dict[str, int]:
    return {k: keys.hash_slot(k, every) for k in ks}


def by_ring(ks: Sequence[str], every: int) -> dict[str, int]:
    return keys.ring_slots(ks, every)


def spread(slots: dict[str, int], every: int) -> tuple[float, float]:
    nights = [0] * every
    for slot in slots.values():
        nights[slot] += 1
    mean = len(slots) / every
    return max(nights) / mean, min(nights) / mean


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p5, p95 = ordered[len(ordered) * 5 // 100], ordered[len(ordered) * 95 // 100]
    return f"{statistics.median(ordered):.3f} (p5 {p5:.3f}, p95 {p95:.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archives", type=int, default=258)
    p.add_argument("--every", type=int, default=7)
    p.add_argument("--release", type=int, default=28, help="keys a release replaces (default 28)")
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--seed", type=int, default=20261205)
    args = p.parse_args(argv)
    if not 0 < args.release < args.archives or args.every < 1 or args.draws < 1:
        p.error("need 0 < --release < --archives, --every >= 1, --draws >= 1")

    rng = random.Random(args.seed)

    def key() -> str:
        return f"{rng.getrandbits(256):064x}"

    schemes: dict[str, Slots] = {"hash": by_hash, "ring": by_ring}
    fullest: dict[str, list[float]] = {name: [] for name in schemes}
    emptiest: dict[str, list[float]] = {name: [] for name in schemes}
    moved: dict[str, list[float]] = {name: [] for name in schemes}
    for _ in range(args.draws):
        ks = [key() for _ in range(args.archives)]
        released = ks[args.release :] + [key() for _ in range(args.release)]
        for name, slots_of in schemes.items():
            slots = slots_of(ks, args.every)
            most, least = spread(slots, args.every)
            fullest[name].append(most)
            emptiest[name].append(least)
            after = slots_of(released, args.every)
            moved[name].append(sum(after[k] != slots[k] for k in ks[args.release :]))
    print(f"# {args.archives} archives over {args.every} nights, {args.draws} draws; a release replaces {args.release}")
    for name in schemes:
        print(f"fullest_night_{name}={summary(fullest[name])}")
        print(f"emptiest_night_{name}={summary(emptiest[name])}")
        print(f"moved_by_release_{name}={summary(moved[name])}")
    print(f"fullest_night_ratio={statistics.median(fullest['hash']) / statistics.median(fullest['ring']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
