"""The run's HTTP servers, around the read phase: their image (Debian's nginx, built like any environment's),
an internal network made for the run, one server per HTTP access mode, and afterwards their access logs.

Readers of the http modes join that network and nothing else: they reach the servers by name, and neither
the internet nor the host. When no server can run (its image did not build, the engine has no networks),
every cell of those modes says so and the file cells go on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from runner.engines.engine import ContainerError, Mount, ServiceSpec
from runner.engines.images import image_tag
from runner.engines.workdir import shared_dir
from runner.phases.context import RunContext
from runner.probes import Access
from runner.results.model import EnvStatus, Outcome, Status
from runner.served import servers
from runner.served.servers import ReadCost, Server

log = logging.getLogger("runner")

CONFIG = "/etc/zipstore/nginx.conf"
#: inside the server's image: exits 0 once its port answers
READY = ("python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {servers.PORT}), 1)")


#: what a reader job names as its network before the servers run; the run's network once they do
NETWORK = "<servers>"


@dataclass(kw_only=True)
class ServerImage:
    """The servers' image, known before the reads are planned (its id is part of every http cell's key)."""

    image: str = ""
    ref: str = ""
    #: why the http cells cannot be read (None: they can, or none were asked for)
    down: Outcome | None = None


@dataclass(kw_only=True)
class Serving:
    """The servers while they run, and what they logged once stopped."""

    network: str | None = None
    down: Outcome | None = None
    logs: dict[str, str] = field(default_factory=dict)
    costs: dict[tuple[str, str], ReadCost] = field(default_factory=dict)
    #: what the servers say they are (``nginx/1.22.1``), from their own log
    software: str = ""


def server_image(ctx: RunContext, access: Sequence[Access]) -> ServerImage:
    """Build (or reuse) the servers' image when the run reads anything over HTTP."""
    if not servers.servers_for(tuple(access)):
        return ServerImage()
    on_host = ctx.engine.host_server()
    if on_host is not None:  # the local engine: this host's nginx, no image
        return ServerImage(image=f"host:{on_host}")
    spec = ctx.plan.settings.server
    env = ctx.environment(spec, image_tag(spec), "servers")
    if env.status is not EnvStatus.OK:
        why = f"no HTTP server: its image did not build ({env.reason})"
        return ServerImage(down=Outcome(status=Status.SKIPPED, reason=why))
    return ServerImage(image=env.image_id or env.image, ref=env.image)


@contextlib.contextmanager
def serving(
    ctx: RunContext, image: ServerImage, access: Sequence[Access], mounts: Sequence[Mount]
) -> Iterator[Serving]:
    """Serve the archives in ``mounts`` (as the readers see them) for the http modes in ``access``."""
    wanted = servers.servers_for(tuple(access))
    state = Serving()
    if not wanted or image.down is not None:
        yield state
        return
    name = f"zipstore-{ctx.results.run.id}".lower()
    try:
        ctx.engine.create_network(name)
    except ContainerError as exc:
        state.down = Outcome(status=Status.SKIPPED, reason=f"no HTTP server: {exc}")
        yield state
        return
    handles: dict[str, str] = {}
    try:
        try:
            for server in wanted:
                handles[server.mode] = ctx.engine.start_service(_service(ctx, server, image.ref, name, mounts))
        except ContainerError as exc:
            state.down = Outcome(status=Status.SKIPPED, reason=f"no HTTP server: {exc}")
        else:
            state.network = name
            on_host = ctx.engine.host_server()
            where = f"on loopback ({on_host} of this host)" if on_host else f"on the internal network {name}"
            ctx.progress(f"[serve] {', '.join(s.alias for s in wanted)} {where}")
        yield state
    finally:
        for mode, handle in handles.items():
            try:
                state.logs[mode] = ctx.engine.stop_service(handle)
            except Exception as exc:  # a server that cannot be stopped loses its log, not the run
                log.warning("the %s server could not be stopped: %s", mode, exc)
                continue
            with contextlib.suppress(OSError):  # beside its config: what each cell's request counts come from
                (ctx.workdir.work / "servers" / mode / "access.log").write_text(state.logs[mode], encoding="utf-8")
        with contextlib.suppress(Exception):
            ctx.engine.remove_network(name)
        for text in state.logs.values():
            for key, cost in servers.parse_log(text).items():
                state.costs.setdefault(key, ReadCost()).merge(cost)
        state.software = next((s for s in map(servers.software, state.logs.values()) if s), "")


def _service(ctx: RunContext, server: Server, image: str, network: str, mounts: Sequence[Mount]) -> ServiceSpec:
    folder = shared_dir(ctx.workdir.work / "servers" / server.mode)
    (folder / "nginx.conf").write_text(server.config(), encoding="utf-8")
    served = tuple(
        Mount(source=m.source, target="/srv/" + servers.served_path(m.target), read_only=True) for m in mounts
    )
    return ServiceSpec(
        image=image,
        command=("nginx", "-c", CONFIG),
        network=network,
        alias=server.alias,
        mounts=(Mount(source=str(folder / "nginx.conf"), target=CONFIG), *served),
        user=servers.USER,
        labels={"org.zipstore-matrix.phase": "serve"},
        ready=READY,
        port=servers.PORT,
        config=CONFIG,
    )
