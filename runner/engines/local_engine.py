"""The ``local`` engine: no Docker at all. Each pip environment is a virtual environment on this host,
made with uv and cached under the image's content hash; probes run through the same harness, with the
same timeouts, and a memory limit set with ``setrlimit``. It is **not a sandbox**: probes run as this user,
with this host's network and files. The page says so, and ``--external`` archives are refused on it unless
the user says they trust them.

apt environments (Debian packages need a Debian image) and pip environments whose Python this host lacks
(uv may not download interpreters here) are ``skipped``, with that reason.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import runner
from runner.engines import loopback
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
from runner.engines.images import PYTHON, REPOSITORY
from runner.errors import EngineUnavailableError

#: Where the container sees the image's own account of itself (``harness.ENV_INFO``).
ENV_INFO = "/opt/zipstore/env.json"
_MEMORY = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)


def memory_bytes(text: str) -> int:
    """Docker's memory syntax (``4g``, ``512m``) in bytes."""
    match = _MEMORY.match(text.strip())
    if match is None:
        raise ValueError(f"not a memory size: {text!r}")
    return int(match.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]


def uv_binary() -> str | None:
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def find_python(version: str | None) -> str | None:
    """A working interpreter of ``version`` (X.Y) on this host, or None: this one, then PATH, then the
    usual places (a pyenv shim that names an inactive version does not count: it is asked)."""
    if version is None:
        return None
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    name = f"python{version}"
    candidates = [shutil.which(name), f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/{name}")), reverse=True)
    for candidate in dict.fromkeys(c for c in candidates if c and os.access(c, os.X_OK)):
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


class LocalEngine:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or Path("~/.cache/zipstore-matrix/venvs")).expanduser()
        self.served: dict[str, loopback.Served] = {}

    def info(self) -> EngineInfo:
        if uv_binary() is None:
            raise EngineUnavailableError("The local engine needs uv: pip install uv")
        return EngineInfo(
            name="local",
            version=runner.__version__,
            api_version="-",
            os=f"{platform.system()}/{platform.machine()} (no sandbox)",
        )

    def _dir(self, tag: str) -> Path:
        return self.root / re.sub(r"[^A-Za-z0-9._-]+", "_", tag)

    def image_id(self, ref: str) -> str | None:
        """The environment's ready mark names what it holds; its hash is the 'image' it is."""
        ready = self._dir(ref) / "ready"
        if not ref.startswith(REPOSITORY + ":") or not ready.is_file():
            return None
        return "local:" + hashlib.sha256(ref.encode() + b"\0" + ready.read_bytes()).hexdigest()

    def has_image(self, ref: str) -> bool:
        if not ref.startswith(REPOSITORY + ":"):
            return True  # a base: the host is every environment's base here
        return (self._dir(ref) / "ready").is_file()

    def pull(self, ref: str) -> str | None:
        return None

    def import_rootfs(self, stream: IO[bytes], ref: str) -> None:
        raise EngineUnavailableError("the local engine has no images to import into")

    def build(self, context: BuildContext) -> BuildResult:
        started = time.monotonic()
        recipe = context.local
        if recipe.unsupported:
            why = f"the local engine makes virtual environments of wheels only; {recipe.unsupported}"
            return BuildResult(ok=False, log="", seconds=0.0, skipped=why)
        python = find_python(recipe.python)
        if python is None:
            why = f"this host has no Python {recipe.python} for the local engine (it needs Docker)"
            return BuildResult(ok=False, log="", seconds=0.0, skipped=why)
        uv = uv_binary()
        assert uv is not None  # info() said so
        target = self._dir(context.tag)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "UV_NATIVE_TLS": "1", "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(target)}
        log = ""
        for command in (
            [uv, "venv", "--quiet", "--python", python, str(target)],
            [uv, "pip", "install", "--python", str(target / "bin" / "python"), "--only-binary", ":all:",
             *recipe.requirements],
        ):  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=1800)
            log += done.stdout + done.stderr
            if done.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                words = done.stderr.strip() or done.stdout.strip()
                return BuildResult(ok=False, log=log, seconds=time.monotonic() - started, error=f"error: {words}")
        inspect = context.files.get("inspect_env.py")
        if inspect is not None:
            script = target / "inspect_env.py"
            script.write_bytes(inspect)
            info = subprocess.run([str(target / "bin" / "python"), str(script)], capture_output=True, check=False)
            (target / "env.json").write_bytes(info.stdout if info.returncode == 0 else b"{}")
        (target / "ready").write_text(context.tag)
        return BuildResult(ok=True, log=log, seconds=time.monotonic() - started, image_id=str(target))

    def run(self, spec: RunSpec) -> RunResult:
        """The harness on this host: container paths in its arguments and task file become host paths."""
        check_environment(spec.environment)
        venv = self._dir(spec.image)
        mounts = {m.target: m.source for m in spec.mounts}
        with tempfile.TemporaryDirectory(prefix="zipstore-local-") as scratch:
            paths = {**mounts, ENV_INFO: str(venv / "env.json"), PYTHON: str(venv / "bin" / "python")}
            if spec.network is not None:  # reads over HTTP: the servers on loopback
                paths.update(self._urls(spec.network))
            command = [_host_path(part, paths) for part in spec.command]
            job = next((c for c in command if c.endswith("tasks.json")), None)
            if job is not None:  # the tasks' own paths (archives, /out) are translated the same way
                translated = Path(scratch) / "tasks.json"
                data = json.loads(Path(job).read_text(encoding="utf-8"))
                translated.write_text(json.dumps(_translate(data, paths)), encoding="utf-8")
                command[command.index(job)] = str(translated)
            tmp = Path(scratch) / "tmp"
            tmp.mkdir()
            environment = {
                "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
                "HOME": str(tmp),
                "TMPDIR": str(tmp),
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "ZIPSTORE_ENV_INFO": str(venv / "env.json"),
                "ZIPSTORE_NO_CGROUP": "1",  # the host's cgroup counts are not this run's
                **spec.environment,
            }
            limit = memory_bytes(spec.memory)
            started = time.monotonic()
            with subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=tmp,
                start_new_session=True,
                preexec_fn=lambda: _limit(limit),
            ) as proc:
                try:
                    out, _ = proc.communicate(timeout=spec.timeout)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    out, _ = proc.communicate()
                    timed_out = True
            return RunResult(
                exit_code=proc.returncode,
                logs=out.decode("utf-8", "replace"),
                seconds=time.monotonic() - started,
                timed_out=timed_out,
            )

    def remove_image(self, ref: str) -> None:
        shutil.rmtree(self._dir(ref), ignore_errors=True)

    def cleanup(self, owner: str | None = None) -> int:
        return 0  # a run's processes end with it: each harness runs in a session the run waits for

    def host_server(self) -> str | None:
        return loopback.version() or "nginx (none on this host)"

    def build_host(self) -> str | None:
        return None  # uv's own cache serves the virtual environments

    def create_network(self, name: str) -> None:
        """No network to make: the servers are this host's nginx on loopback (``loopback.py``), which must exist."""
        if loopback.nginx_binary() is None:
            raise ContainerError(loopback.NO_NGINX)

    def remove_network(self, name: str) -> None:
        return None

    def start_service(self, spec: ServiceSpec) -> str:
        served = loopback.start(spec)
        handle = f"{spec.network}/{spec.alias}"
        self.served[handle] = served
        return handle

    def stop_service(self, handle: str) -> str:
        served = self.served.pop(handle, None)
        return "" if served is None else loopback.stop(served)

    def _urls(self, network: str) -> dict[str, str]:
        """What a probe's URLs on ``network`` become here: each server's name and port, its loopback address."""
        return {
            f"http://{s.spec.alias}:{s.spec.port}": s.url for s in self.served.values() if s.spec.network == network
        }


def _limit(memory: int) -> None:
    """In the harness process before it starts: its address space (and its probes') capped."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _host_path(value: str, paths: Mapping[str, str]) -> str:
    for target in sorted(paths, key=len, reverse=True):
        if value == target or value.startswith(target.rstrip("/") + "/"):
            return paths[target] + value[len(target) :]
    return value


def _translate(data: Any, paths: Mapping[str, str]) -> Any:
    if isinstance(data, str):
        return _host_path(data, paths)
    if isinstance(data, list):
        return [_translate(v, paths) for v in data]
    if isinstance(data, dict):
        return {k: _translate(v, paths) for k, v in data.items()}
    return data
