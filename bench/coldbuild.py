#!/usr/bin/env python3
"""What a cold build costs, without the download cache and with it, side by side in one run.

    python bench/coldbuild.py [MATRIX] [--only GLOB] [--cache DIR]

Every environment's image of the matrix (default: matrix.yaml; ``latest`` resolved once, first) is built
three times on the Docker engine, each time from nothing but its Debian base (the environments' images and
their build layers removed first; the bases are made once, before, and not timed):

- ``cold_s_no_cache``: every build downloads for itself (a run's default);
- ``cold_s_cache_empty``: through the download cache (``--download-cache``), starting empty (a first night: it
  fills as it goes, and images after the first that share a wheel or a Debian package already take it from there);
- ``cold_s_cache_warm``: through the filled cache (a new machine that kept ``~/.cache/zipstore-matrix``, or
  every image rebuilt after a change to the runner's Dockerfile).

One ``name=value`` line per figure, with the ratios to ``cold_s_no_cache``, each channel's share and what the
cache served. Each is one build of every image (a cold build cannot be repeated without undoing it; the
network's speed varies from minute to minute): the per-image lines show where the time went. The cache's
folder is a fresh one under ``--cache`` (default: a temporary folder), never the user's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.app import choose_engine
from runner.engines.builder import ImageBuilder
from runner.engines.downloads import Counts
from runner.engines.engine import Engine
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix
from runner.matrix.model import EnvironmentSpec
from runner.plan.planner import Plan, make_plan
from runner.resources import read_ca_bundle
from runner.versions import index as indexes
from runner.versions import resolve

ROOT = Path(__file__).resolve().parent.parent
MODES = ("no_cache", "cache_empty", "cache_warm")


def plan_of(matrix_path: Path, only: list[str]) -> Plan:
    matrix = load_matrix(matrix_path, known_fixtures=catalog())
    mirror = os.environ.get("ZIPSTORE_DEBIAN_MIRROR", indexes.DEFAULT_MIRROR)
    matrix, _ = resolve.resolve(matrix, indexes.PackageIndex(mirror), {}, only=only)
    return make_plan(matrix, only)


def build_all(
    engine: Engine, images: list[tuple[EnvironmentSpec, str]], downloads: Path | None
) -> tuple[float, dict[str, tuple[str, float, str]], Counts | None]:
    """Remove every (environment, tag)'s image, then build them all: (seconds, slug -> (channel, seconds,
    status), the cache's counts)."""
    for _, tag in images:
        engine.remove_image(tag)  # and its untagged layers: the next build starts from the base
    builder = ImageBuilder(
        engine, ca=read_ca_bundle(), rebuild=False, allow_bootstrap=True, progress=lambda _: None,
        downloads=downloads,
    )  # fmt: skip
    per: dict[str, tuple[str, float, str]] = {}
    started = time.monotonic()
    for n, (env, tag) in enumerate(images, 1):
        one = time.monotonic()
        result = builder.ensure(env, tag, f"{n}/{len(images)}")
        per[env.slug] = (env.channel, time.monotonic() - one, result.status.value)
        print(f"#   {env.slug}: {per[env.slug][1]:.1f}s {result.status.value}", flush=True)
    seconds = time.monotonic() - started
    return seconds, per, builder.close()


def make_bases(engine: Engine, plan: Plan) -> None:
    """The Debian bases of the plan's images, made before and not timed."""
    bases = ImageBuilder(engine, ca=read_ca_bundle(), rebuild=False, allow_bootstrap=True, progress=print)
    started = time.monotonic()
    for base in sorted({ep.env.base for ep in plan.environments}):
        bases.base(base)
    print(f"# bases ready in {time.monotonic() - started:.0f}s (not timed below)", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("matrix", type=Path, nargs="?", default=ROOT / "matrix.yaml")
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help="environments whose slug matches")
    p.add_argument("--cache", type=Path, default=None, help="where the bench's download cache is made")
    args = p.parse_args(argv)
    plan = plan_of(args.matrix, args.only)
    engine = choose_engine("docker")
    make_bases(engine, plan)
    images = [(ep.env, ep.tag) for ep in plan.environments]
    folder = Path(tempfile.mkdtemp(prefix="coldbuild-", dir=args.cache))
    downloads = folder / "downloads"
    figures: dict[str, float] = {}
    per_mode: dict[str, dict[str, tuple[str, float, str]]] = {}
    try:
        for mode in MODES:
            print(f"# {mode}: building {len(plan.environments)} image(s) from their bases", flush=True)
            seconds, per, counts = build_all(engine, images, None if mode == "no_cache" else downloads)
            figures[mode], per_mode[mode] = seconds, per
            failed = [slug for slug, (_, _, status) in per.items() if status != "ok"]
            print(f"cold_s_{mode}={seconds:.1f}  # {len(per)} image(s), not ok: {', '.join(failed) or 'none'}")
            if counts is not None:
                print(
                    f"{mode}_hits={counts.hits}  # {counts.bytes_from_cache / 1e6:.0f} MB from the cache; "
                    f"{counts.misses} file(s) fetched ({counts.bytes_fetched / 1e6:.0f} MB), "
                    f"{counts.pages} index page(s) forwarded"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for mode in MODES[1:]:
        print(f"cache_{mode.removeprefix('cache_')}_vs_no_cache={figures[mode] / figures['no_cache']:.2f}")
    by_channel: dict[str, dict[str, float]] = defaultdict(dict)
    for mode, per in per_mode.items():
        for channel in sorted({c for c, _, _ in per.values()}):
            by_channel[channel][mode] = sum(s for c, s, _ in per.values() if c == channel)
    for channel, sums in by_channel.items():
        n = sum(1 for c, _, _ in per_mode["no_cache"].values() if c == channel)
        cells = ", ".join(f"{mode} {sums[mode]:.0f}s" for mode in MODES)
        print(f"# {channel} ({n} image(s)): {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
