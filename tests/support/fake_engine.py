"""An in-memory Engine for unit tests. ``tests/engines/test_engine_contract.py`` holds it to the real one's behaviour.

``run`` hands the spec to a handler. The default handler understands ``sh -c SCRIPT`` by running the
script on the host with container mount paths rewritten to their host sources (enough for the contract
tests); ``HostHarness`` runs the real probe harness on the host for pipeline tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runner.engines.engine import (
    BuildContext,
    BuildResult,
    ContainerError,
    EngineInfo,
    RunResult,
    RunSpec,
    ServiceSpec,
    check_environment,
)
from runner.errors import EngineUnavailableError

Handler = Callable[[RunSpec, dict[str, Path]], RunResult]
#: What a fake service wrote by the time it stopped (its access log), from its spec and the runs made meanwhile.
ServiceLog = Callable[[ServiceSpec, list[RunSpec]], str]


#: what the installers say when a package is not on the index (uv 0.13.9's words, without a terminal)
_PIP_NOT_FOUND = "ERROR: No matching distribution found for no-such-package\n"
_UV_NOT_FOUND = (
    "error: No solution found when resolving dependencies\n  cause: Because no-such-package was not found in the "
    "package registry and you require no-such-package, we can conclude that your requirements are unsatisfiable.\n"
)


class FakeEngine:
    def __init__(
        self,
        *,
        available: bool = True,
        images: set[str] | None = None,
        pullable: set[str] | None = None,
        handler: Handler | None = None,
        service_log: ServiceLog | None = None,
        networks_work: bool = True,
        build_host: str | None = None,
    ) -> None:
        self._build_host = build_host
        self.available = available
        self.images: set[str] = set(images or ())
        self.pullable = set(pullable or ())
        self.handler = handler or shell_handler
        self.builds: list[BuildContext] = []
        self.runs: list[RunSpec] = []
        self.imported: list[str] = []
        self.service_log = service_log or (lambda spec, runs: "")
        self.networks_work = networks_work
        self.networks: set[str] = set()
        self.networks_made: list[str] = []
        self.services: dict[str, ServiceSpec] = {}
        self.services_started: list[ServiceSpec] = []

    def info(self) -> EngineInfo:
        if not self.available:
            raise EngineUnavailableError("fake engine is off")
        return EngineInfo(name="fake", version="0", api_version="0")

    def has_image(self, ref: str) -> bool:
        return ref in self.images

    def image_id(self, ref: str) -> str | None:
        """An image holds what it reports (the handler's env_info, when it has one): a fake night whose
        libraries changed under the same tag is another image, as a rebuild would be."""
        if ref not in self.images:
            return None
        return f"fake:{ref}:{json.dumps(getattr(self.handler, 'env_info', None), sort_keys=True)}"

    def pull(self, ref: str) -> str | None:
        if ref in self.pullable:
            self.images.add(ref)
            return None
        return f"pull access denied for {ref}"

    def import_rootfs(self, stream: IO[bytes], ref: str) -> None:
        stream.read()
        self.images.add(ref)
        self.imported.append(ref)

    def build(self, context: BuildContext) -> BuildResult:
        self.builds.append(context)
        base = context.dockerfile.split("FROM ", 1)[1].split()[0]
        if base not in self.images:
            return BuildResult(ok=False, log="", seconds=0.0, error=f"pull access denied for {base}")
        for line in context.dockerfile.replace("\\\n", " ").splitlines():  # an instruction, continued lines joined
            if line.startswith("RUN ") and ("exit 1" in line or "no-such-package" in line):
                log = _UV_NOT_FOUND if "uv pip install" in line else _PIP_NOT_FOUND if "no-such" in line else "boom\n"
                return BuildResult(ok=False, log=log, seconds=0.0, error="The command returned a non-zero code: 1")
        self.images.add(context.tag)
        return BuildResult(ok=True, log="ok\n", seconds=0.01, image_id="sha256:fake")

    def run(self, spec: RunSpec) -> RunResult:
        check_environment(spec.environment)  # the engine's own rule
        if spec.network is not None and spec.network not in self.networks:
            raise ContainerError(f"network {spec.network} not found")
        self.runs.append(spec)
        if spec.image not in self.images:
            raise RuntimeError(f"fake engine: no such image {spec.image}")
        for m in spec.mounts:
            if not Path(m.source).is_absolute():  # the engine's own rule (invalid mount path)
                raise ValueError(f"invalid mount path: {m.source!r} mount path must be absolute")
        mounts = {m.target: Path(m.source) for m in spec.mounts}
        return self.handler(spec, mounts)

    def remove_image(self, ref: str) -> None:
        self.images.discard(ref)

    def host_server(self) -> str | None:
        return None

    def build_host(self) -> str | None:
        return self._build_host

    def create_network(self, name: str) -> None:
        if not self.networks_work:
            raise ContainerError("could not find an available, non-overlapping IPv4 address pool")
        if name in self.networks:
            raise ContainerError(f"network with name {name} already exists")
        self.networks.add(name)
        self.networks_made.append(name)

    def remove_network(self, name: str) -> None:
        self.networks.discard(name)

    def start_service(self, spec: ServiceSpec) -> str:
        if spec.image not in self.images:
            raise ContainerError(f"No such image: {spec.image}")
        if spec.network not in self.networks:
            raise ContainerError(f"network {spec.network} not found")
        handle = f"service-{len(self.services_started)}"
        self.services[handle] = spec
        self.services_started.append(spec)
        return handle

    def stop_service(self, handle: str) -> str:
        spec = self.services.pop(handle, None)
        return "" if spec is None else self.service_log(spec, [r for r in self.runs if r.network == spec.network])

    def cleanup(self, owner: str | None = None) -> int:
        return 0


def _rewrite(text: str, mounts: dict[str, Path]) -> str:
    for target in sorted(mounts, key=len, reverse=True):
        text = text.replace(target, str(mounts[target]))
    return text


def shell_handler(spec: RunSpec, mounts: dict[str, Path]) -> RunResult:
    """Run ``sh -c SCRIPT`` on the host with mount paths rewritten (read-only is not emulated)."""
    if spec.command[:2] != ("sh", "-c"):
        raise NotImplementedError(f"fake engine runs only sh -c, not {spec.command}")
    script = _rewrite(spec.command[2], mounts)
    started = time.monotonic()
    try:
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=spec.timeout)
    except subprocess.TimeoutExpired:
        return RunResult(exit_code=None, logs="", seconds=spec.timeout, timed_out=True)
    return RunResult(exit_code=done.returncode, logs=done.stdout + done.stderr, seconds=time.monotonic() - started)


Behaviour = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, dict[str, Any] | None]]
HARNESS_TIMEOUT = 120.0
HANG_TIMEOUT = 0.5  # a task that should time out gets this probe timeout, so the test does not wait


class HostHarness:
    """Runs the real in-container harness on the host, as the container would, for pipeline tests.

    For each task, ``behaviour(task)`` says what its probe does, in the harness's own terms: ``(run,
    record)``. The record is what the probe writes; ``run`` is how its process ends (``signal``,
    ``timed_out``, ``exit_code``, ``stderr_tail``), and None means the container died before the task
    was reported. ``tests/support/scripted_probe.py`` acts that out under ``probes/harness.py``, so run.json
    files, records and the version check are the real protocol's. Writer tasks that succeed also get
    a small real zip, and the ZIP checks are the real probe's (``zipcheck_probe.py``) on that zip.
    """

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        container: dict[str, Any] | None = None,
        env_info: dict[str, Any] | None = None,
    ) -> None:
        self.behaviour = behaviour
        self.container = container or {}
        self.env_info = env_info or {"python": "3.11.2", "distributions": {"zarr": "9.9.9"}, "modules": {}}
        self.tasks: list[dict[str, Any]] = []
        self.jobs: list[int] = []  # the "jobs" of each container's tasks.json, in order
        self.mounts: dict[str, Path] = {}  # the last container's mounts: target -> host path
        self._lock = threading.Lock()

    def host_path(self, container_path: str) -> Path:
        """Where a path inside the current container lives on the host (through its mounts)."""
        for target in sorted(self.mounts, key=len, reverse=True):
            if container_path == target or container_path.startswith(target + "/"):
                return self.mounts[target] / container_path[len(target) :].lstrip("/")
        raise ValueError(f"{container_path} is not under any mount")

    def __call__(self, spec: RunSpec, mounts: dict[str, Path]) -> RunResult:
        with self._lock:  # --jobs runs containers from threads: prepare one at a time, run together
            self.mounts = mounts
            job = json.loads((mounts["/job"] / "tasks.json").read_text())
            self.jobs.append(job["jobs"])
            out = mounts["/out"]
            (out / "env.json").write_text(json.dumps(self.env_info))
            scripted = []
            for task in job["tasks"]:
                self.tasks.append(task)
                if task["args"]["role"] == "checker":  # the real ZIP checks, on the archive's host path
                    args = {**task["args"], "archive": str(self.host_path(task["args"]["archive"]))}
                    scripted.append({**task, "args": args})
                    continue
                run, record = self.behaviour(task)
                if record is not None and task["args"]["role"] == "writer" and record.get("status") == "ok":
                    with zipfile.ZipFile(self.host_path(task["args"]["archive"]), "w") as zf:
                        zf.writestr(".zgroup", '{"zarr_format": 2}')
                        zf.writestr("data/.zarray", "{}")
                if run is None:  # the container died before this task reported
                    continue
                act = {
                    "record": record,
                    "stderr": run.get("stderr_tail", ""),
                    "signal": run.get("signal"),
                    "hang": bool(run.get("timed_out")),
                    "exit_code": run.get("exit_code"),
                }
                timeout = HANG_TIMEOUT if act["hang"] else task["timeout"]
                args = {"act": act, "probes": str(mounts["/probes"])}
                scripted.append({"id": task["id"], "script": str(SCRIPTED_PROBE), "timeout": timeout, "args": args})
            tasks_file = out / "host-harness-tasks.json"
            tasks_file.write_text(json.dumps({"jobs": job["jobs"], "tasks": scripted}))
        harness = mounts["/probes"] / "harness.py"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(harness), str(tasks_file), str(out)],
            capture_output=True,
            text=True,
            timeout=HARNESS_TIMEOUT,
            check=False,
        )
        tasks_file.unlink()
        assert done.returncode == 0, f"the harness failed on the host:\n{done.stderr}"
        return RunResult(
            exit_code=self.container.get("exit_code", 0),
            logs=done.stdout,
            seconds=time.monotonic() - started,
            timed_out=self.container.get("timed_out", False),
            oom_killed=self.container.get("oom_killed", False),
        )


SCRIPTED_PROBE = Path(__file__).with_name("scripted_probe.py")

OK_RUN = {
    "exit_code": 0,
    "signal": None,
    "timed_out": False,
    "oom_killed": False,
    "seconds": 0.1,
    "stdout_tail": "",
    "stderr_tail": "",
}
