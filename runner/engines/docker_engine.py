"""The only module that imports ``docker``: the Engine protocol over the Docker SDK for Python.

Every engine call is echoed to the ``runner`` log at DEBUG as the equivalent ``docker`` command line.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import shlex
import tarfile
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

import docker.errors
import requests
from docker.client import DockerClient
from docker.types import Mount as DockerMount

from runner.engines.engine import (
    LABEL,
    OWNER_LABEL,
    SERVICE_LOG_CAP,
    BuildContext,
    BuildResult,
    ContainerError,
    EngineInfo,
    RunResult,
    RunSpec,
    ServiceSpec,
    check_environment,
    owner_alive,
    this_owner,
)
from runner.errors import EngineLostError, EngineUnavailableError

log = logging.getLogger("runner")

HOW_TO_START = (
    "Start a Docker engine and try again. On Debian: `apt-get install -y docker.io` and then "
    "`systemctl start docker` (or run `dockerd &` as root where there is no systemd). "
    "Set DOCKER_HOST if the engine listens somewhere other than /var/run/docker.sock."
)


def _echo(*words: str) -> None:
    log.debug("+ docker %s", " ".join(shlex.quote(w) for w in words))


def _split_ref(ref: str) -> tuple[str, str]:
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


class DockerEngine:
    def __init__(self, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = DockerClient.from_env(timeout=int(self._timeout))
            except docker.errors.DockerException as exc:
                raise EngineUnavailableError(f"No Docker engine is reachable ({exc}).\n{HOW_TO_START}") from exc
        return self._client

    def close(self) -> None:
        """Let go of the connection (an engine that did not answer is not used further)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def info(self) -> EngineInfo:
        _echo("version")
        try:
            version = self.client.version()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineUnavailableError(f"No Docker engine is reachable ({exc}).\n{HOW_TO_START}") from exc
        return EngineInfo(
            name="docker",
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            os=f"{version.get('Os', '?')}/{version.get('Arch', '?')}",
        )

    def _lost(self, exc: BaseException) -> EngineLostError | None:
        """An engine that no longer answers a ping is gone: say so, or None when it still answers."""
        try:
            self.client.ping()
        except Exception:
            return EngineLostError(
                f"The container engine stopped answering mid-run ({type(exc).__name__}: {exc}). Everything "
                f"measured so far is saved; start the engine again and add --resume to complete the run.\n"
                f"{HOW_TO_START}"
            )
        return None

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """Connection failures become EngineLostError when the engine is really gone."""
        try:
            yield
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            lost = self._lost(exc)
            if lost is not None:
                raise lost from exc
            raise

    def image_id(self, ref: str) -> str | None:
        with self._answering():
            try:
                return str(self.client.images.get(ref).id)
            except docker.errors.ImageNotFound:
                return None

    def has_image(self, ref: str) -> bool:
        _echo("image", "inspect", ref)
        with self._answering():
            try:
                self.client.images.get(ref)
            except docker.errors.ImageNotFound:
                return False
            return True

    def pull(self, ref: str) -> str | None:
        repo, tag = _split_ref(ref)
        _echo("pull", ref)
        try:
            self.client.images.pull(repo, tag=tag)
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)
        return None

    def import_rootfs(self, stream: IO[bytes], ref: str) -> None:
        repo, tag = _split_ref(ref)
        _echo("import", "-", ref)
        response = self.client.api.import_image_from_stream(stream, repository=repo, tag=tag)
        if "error" in str(response).lower() and not self.has_image(ref):
            raise docker.errors.APIError(f"import of {ref} failed: {response}")

    def build(self, context: BuildContext) -> BuildResult:
        with self._answering():
            return self._build(context)

    def _build(self, context: BuildContext) -> BuildResult:
        _echo("build", "--tag", context.tag, "-")
        started = time.monotonic()
        lines: list[str] = []
        error = None
        try:
            stream = self.client.api.build(
                fileobj=_tar_context(context),
                custom_context=True,
                tag=context.tag,
                labels={LABEL: "image", **context.labels},
                buildargs=dict(context.buildargs) or None,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
            )
            for chunk in stream:
                if "stream" in chunk:
                    text = chunk["stream"]
                    lines.append(text)
                    for line in text.splitlines():
                        if line.strip():
                            log.debug("  %s", line)
                if "error" in chunk:
                    error = str(chunk["error"]).strip()
                    lines.append(error + "\n")
        except docker.errors.APIError as exc:
            error = str(exc.explanation or exc)
        seconds = time.monotonic() - started
        if error is not None:
            return BuildResult(ok=False, log="".join(lines), seconds=seconds, error=error)
        image = self.client.images.get(context.tag)
        return BuildResult(ok=True, log="".join(lines), seconds=seconds, image_id=image.id)

    def run(self, spec: RunSpec) -> RunResult:
        check_environment(spec.environment)
        mounts = [
            DockerMount(target=m.target, source=m.source, type="bind", read_only=m.read_only) for m in spec.mounts
        ]
        _echo(
            "run",
            "--rm",
            f"--memory={spec.memory}",
            f"--pids-limit={spec.pids_limit}",
            f"--network={spec.network or 'none'}",
            *(["--read-only"] if spec.read_only else []),
            *([f"--user={spec.user}"] if spec.user else []),
            *(f"-v={m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts),
            spec.image,
            *spec.command,
        )
        started = time.monotonic()
        try:
            return self._run(spec, mounts, started)
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            lost = self._lost(exc)
            if lost is not None:
                raise lost from exc
            if isinstance(exc, docker.errors.NotFound):
                raise ContainerError(f"the container was removed while it ran ({_engine_words(exc)})") from exc
            words = _engine_words(exc) if isinstance(exc, docker.errors.DockerException) else str(exc)
            raise ContainerError(words) from exc

    def _run(self, spec: RunSpec, mounts: list[DockerMount], started: float) -> RunResult:
        container = self.client.containers.create(
            spec.image,
            command=list(spec.command),
            mounts=mounts,
            network_mode=spec.network or "none",
            read_only=spec.read_only,
            environment=dict(spec.environment),
            **_locked_down(spec.user, spec.memory, spec.pids_limit, spec.tmpfs, {LABEL: "container", **spec.labels}),
        )
        timed_out = False
        try:
            container.start()
            try:
                status = container.wait(timeout=spec.timeout)
                exit_code: int | None = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
                if self._lost(exc) is not None:
                    raise
                timed_out = True
                exit_code = None
                container.kill()
                container.wait(timeout=30)
            logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled", False))
        finally:
            with contextlib.suppress(docker.errors.NotFound):  # removed from outside: nothing left to remove
                container.remove(force=True)
        return RunResult(
            exit_code=exit_code,
            logs=logs,
            seconds=time.monotonic() - started,
            timed_out=timed_out,
            oom_killed=oom,
        )

    def remove_image(self, ref: str) -> None:
        _echo("rmi", ref)
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.images.remove(ref, force=True)

    def cleanup(self, owner: str | None = None) -> int:
        with self._answering():
            # sparse: the listing's own labels, no inspection per container, so a container another runner
            # removes meanwhile (a parallel shard's probe ending) cannot fail this one's listing
            labelled = self.client.containers.list(all=True, filters={"label": LABEL}, sparse=True)
            doomed = [c for c in labelled if _doomed((c.attrs.get("Labels") or {}).get(OWNER_LABEL, ""), owner)]
            for container in doomed:
                _echo("rm", "-f", container.short_id)
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
            for network in self.client.networks.list(filters={"label": LABEL}):
                if _doomed(network.attrs.get("Labels", {}).get(OWNER_LABEL, ""), owner):
                    _echo("network", "rm", network.name)
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        network.remove()
            return len(doomed)

    def host_server(self) -> str | None:
        return None

    def build_host(self) -> str | None:
        """The default bridge's gateway: the classic builder runs each RUN step on that bridge."""
        with self._answering():
            try:
                config = self.client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []
            except docker.errors.NotFound:
                return None
        return _gateway(config)

    def create_network(self, name: str) -> None:
        # internal: no route out; inhibit_ipv4: the bridge gets no address of the host's, so the host is not
        # reachable from it either (an internal network alone still answers on its gateway address)
        options = {"com.docker.network.bridge.inhibit_ipv4": "true"}
        _echo("network", "create", "--internal", *(f"--opt={k}={v}" for k, v in options.items()), name)
        try:
            self.client.networks.create(
                name,
                driver="bridge",
                internal=True,
                options=options,
                labels={LABEL: "network", OWNER_LABEL: this_owner()},
            )
        except docker.errors.DockerException as exc:
            lost = self._lost(exc)
            if lost is not None:
                raise lost from exc
            raise ContainerError(_engine_words(exc)) from exc

    def remove_network(self, name: str) -> None:
        _echo("network", "rm", name)
        with self._answering(), contextlib.suppress(docker.errors.NotFound):
            self.client.networks.get(name).remove()

    def start_service(self, spec: ServiceSpec) -> str:
        _echo(
            "run", "--detach", f"--network={spec.network}", f"--network-alias={spec.alias}", spec.image, *spec.command
        )
        try:
            container = self.client.containers.create(
                spec.image,
                command=list(spec.command),
                mounts=[
                    DockerMount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
                    for m in spec.mounts
                ],
                read_only=True,
                networking_config={spec.network: self.client.api.create_endpoint_config(aliases=[spec.alias])},
                network=spec.network,
                **_locked_down(spec.user, spec.memory, spec.pids_limit, spec.tmpfs, {LABEL: "service", **spec.labels}),
            )
        except docker.errors.DockerException as exc:
            lost = self._lost(exc)
            if lost is not None:
                raise lost from exc
            raise ContainerError(_engine_words(exc)) from exc
        try:
            container.start()
            self._until_ready(container, spec)
        except (docker.errors.DockerException, ContainerError) as exc:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
            if isinstance(exc, ContainerError):
                raise
            raise ContainerError(_engine_words(exc)) from exc
        return str(container.id)

    def _until_ready(self, container: Any, spec: ServiceSpec) -> None:
        if not spec.ready:
            return
        deadline = time.monotonic() + spec.ready_timeout
        while True:
            container.reload()
            if container.status != "running":
                words = container.logs(stdout=True, stderr=True, tail=20).decode("utf-8", "replace").strip()
                raise ContainerError(f"{spec.alias} stopped as it started ({container.status}): {words}")
            code, _ = container.exec_run(list(spec.ready), user=spec.user or "")
            if code == 0:
                return
            if time.monotonic() > deadline:
                raise ContainerError(f"{spec.alias} did not answer within {spec.ready_timeout:g} s")
            time.sleep(0.1)

    def stop_service(self, handle: str) -> str:
        _echo("stop", handle[:12])
        with self._answering():
            try:
                container = self.client.containers.get(handle)
            except docker.errors.NotFound:
                return ""
            try:
                container.stop(timeout=5)
                out = container.logs(stdout=True, stderr=False, tail="all")
                err = container.logs(stdout=False, stderr=True, tail="all")
            finally:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
        text: str = (out[:SERVICE_LOG_CAP] + err[: max(0, SERVICE_LOG_CAP - len(out))]).decode("utf-8", "replace")
        return text


def _locked_down(
    user: str | None, memory: str, pids_limit: int, tmpfs: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """What every container the runner starts gets: no capabilities, no privilege gain, capped memory (no swap)
    and processes, a tmpfs, the labels that find it again (this run's owner among them), and an init process
    (Docker's tini) as PID 1 that reaps orphans: a browser's helper processes outlive the probe that started
    them, and without a reaper each stays a zombie until the container's PID limit stops every later probe."""
    return {
        "init": True,
        "user": user,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory,
        "pids_limit": pids_limit,
        "tmpfs": dict(tmpfs),
        "labels": {OWNER_LABEL: this_owner(), **labels},
        "detach": True,
    }


def _doomed(label: str, owner: str | None) -> bool:
    """Remove a container: ``owner``'s own, or (no owner given) one whose runner process is gone."""
    return label == owner if owner is not None else not owner_alive(label)


def _engine_words(exc: docker.errors.DockerException) -> str:
    """The engine's own explanation of an API error, without the SDK's request line."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)


def _tar_context(context: BuildContext) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"Dockerfile": context.dockerfile.encode(), **context.files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0  # same bytes, same context: lets the engine's own layer cache hit
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _gateway(config: list[dict[str, Any]]) -> str | None:
    """A bridge's gateway: as its IPAM configuration says, or (Docker 20.10 leaves it out of the default
    bridge's) the first address of its IPv4 subnet, which is what Docker gives the bridge by default."""
    for entry in config:
        if entry.get("Gateway"):
            return str(entry["Gateway"])
    for entry in config:
        try:
            subnet = ipaddress.ip_network(str(entry.get("Subnet", "")), strict=False)
        except ValueError:
            continue
        if subnet.version == 4 and subnet.num_addresses > 2:
            return str(next(subnet.hosts()))
    return None
