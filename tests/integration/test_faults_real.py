"""Faults injected into real runs (the real engine, the real CLI): the engine lost mid-run, SIGTERM,
Ctrl-C, a container removed from outside, a full work disk. Each run must stop with its own exit code,
keep a valid results.json, leave no container behind, and be completed by --resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.engines.docker_engine import DockerEngine
from runner.engines.engine import OWNER_LABEL
from runner.results.model import Results, Status
from tests.support.real import INTEGRATION as HERE
from tests.support.real import ROOT, run_in_container, selftest, wait_until

pytestmark = pytest.mark.integration
SMALL = HERE / "small.yaml"
DOCKER_SOCKET = "/var/run/docker.sock"


class SocketProxy:
    """A unix-socket relay to the Docker daemon: stopping it is, for its clients, the engine going away."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: socket.socket | None = None
        self.open: list[socket.socket] = []

    def start(self) -> str:
        self.path.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(64)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()
        return f"unix://{self.path}"

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(DOCKER_SOCKET)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.path.unlink(missing_ok=True)
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.open = []


def _like_a_background_job() -> None:
    """Start the runner with SIGINT ignored, as a shell's background job (and many CI launchers) would: the
    runner must still stop on SIGINT, by its own handler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Run:
    """``python -m runner small.yaml`` in a subprocess, its log watched for a phase to start."""

    def __init__(self, out: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "runner", str(SMALL), "--out", str(out), "--no-benchmark", *extra]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_like_a_background_job,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n" + "".join(self.lines)
            time.sleep(0.05)

    def finish(self, timeout: float = 900) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    @property
    def log(self) -> str:
        return "".join(self.lines)


def leftovers(engine: DockerEngine, run: Run) -> list[Any]:
    """Containers a (finished) runner process left behind."""
    owner = f"{socket.gethostname()}:{run.proc.pid}"
    return list(engine.client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"}))


def reading(engine: DockerEngine, run: Run) -> None:
    """Wait until the run has a reader's container running (the moment to pull the plug)."""
    owner = f"{socket.gethostname()}:{run.proc.pid}"
    labels = [f"{OWNER_LABEL}={owner}", "org.zipstore-matrix.phase=read"]
    wait_until(lambda: engine.client.containers.list(filters={"label": labels}), "a reader's container")


def valid_unfinished(out: Path) -> Results:
    results = Results.read(out / "results.json")
    assert results.run.finished == "" and results.archives, "the write phase's archives were saved"
    return results


def resume_completes(out: Path, stopped: Results, env: dict[str, str] | None = None) -> Results:
    run = Run(out, "--resume", env=env)
    assert run.finish() == 0, run.log
    done = Results.read(out / "results.json")
    assert done.run.id == stopped.run.id and done.run.finished and done.run.resumed
    assert {c.id for c in stopped.cells} <= {c.id for c in done.cells}
    assert len(done.cells) == len({c.id for c in done.cells}) > len(stopped.cells)
    assert {c.status for c in done.cells} <= {Status.PASS, Status.UNSUPPORTED, Status.SKIPPED}
    return done


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[SocketProxy]:
    relay = SocketProxy(Path(f"/tmp/zipstore-proxy-{os.getpid()}.sock"))
    yield relay
    relay.stop()


def test_engine_lost_mid_run_is_exit_6_with_results_saved_then_resumed(
    docker_engine: DockerEngine, proxy: SocketProxy, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    run = Run(out, env={"DOCKER_HOST": proxy.start()})
    run.wait_for("[read 1/")
    reading(docker_engine, run)
    proxy.stop()
    assert run.finish() == 6, run.log
    assert "stopped answering mid-run" in run.log and "--resume" in run.log
    stopped = valid_unfinished(out)
    resume_completes(out, stopped, env={"DOCKER_HOST": proxy.start()})
    assert leftovers(docker_engine, run) == [], "the next run removed what the lost one left"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_mid_run_saves_results_and_removes_containers(
    docker_engine: DockerEngine, tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "site"
    run = Run(out)
    run.wait_for("[read 1/")
    reading(docker_engine, run)
    run.proc.send_signal(sig)
    assert run.finish() == code, run.log
    assert "add --resume to complete the run" in run.log
    assert leftovers(docker_engine, run) == [], "the interrupted run's containers are removed"
    resume_completes(out, valid_unfinished(out))


def test_a_container_removed_from_outside_is_that_tasks_finding(
    docker_engine: DockerEngine, small_run: Results, tmp_path: Path
) -> None:
    def remove_soon() -> None:
        running = wait_until(
            lambda: docker_engine.client.containers.list(filters={"label": "org.zipstore-matrix.phase=removed"}),
            "the container to remove",
            timeout=60,
        )
        running[0].remove(force=True)

    remover = threading.Thread(target=remove_soon)
    remover.start()
    results = run_in_container(
        docker_engine, tmp_path, [selftest("hang", 60)], memory="1g", pids_limit=256, phase="removed"
    )
    remover.join()
    verdict = results["hang"].verdict()
    assert verdict is not None and verdict.status is Status.CRASH, verdict
    assert "removed" in verdict.reason or "could not run" in verdict.reason, verdict.reason


def test_a_full_work_disk_is_exit_7_naming_it(docker_engine: DockerEngine, tmp_path: Path) -> None:
    work = tmp_path / "small-disk"
    work.mkdir()
    sudo = [] if os.getuid() == 0 else ["sudo", "-n"]  # GitHub's runners: a user with passwordless sudo
    subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(work)], check=True)
    try:
        out = tmp_path / "site"
        run = Run(out, "--work", str(work))
        assert run.finish() == 7, run.log
        assert str(work) in run.log and "bytes free" in run.log
        saved = json.loads((out / "results.json").read_text())
        assert saved["run"]["finished"] == "" and saved["environments"]
        assert leftovers(docker_engine, run) == []
    finally:
        subprocess.run([*sudo, "umount", str(work)], check=False)
