"""The browser channel: the npm channel's packages (a web library and what drives a browser, at exact versions,
under ``/opt/npm``) beside Debian's own Chromium, run headless by the probe. Probes that run in a web page
(``zarrita_browser_probe.mjs``) need this image: the library is bundled for the browser with esbuild and
loaded there as an ES module."""

from __future__ import annotations

from runner.channels import npm, steps
from runner.channels.base import Registry
from runner.channels.steps import ImageInput

NEEDS_DEBIAN_BASE = True
VERSIONS_FROM_SUITE = False
TRACKS: Registry | None = npm.TRACKS
RUNS_LOCALLY = False

problem = npm.problem
library = npm.library
exact_version = npm.exact_version
slug_head = npm.slug_head
tracked = npm.tracked
pinned = npm.pinned


def dockerfile(image: ImageInput) -> str:
    """Debian's Node and Chromium, npm for the packages; Python for the harness."""
    return (
        steps.apt(image.apt_update, ["python3", "python3-venv", "nodejs", "npm", "chromium"])
        + steps.venv()
        + steps.npm(image.packages, image.ca_bundle)
        + steps.wheels(image.pip)
    )
