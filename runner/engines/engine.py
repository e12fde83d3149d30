"""The container-engine boundary: a small protocol and the values that cross it.

``docker_engine.DockerEngine`` implements it against a real engine; ``tests/fake_engine.FakeEngine``
implements it in memory. ``tests/engines/test_engine_contract.py`` runs the same assertions against both, so
the fake cannot drift from the real thing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol

#: Label on everything the runner creates, so leftovers of a crashed run can be found and removed.
LABEL = "org.zipstore-matrix.runner"
#: Which runner process started a container ("host:pid"): another live run's containers are left alone.
OWNER_LABEL = "org.zipstore-matrix.owner"


#: The only variables a run may set in a container (the image's own ENV aside): nothing of the host's
#: environment (tokens, paths, proxies) enters a probe.
ALLOWED_ENVIRONMENT = frozenset({"LANG", "LC_ALL", "TZ", "PYTHONHASHSEED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"})


def check_environment(environment: Mapping[str, str]) -> None:
    refused = sorted(set(environment) - ALLOWED_ENVIRONMENT)
    if refused:
        raise ValueError(f"not allowed into a container: {', '.join(refused)} (allowed: {sorted(ALLOWED_ENVIRONMENT)})")


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """True while the runner process named by an owner label still runs (on this host; elsewhere: assume so)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return host != socket.gethostname() and bool(host)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, kw_only=True)
class EngineInfo:
    name: str
    version: str
    api_version: str
    os: str = ""


@dataclass(frozen=True, kw_only=True)
class LocalRecipe:
    """An image as an engine without Docker can make it: a virtual environment of these requirements, or
    why it cannot (``unsupported``, a phrase: "apt packages need Docker")."""

    python: str | None
    requirements: tuple[str, ...] = ()
    unsupported: str = ""


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """Everything a build needs, in memory: the Dockerfile text and the files beside it."""

    tag: str
    dockerfile: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    buildargs: Mapping[str, str] = field(default_factory=dict)
    #: what the Dockerfile installs, for an engine without Docker (``local_engine``)
    local: LocalRecipe = field(default_factory=lambda: LocalRecipe(python=None))


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    ok: bool
    log: str
    seconds: float
    image_id: str | None = None
    error: str | None = None
    #: not built because this engine cannot build it (not a failure of the packages): why
    skipped: str | None = None


@dataclass(frozen=True, kw_only=True)
class Mount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    image: str
    command: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    timeout: float = 600.0
    memory: str = "4g"
    pids_limit: int = 1024
    #: a network made by :meth:`Engine.create_network` to join (the run's servers and nothing else); None: none
    network: str | None = None
    read_only: bool = True
    user: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=lambda: {"/tmp": "rw,exec,size=1g"})


@dataclass(frozen=True, kw_only=True)
class RunResult:
    exit_code: int | None
    logs: str
    seconds: float
    timed_out: bool = False
    oom_killed: bool = False


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """A long-running container (a server) on one of the run's networks, reachable there as ``alias``."""

    image: str
    command: tuple[str, ...]
    network: str
    alias: str
    mounts: tuple[Mount, ...] = ()
    memory: str = "512m"
    pids_limit: int = 256
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=lambda: {"/tmp": "rw,size=64m"})
    #: run inside the service until it exits 0 (it is then serving); the start fails after ``ready_timeout``
    ready: tuple[str, ...] = ()
    ready_timeout: float = 20.0
    #: the port it serves on, as its clients name it (``http://ALIAS:PORT``)
    port: int = 8080
    #: where its configuration file is mounted (an engine without containers rewrites it: ``loopback.py``)
    config: str = ""


#: The most of a service's output :meth:`Engine.stop_service` returns (its access log): the tail beyond is cut.
SERVICE_LOG_CAP = 64 << 20


class ContainerError(Exception):
    """The engine could not create, start or watch one container; ``str()`` is the engine's message.

    It concerns that container alone: the run records it on the cells of that container's tasks.
    """


class Engine(Protocol):
    def info(self) -> EngineInfo:
        """Ping the engine; raise ``EngineUnavailableError`` with what to do when there is none."""

    def has_image(self, ref: str) -> bool: ...

    def image_id(self, ref: str) -> str | None:
        """What identifies the image's content (Docker's image id), or None when there is no such image: a
        rebuild under the same tag is another image, so the cells measured in the old one are not reused."""

    def pull(self, ref: str) -> str | None:
        """Pull ``ref``; return None on success, else the engine's message (never raise for a 'no')."""

    def import_rootfs(self, stream: IO[bytes], ref: str) -> None:
        """Import a root filesystem tar stream as image ``ref`` (``docker import``)."""

    def build(self, context: BuildContext) -> BuildResult: ...

    def run(self, spec: RunSpec) -> RunResult:
        """Run to completion (or ``spec.timeout``, then kill); the container is always removed.

        Raise :class:`ContainerError` when the engine refuses or loses this container.
        """

    def remove_image(self, ref: str) -> None: ...

    def build_host(self) -> str | None:
        """The address image builds reach this host at (Docker's default bridge), for the run's download cache;
        None when builds do not run in containers."""

    def host_server(self) -> str | None:
        """The server software this engine runs services with on its host (``nginx/1.22.1``), or None when
        services are containers of an image the run builds."""

    def create_network(self, name: str) -> None:
        """An internal network: its containers reach each other by alias and nothing else (no route out, and
        no address of the host's on it). Raise :class:`ContainerError` when the engine cannot make one."""

    def remove_network(self, name: str) -> None: ...

    def start_service(self, spec: ServiceSpec) -> str:
        """Start a service container and return its handle; raise :class:`ContainerError` if it cannot start."""

    def stop_service(self, handle: str) -> str:
        """Stop and remove a service; return what it wrote (stdout then stderr, at most ``SERVICE_LOG_CAP``)."""

    def cleanup(self, owner: str | None = None) -> int:
        """Remove containers carrying ``LABEL``: those of ``owner`` (this run's, when it stops), or with
        None the leftovers of runs whose process is gone (never another live run's). Return how many."""
