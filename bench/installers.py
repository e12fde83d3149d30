#!/usr/bin/env python3
"""pip or uv in the pip channel's images: each image built cold with either, side by side in one run.

    python bench/installers.py [MATRIX] [--only GLOB] [--rounds N]

The pip channel's images of the matrix (default: matrix.yaml; ``latest`` resolved once, first) are built
from their Debian bases (made before, not timed) ``--rounds`` times with each installer, the installers
taking turns (pip, uv, pip, uv, ...) so that the network's and the machine's moods fall on both:

- ``pip``: the wheels installed by the venv's own pip (``steps.wheels``, what the images did before);
- ``uv``: installed by uv (``steps.uv_wheels``, what they do now), uv itself a step of its own that every
  image on a base shares (so its cost is paid once per base, as in a real cold build).

Before each round every image of both kinds is removed, with its untagged layers; steps that an image outside
the bench shares (the venv on a base) may still come from Docker's layer cache, in both kinds alike. One
``name=value`` line per figure: each kind's median round, the ratio uv/pip per round and its median, and each
image's median seconds with both. Whether the two kinds install the same distributions (names and versions in
the venv, read after each build): any difference is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coldbuild import build_all, make_bases, plan_of

from runner.app import choose_engine
from runner.channels import steps
from runner.engines.engine import Engine, RunSpec
from runner.engines.images import image_tag
from runner.matrix.model import EnvironmentSpec

ROOT = Path(__file__).resolve().parent.parent
KINDS: dict[str, Callable[[Sequence[str]], str]] = {"pip": steps.wheels, "uv": steps.uv_wheels}
UV_STEP = steps.uv_wheels


@contextmanager
def installing(kind: str) -> Iterator[None]:
    """The pip channel's images render (and hash) with ``kind``'s step while inside."""
    setattr(steps, "uv_wheels", KINDS[kind])  # noqa: B010 - the name the pip channel calls it by
    try:
        yield
    finally:
        setattr(steps, "uv_wheels", UV_STEP)  # noqa: B010


def tags(envs: list[EnvironmentSpec], kind: str) -> list[tuple[EnvironmentSpec, str]]:
    """Each environment's tag when its wheels are installed by ``kind`` (the step's text is in the hash)."""
    with installing(kind):
        return [(env, image_tag(env)) for env in envs]


def distributions(engine: Engine, tag: str) -> set[str]:
    done = engine.run(
        RunSpec(
            image=tag,
            command=(
                "/opt/venv/bin/python", "-c",
                "import importlib.metadata as m, json; "
                "print(json.dumps(sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions())))",
            ),
            timeout=120,
        )
    )  # fmt: skip
    return set(json.loads(done.logs.strip().splitlines()[-1])) if done.exit_code == 0 else {f"? {done.logs[-300:]}"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("matrix", type=Path, nargs="?", default=ROOT / "matrix.yaml")
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help="environments whose slug matches")
    p.add_argument("--rounds", type=int, default=2, help="builds of every image with each installer")
    args = p.parse_args(argv)
    plan = plan_of(args.matrix, args.only)
    envs = [ep.env for ep in plan.environments if ep.env.channel == "pip"]
    if not envs:
        sys.exit("no pip-channel environment in the matrix (or --only)")
    engine = choose_engine("docker")
    make_bases(engine, plan)
    images = {kind: tags(envs, kind) for kind in KINDS}
    totals: dict[str, list[float]] = {kind: [] for kind in KINDS}
    per: dict[str, dict[str, list[float]]] = {kind: {env.slug: [] for env in envs} for kind in KINDS}
    installed: dict[str, dict[str, set[str]]] = {}
    for n in range(1, args.rounds + 1):
        for kind in KINDS:
            for other in KINDS:
                for _, tag in images[other]:
                    engine.remove_image(tag)
            print(f"# round {n}, {kind}: building {len(envs)} image(s) from their bases", flush=True)
            with installing(kind):
                seconds, built, _ = build_all(engine, images[kind], None)
            failed = [slug for slug, (_, _, status) in built.items() if status != "ok"]
            print(f"cold_s_{kind}_round{n}={seconds:.1f}  # not ok: {', '.join(failed) or 'none'}", flush=True)
            totals[kind].append(seconds)
            for slug, (_, s, _) in built.items():
                per[kind][slug].append(s)
            installed[kind] = {env.slug: distributions(engine, tag) for env, tag in images[kind]}  # before removal
    for kind in KINDS:
        runs = ", ".join(f"{s:.1f}" for s in totals[kind])
        print(f"cold_s_{kind}={statistics.median(totals[kind]):.1f}  # median of {args.rounds} round(s): {runs}")
    ratios = [u / p for p, u in zip(totals["pip"], totals["uv"], strict=True)]
    print(f"uv_vs_pip={statistics.median(ratios):.2f}  # per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    for env in envs:
        pip_s, uv_s = statistics.median(per["pip"][env.slug]), statistics.median(per["uv"][env.slug])
        print(f"# {env.slug}: pip {pip_s:.1f}s, uv {uv_s:.1f}s ({uv_s / pip_s:.2f})")
    differ = 0
    for env in envs:
        a, b = installed["pip"][env.slug], installed["uv"][env.slug]
        if a != b:
            differ += 1
            print(f"# {env.slug}: only pip's {sorted(a - b)}; only uv's {sorted(b - a)}")
    print(f"images_installing_otherwise={differ}  # of {len(envs)}: the distributions in the venv, last round")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
