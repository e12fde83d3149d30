"""Pure: an environment -> the build context of its image, tagged by a hash of what goes into it.

The tag changes exactly when the image's content would: base reference, channel, and the Dockerfile
as rendered (the template, the channel's steps, packages and the versions resolved for them), and the files
copied in. The CA bundle is handed in at build time but kept out of
the hash: it changes how packages are fetched, not what is installed.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from functools import cache

import jinja2

from runner.channels import ImageInput, channel
from runner.engines.engine import BuildContext, LocalRecipe
from runner.matrix.model import EnvironmentSpec, Track
from runner.resources import data_dir, probes_dir

#: Bump when the image layout changes in a way the template text does not show.
IMAGE_FORMAT = 1
REPOSITORY = "zipstore-matrix/env"
PYTHON = "/opt/venv/bin/python"


@dataclass(frozen=True, kw_only=True)
class ImagePlan:
    env: EnvironmentSpec
    tag: str
    content_hash: str
    dockerfile: str
    files: dict[str, bytes]


@cache
def _template_source() -> str:
    return (data_dir("docker") / "Dockerfile.j2").read_text(encoding="utf-8")


@cache
def _inspect_script() -> bytes:
    return (probes_dir() / "inspect_env.py").read_bytes()


def _render(env: EnvironmentSpec, with_ca: bool, base_ref: str) -> str:
    jenv = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    jenv.filters["shell"] = shlex.quote
    image = ImageInput(
        packages=env.packages,
        pip=env.pip,
        versions=_suite_versions(env),
        # an expired Release file (a mirror that stopped syncing) is used as resolved, and said so
        apt_update="apt-get update" + (" -o Acquire::Check-Valid-Until=false" if _stale(env) else ""),
        ca_bundle=with_ca,
    )
    return jenv.from_string(_template_source()).render(
        env=env, base=base_ref, ca_bundle=with_ca, install=channel(env.channel).dockerfile(image).rstrip("\n")
    )


def _suite_versions(env: EnvironmentSpec) -> dict[str, str]:
    """The version the suite's index gave each package of the environment, when the plan was made."""
    return {r.package: r.version for r in env.resolved if r.asked is Track.SUITE and r.version}


def _stale(env: EnvironmentSpec) -> bool:
    return any(r.stale for r in env.resolved)


def content_hash(env: EnvironmentSpec) -> str:
    """What goes into the image: the Dockerfile as the channel renders it (packages, resolved versions, the
    template), and the files copied in. Not the CA bundle nor where the base lives: how, not what."""
    payload: dict[str, object] = {
        "format": IMAGE_FORMAT,
        "base": env.base,
        "channel": env.channel,
        "dockerfile": _render(env, with_ca=False, base_ref=env.base),
        "inspect_env.py": hashlib.sha256(_inspect_script()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def image_tag(env: EnvironmentSpec) -> str:
    return f"{REPOSITORY}:{env.slug}-{content_hash(env)[:12]}"


def image_plan(env: EnvironmentSpec, ca_bundle: bytes | None = None, base_ref: str | None = None) -> ImagePlan:
    """``base_ref`` is where the base really lives (a bootstrapped ``zipstore-matrix/debian:SUITE``);
    it does not enter the hash, which names what was asked for."""
    files = {"inspect_env.py": _inspect_script()}
    if ca_bundle:
        files["ca-bundle.crt"] = ca_bundle
    return ImagePlan(
        env=env,
        tag=image_tag(env),
        content_hash=content_hash(env),
        dockerfile=_render(env, with_ca=bool(ca_bundle), base_ref=base_ref or env.base),
        files=files,
    )


def build_context(plan: ImagePlan) -> BuildContext:
    return BuildContext(
        tag=plan.tag,
        dockerfile=plan.dockerfile,
        files=plan.files,
        labels={"org.zipstore-matrix.env": plan.env.slug, "org.zipstore-matrix.hash": plan.content_hash},
        local=LocalRecipe(
            python=plan.env.python,
            requirements=plan.env.packages + plan.env.pip,
            unsupported="" if channel(plan.env.channel).RUNS_LOCALLY else f"{plan.env.channel} packages need Docker",
        ),
    )
