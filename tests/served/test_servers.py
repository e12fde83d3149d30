"""The servers as values: their nginx configuration, the URL a reader is given, and the access log read back."""

from __future__ import annotations

import json

from runner import probes
from runner.channels import ImageInput, channel
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.plan import cells
from runner.plan.planner import Archive, make_plan, read_tasks
from runner.served import servers
from runner.served.servers import Server


def log_line(uri: str, status: int = 206, body: int = 100, **extra: object) -> str:
    entry = {"server": "nginx/1.22.1", "uri": uri, "method": "GET", "status": status, "body": body, "range": ""}
    return json.dumps({**entry, **extra})


def test_the_range_server_honours_ranges_and_the_other_ignores_them() -> None:
    ranged, ignoring = Server(mode="range").config(), Server(mode="norange").config()
    assert "max_ranges 0;" not in ranged and "max_ranges 0;" in ignoring
    assert "Access-Control" not in Server(mode="nocors").config() and "max_ranges" not in Server(mode="nocors").config()
    faulty = Server(mode="fault").config()
    assert "max_ranges" not in faulty and f"limit_req zone=reads burst={servers.FAULT_AFTER} nodelay;" in faulty
    assert "limit_req_status 503;" in faulty and "limit_req" not in ranged
    for config in (ranged, ignoring):  # unprivileged, read-only root: everything written goes to /tmp
        assert f"listen {servers.PORT};" in config and "pid /tmp/nginx.pid;" in config
        assert "access_log /dev/stdout cells;" in config and 'Access-Control-Expose-Headers "Content-Range' in config
    assert [s.mode for s in servers.servers_for(("file", "http", "http-norange"))] == ["range", "norange"]
    assert servers.servers_for(("file",)) == ()


def test_a_task_url_names_its_server_its_cell_and_leaves_the_read_to_the_probe() -> None:
    url = servers.url("http-norange", "r--task", "/external/0/odd name#1.zip")
    token = servers.token("r--task")
    assert url == f"http://norange.zipstore:8080/c/{token}/{{phase}}/external/0/odd%20name%231.zip"
    assert len(token) == 12 and servers.token("r--task") == token != servers.token("r--other")


def test_the_log_is_counted_per_cell_and_read_and_what_is_not_the_format_is_skipped() -> None:
    a, b = servers.token("a"), servers.token("b")
    text = "\n".join(
        [
            log_line(f"/c/{a}/r0/artifacts/x.zip", status=200, body=0),
            log_line(f"/c/{a}/r0/artifacts/x.zip", body=1000),
            log_line(f"/c/{a}/one/artifacts/x.zip", body=50),
            log_line(f"/c/{b}/r1/artifacts/x.zip", status=404, body=153),
            log_line("/elsewhere", body=9),  # not a cell's
            "2026/12/03 12:00:00 [notice] 1#1: start worker processes",  # nginx's own words
            '{"uri": "/c/' + a + '/r0/x", "status": "206", "body": 5}',  # wrong types: not trusted
            "{" + "x" * servers.MAX_LINE,  # too long
            log_line(f"/c/{a}/r0/artifacts/x.zip")[:40],  # truncated last line
        ]
    )
    costs = servers.parse_log(text)
    assert set(costs) == {(a, "r0"), (a, "one"), (b, "r1")}
    assert (costs[(a, "r0")].requests, costs[(a, "r0")].bytes) == (2, 1000)
    assert costs[(a, "r0")].statuses == {"200": 1, "206": 1}
    assert costs[(b, "r1")].statuses == {"404": 1}
    assert servers.software(text) == "nginx/1.22.1"


def test_readers_get_each_access_mode_they_document_and_over_http_no_path() -> None:
    text = """\
version: 1
fixtures: [int32-random]
settings: {access: [file, http, http-norange]}
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr==3.1.6", "h5py==3.16.0"]
"""
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    archive = Archive(id="w", path="e/p/int32-random.zip", fixture="int32-random", arrays=("data",),
                      zarr_format=3, writer_env="e", writer_probe="p")  # fmt: skip
    tasks = read_tasks(plan.environments[0], [archive], plan.settings.access)
    modes = {(t.probe.id, t.access) for t in tasks}
    assert ("zarr-zipstore", "http-norange") in modes and ("zarr-fsspec", "http") in modes
    assert {a for p, a in modes if p == "h5py"} == {"file"}  # h5py documents no way over HTTP
    http = next(t for t in tasks if t.access == "http")
    assert http.cell_id.endswith("--http") and http.id.endswith("--http")
    plain = next(t for t in tasks if t.access == "file")
    assert not plain.cell_id.endswith("file")  # ids from before the axis stand
    args = cells.read_task(http, plan.settings).args
    assert "archive" not in args and args["access"] == "http"
    assert args["url"].startswith("http://range.zipstore:8080/c/") and args["url"].endswith(
        "/artifacts/e/p/int32-random.zip"
    )


def test_the_browser_probe_runs_only_where_there_is_a_browser_and_only_over_http() -> None:
    text = """\
version: 1
fixtures: [int32-random]
environments:
  - base: debian:trixie
    channel: npm
    packages: ["zarrita@0.7.5", "@zarrita/storage@0.2.0"]
  - base: debian:trixie
    channel: browser
    packages: ["zarrita@0.7.5", "@zarrita/storage@0.2.0", "puppeteer-core@24.43.1", "esbuild@0.28.2"]
"""
    plan = make_plan(parse_matrix(text, "m.yaml", catalog()))
    node, browser = plan.environments
    assert [p.id for p in node.readers] == ["zarrita-zip"]
    assert "zarrita-browser" in [p.id for p in browser.readers]
    assert "file" not in probes.ALL["zarrita-browser"].access and "http-nocors" in probes.ALL["zarrita-browser"].access
    assert "http-nocors" not in probes.ALL["zarrita-zip"].access  # CORS is a browser's rule
    steps = channel("browser").dockerfile(ImageInput(packages=browser.env.packages))
    assert "chromium" in steps and "puppeteer-core@24.43.1" in steps
