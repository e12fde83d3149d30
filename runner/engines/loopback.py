"""The local engine's servers: this host's nginx on loopback, run from the same configuration the containers
get, with its listening address, files and logs moved into a folder of its own. Not isolated (the probes of
the local engine have the host's network anyway): the page says the run was local.

Each service is an ``nginx`` process in the foreground (``daemon off``) on a free port of 127.0.0.1; a probe's
URL names the server as the containers know it (``http://range.zipstore:8080/…``) and the local engine
rewrites it to that port, as it rewrites container paths to host paths.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner.engines.engine import SERVICE_LOG_CAP, ContainerError, ServiceSpec

#: Why the http access modes have no cells on this engine without nginx.
NO_NGINX = (
    "the local engine serves over HTTP with this host's nginx on loopback, and this host has none "
    "(on Debian: apt-get install nginx)"
)
#: the lines of the containers' nginx.conf that name places in the container, and what they become here
_PLACES = (
    (re.compile(r"^(\s*)listen \d+;$", re.M), r"\1listen 127.0.0.1:{port};"),
    (re.compile(r"^pid /tmp/nginx\.pid;$", re.M), "pid {folder}/nginx.pid;"),
    (re.compile(r"^error_log stderr (\w+);$", re.M), r"error_log {folder}/error.log \1;"),
    (re.compile(r"^(\s*)access_log /dev/stdout cells;$", re.M), r"\1access_log {folder}/access.log cells;"),
    (re.compile(r"^(\s*)(\w+_temp_path) /tmp/", re.M), r"\1\2 {folder}/"),
    (re.compile(r"^(\s*)alias /srv/", re.M), r"\1alias {folder}/srv/"),
)
#: places that only some servers' configurations have (the truncating server's upstream socket)
_OPTIONAL_PLACES = ((re.compile(r"unix:/tmp/"), "unix:{folder}/"),)
READY_SECONDS = 10.0


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def version() -> str | None:
    """``nginx/1.22.1`` as this host's nginx says it, or None without one."""
    binary = nginx_binary()
    if binary is None:
        return None
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False, timeout=30)
    found = re.search(r"nginx/[0-9.]+", done.stderr + done.stdout)
    return found[0] if found else "nginx/?"


def localize(config: str, folder: Path, port: int) -> str:
    """The containers' nginx.conf for a server on 127.0.0.1:``port`` whose files are in ``folder``."""
    for pattern, replacement in _PLACES:
        config, found = pattern.subn(replacement.format(port=port, folder=folder), config)
        if not found:
            raise ContainerError(f"the server's configuration has no line like {pattern.pattern!r} to move")
    for pattern, replacement in _OPTIONAL_PLACES:
        config = pattern.sub(replacement.format(folder=folder), config)
    if os.geteuid() == 0:  # nginx's workers would run as nobody, who may not read the run's files
        config = f"user {pwd.getpwuid(0).pw_name};\n" + config
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(kw_only=True)
class Served:
    spec: ServiceSpec
    folder: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(spec: ServiceSpec) -> Served:
    """Start nginx for ``spec``: its configuration is the mount at ``spec.config``, the served trees the
    mounts under /srv (linked into the server's folder)."""
    binary = nginx_binary()
    if binary is None:
        raise ContainerError(NO_NGINX)
    config = next((m.source for m in spec.mounts if m.target == spec.config), None)
    if config is None:
        raise ContainerError(f"no configuration mounted at {spec.config or '(none named)'}")
    folder = Path(tempfile.mkdtemp(prefix="zipstore-serve-"))
    folder.chmod(0o755)
    for mount in spec.mounts:
        if mount.target.startswith("/srv/"):
            link = folder / mount.target.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(mount.source)
    port = free_port()
    (folder / "nginx.conf").write_text(localize(Path(config).read_text(encoding="utf-8"), folder, port))
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    served = Served(spec=spec, folder=folder, port=port, proc=proc)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if proc.poll() is not None:
            words = logs(served)
            shutil.rmtree(folder, ignore_errors=True)
            raise ContainerError(f"nginx stopped as it started ({proc.returncode}): {words.strip()[-1000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return served
        except OSError:
            if time.monotonic() > deadline:
                stop(served)
                raise ContainerError(f"nginx did not answer on 127.0.0.1:{port} within {READY_SECONDS:g} s") from None
            time.sleep(0.05)


def logs(served: Served) -> str:
    """Its access log, then its error log, at most ``SERVICE_LOG_CAP`` bytes in all."""
    out = b""
    for name in ("access.log", "error.log"):
        path = served.folder / name
        if path.is_file():
            with path.open("rb") as fh:
                out += fh.read(max(0, SERVICE_LOG_CAP - len(out)))
    return out.decode("utf-8", "replace")


def stop(served: Served) -> str:
    """Stop nginx (gracefully, then not), and return what it logged; its folder is removed."""
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGQUIT)
        try:
            served.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(served.proc.pid, signal.SIGKILL)
            served.proc.wait()
    text = logs(served)
    shutil.rmtree(served.folder, ignore_errors=True)
    return text
