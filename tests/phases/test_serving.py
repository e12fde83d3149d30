"""Reads over HTTP through the pipeline on the fake engine: the servers start on a network of the run's, only the
readers with HTTP tasks join it, each cell's cost comes from the servers' log, and no server means skipped cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.engines import loopback
from runner.engines.engine import ContainerError, RunSpec, ServiceSpec
from runner.engines.local_engine import LocalEngine
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.phases.execute import Options, execute
from runner.plan.planner import make_plan
from runner.results.model import Results, Status
from runner.served import servers
from runner.served.servers import Server
from tests.support.fake_engine import FakeEngine, HostHarness
from tests.support.matrices import BASE, good

MATRIX = """\
version: 1
fixtures: [int32-random]
settings: {access: [file, http, http-norange]}
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr==3.1.6"]
    probes: ["zarr-v3", "zarr-zipstore"]
"""


def run(tmp_path: Path, engine: FakeEngine) -> Results:
    sim = HostHarness(good)
    engine.handler = sim

    def access_log(spec: ServiceSpec, runs: list[RunSpec]) -> str:
        """What nginx would have logged: two requests for the first read and one for the chunk of each task
        over HTTP that its server served."""
        lines = []
        for task in sim.tasks:
            url = task["args"].get("url", "")
            if spec.alias not in url:
                continue
            token = servers.token(task["id"])
            for phase, body in (("r0", 1000), ("r0", 24), ("one", 40)):
                entry = {"server": "nginx/1.22.1", "uri": f"/c/{token}/{phase}/a.zip", "status": 206, "body": body}
                lines.append(json.dumps(entry, separators=(",", ":")))
        return "\n".join(lines)

    engine.service_log = access_log
    plan = make_plan(parse_matrix(MATRIX, "m.yaml", catalog()))
    return execute(plan, engine, Options(out=tmp_path, work=tmp_path / "work"), progress=lambda m: None)


def test_http_cells_are_read_from_the_servers_on_the_runs_network_with_their_cost(tmp_path: Path) -> None:
    engine = FakeEngine(images={BASE})
    results = run(tmp_path, engine)
    by_access = {c.access: c for c in results.cells}
    assert set(by_access) == {"file", "http", "http-norange"}
    assert all(c.status is Status.PASS for c in results.cells)
    http = by_access["http"].http
    assert http is not None and (http.requests, http.bytes, http.chunk_requests, http.chunk_bytes) == (2, 1024, 1, 40)
    assert http.server == "nginx/1.22.1" and http.archive_bytes and by_access["file"].http is None
    assert [s.alias for s in engine.services_started] == ["range.zipstore", "norange.zipstore"]
    assert all(s.user == servers.USER and s.ready for s in engine.services_started)
    network = engine.networks_made[0]
    reads = [r for r in engine.runs if r.labels.get("org.zipstore-matrix.phase") == "read"]
    writes = [r for r in engine.runs if r.labels.get("org.zipstore-matrix.phase") == "write"]
    assert [r.network for r in reads] == [network] and all(r.network is None for r in writes)
    assert not engine.networks and not engine.services  # removed when the reads are done
    assert any(e.slug == "http-server" for e in results.environments)
    kept = (tmp_path / "work" / "servers" / "range" / "access.log").read_text(encoding="utf-8")
    assert "/r0/a.zip" in kept and servers.software(kept) == "nginx/1.22.1"  # the log the costs came from, kept


def test_without_servers_the_http_cells_say_why_and_the_file_cells_are_read(tmp_path: Path) -> None:
    engine = FakeEngine(images={BASE}, networks_work=False)
    results = run(tmp_path, engine)
    by_access = {c.access: c for c in results.cells}
    assert by_access["file"].status is Status.PASS
    for access in ("http", "http-norange"):
        assert by_access[access].status is Status.SKIPPED
        assert "no HTTP server" in by_access[access].reason and "address pool" in by_access[access].reason
    assert all(r.network is None for r in engine.runs)


def test_the_local_engine_without_nginx_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loopback, "nginx_binary", lambda: None)
    with pytest.raises(ContainerError, match="apt-get install nginx"):
        LocalEngine(root=tmp_path).create_network("n")
    assert loopback.NO_NGINX in str(ContainerError(loopback.NO_NGINX))


def test_the_containers_nginx_conf_moves_to_loopback_and_a_folder() -> None:
    folder = Path("/var/zipstore-serve-x")  # never written: the text only
    moved = loopback.localize(Server(mode="norange").config(), folder, 41234)
    assert "listen 127.0.0.1:41234;" in moved and f"pid {folder}/nginx.pid;" in moved
    assert f"access_log {folder}/access.log cells;" in moved and f"alias {folder}/srv/$1;" in moved
    assert "/dev/stdout" not in moved and " /tmp/" not in moved and "max_ranges 0;" in moved
    with pytest.raises(ContainerError, match="no line like"):
        loopback.localize("events {}", folder, 1)


def test_the_truncating_server_proxies_a_stalling_upstream_on_a_socket_that_moves_with_it() -> None:
    config = Server(mode="truncate").config()
    assert "listen unix:/tmp/upstream.sock;" in config and "proxy_pass http://unix:/tmp/upstream.sock;" in config
    assert f"limit_rate_after {servers.TRUNCATE_AFTER};" in config and "proxy_buffering off;" in config
    assert (
        f"proxy_read_timeout {servers.STALL_TIMEOUT};" in config
        and "upstream.sock" not in Server(mode="range").config()
    )
    folder = Path("/var/zipstore-serve-t")
    moved = loopback.localize(config, folder, 41235)
    assert (
        f"listen unix:{folder}/upstream.sock;" in moved and f"proxy_pass http://unix:{folder}/upstream.sock;" in moved
    )
    assert "/tmp/" not in moved
