"""The runner against a real Docker engine: images, locked-down containers, probes, verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from socket import gethostname

import pytest

from runner.engines.bases import ensure_base
from runner.engines.docker_engine import DockerEngine
from runner.engines.engine import LABEL, OWNER_LABEL, Mount, RunSpec
from runner.probes import harness
from runner.results.model import SCHEMA_VERSION, Outcome, Results, Status
from tests.support.real import INTEGRATION, ROOT, run_in_container, selftest
from tests.support.site import site_html

pytestmark = pytest.mark.integration

HERE = INTEGRATION
Z2 = "zarr-2.18.7-numcodecs-0.15.1-pip-py3.11"
Z3 = "zarr-3.1.6-pip-py3.11"


def cell(results: Results, writer: str, writer_probe: str, reader: str, reader_probe: str, fixture: str):  # type: ignore[no-untyped-def]
    return next(
        c
        for c in results.cells
        if (c.writer.env, c.writer.probe, c.reader.env, c.reader.probe, c.fixture)
        == (writer, writer_probe, reader, reader_probe, fixture)
    )


def test_images_record_resolved_versions(small_run: Results) -> None:
    envs = {e.slug: e for e in small_run.environments}
    assert envs[Z2].status == "ok" and envs[Z3].status == "ok"
    assert envs[Z2].libraries["zarr"] == "2.18.7" and envs[Z2].libraries["numcodecs"] == "0.15.1"
    assert envs[Z3].libraries["zarr"] == "3.1.6"
    assert envs[Z3].info["python"].startswith("3.11")


def test_zarr3_reads_what_zarr2_wrote_and_back(small_run: Results) -> None:
    for fixture in ("int32-random", "float32-nan-fill"):
        assert cell(small_run, Z2, "zarr-v2", Z3, "zarr-zipstore", fixture).status == "pass"
        assert cell(small_run, Z3, "zarr-v2", Z2, "zarr-zipstore", fixture).status == "pass"
        assert cell(small_run, Z3, "zarr-v3", Z3, "zarr-zipstore", fixture).status == "pass"
        assert cell(small_run, Z2, "zarr-v2", Z3, "zarr-fsspec", fixture).status == "pass"


def test_zarr2_cannot_read_format_3_and_says_so(small_run: Results) -> None:
    c = cell(small_run, Z3, "zarr-v3", Z2, "zarr-zipstore", "int32-random")
    assert c.status == "unsupported"
    assert "reads Zarr format 2 only" in c.reason


def test_sharding_needs_format_3(small_run: Results) -> None:
    written = {(a.env, a.probe, a.fixture): a for a in small_run.archives}
    assert written[(Z3, "zarr-v3", "sharded")].status == "written"
    skipped = written[(Z2, "zarr-v2", "sharded")]
    assert skipped.status == "skipped" and skipped.reason == "the fixture needs Zarr format 3 (the sharding codec)"
    assert cell(small_run, Z3, "zarr-v3", Z3, "zarr-zipstore", "sharded").status == "pass"


def test_archives_have_checksums_and_zip_checks(small_run: Results) -> None:
    for archive in small_run.archives:
        if archive.status == "written":
            assert archive.sha256 and len(archive.sha256) == 64
            assert archive.zip_checks is not None and archive.zip_checks.crc_ok is True
            assert archive.zip_checks.duplicates == []
            assert archive.timings["write_s"] > 0


def test_every_cell_has_an_explicit_status_and_reads_are_timed(small_run: Results) -> None:
    assert len(small_run.cells) == len({c.id for c in small_run.cells})
    for c in small_run.cells:
        assert c.status in {"pass", "unsupported", "skipped"}, (c.id, c.status, c.reason)
        if c.status != "pass":
            assert c.reason
        else:
            assert c.timings["read_s"] > 0 and len(c.timings["read_samples"]) == 2


def test_a_hostile_probe_is_contained_and_recorded(
    docker_engine: DockerEngine, small_run: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network, nothing writable outside its scratch space, a PID limit, no host paths, no host
    environment, no new privileges and no capabilities: each tried by a probe and recorded."""
    monkeypatch.setenv("ZIPSTORE_TEST_SECRET_TOKEN", "ghp_not_for_containers")
    secret = tmp_path / "host-only.txt"
    secret.write_text("a file only the host has")
    host_paths = [str(ROOT), str(secret), "/var/run/docker.sock", str(tmp_path / "work")]  # /root is in images too
    assert all(Path(p).exists() for p in host_paths[:2])
    got = run_in_container(
        docker_engine,
        tmp_path,
        [
            selftest("network"),
            selftest("write-outside"),
            selftest("fork-bomb"),
            selftest("read-host", paths=host_paths),
            selftest("environment"),
        ],
        mounts=(Mount(source=str(tmp_path), target="/artifacts"),),
        pids_limit=128,
    )
    network = got["network"].verdict()
    assert network is not None and network.status is Status.FAIL, got["network"].data
    assert "no network" in network.reason
    written = got["write-outside"].verdict()
    assert written is not None and written.status is Status.FAIL, got["write-outside"].data
    assert "Read-only file system" in written.reason
    bomb = got["fork-bomb"].verdict()
    assert bomb is not None and bomb.status is Status.FAIL, got["fork-bomb"].data
    assert "fork refused after" in bomb.reason and "Resource temporarily unavailable" in bomb.reason
    assert int(bomb.reason.split("after ")[1].split()[0]) < 128
    assert got["read-host"].data["seen"] == []
    env = got["environment"].data
    assert "ZIPSTORE_TEST_SECRET_TOKEN" not in env["variables"]
    image_env = {"PATH", "HOME", "HOSTNAME", "LANG", "DEBIAN_FRONTEND", "PIP_DISABLE_PIP_VERSION_CHECK",
                 "PIP_NO_CACHE_DIR", "PIP_ROOT_USER_ACTION", "PYTHONDONTWRITEBYTECODE", "PIP_CERT",
                 "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}  # fmt: skip
    image_env |= set(harness.SINGLE_THREADED_BLAS)  # the harness's own, for its fork servers: not the host's
    assert set(env["variables"]) <= image_env, set(env["variables"]) - image_env
    assert env["no_new_privs"] == "1" and int(env["cap_eff"], 16) == 0 and env["uid"] != 0


def test_a_memory_limit_kill_is_oom_every_time_beside_a_probe_that_ends_normally(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """One event, one status, in a real container: memory bombs two at a time beside probes that end
    normally, six times over, every bomb oom (the exact race, a neighbour ending between the kill and the
    bomb's reaping, is forced on the host in tests/engines/test_harness.py)."""
    tasks = [t for n in range(6) for t in (selftest("oom", task=n), selftest("ok", task=n))]
    tasks = [replace(t, id=f"{t.id}-{n}") for n, t in enumerate(tasks)]
    got = run_in_container(docker_engine, tmp_path, tasks, memory="256m", jobs=2, phase="oom-repeat")
    statuses = {name: (r.verdict() or Outcome(status=Status.PASS)).status for name, r in got.items()}
    assert statuses == {t.id: Status.OOM if t.id.startswith("oom") else Status.PASS for t in tasks}, statuses


def test_only_allow_listed_variables_may_be_set_in_a_container(docker_engine: DockerEngine) -> None:
    with pytest.raises(ValueError, match="GITHUB_TOKEN"):
        docker_engine.run(
            RunSpec(image="zipstore-matrix/debian:bookworm", command=("true",), environment={"GITHUB_TOKEN": "x"})
        )


def test_harness_turns_each_failure_into_a_record(
    docker_engine: DockerEngine, small_run: Results, tmp_path: Path
) -> None:
    got = run_in_container(
        docker_engine,
        tmp_path,
        [
            selftest("ok"),
            selftest("segfault"),
            selftest("hang", 3),
            selftest("oom"),
            selftest("unsupported"),
            selftest("silent-exit"),
            selftest("keyerror"),
        ],
        memory="512m",
    )
    statuses = {name: (r.verdict() or Outcome(status=Status.PASS)).status for name, r in got.items()}
    assert statuses == {
        "ok": Status.PASS,
        "segfault": Status.CRASH,
        "hang": Status.TIMEOUT,
        "oom": Status.OOM,
        "unsupported": Status.UNSUPPORTED,
        "silent-exit": Status.CRASH,
        "keyerror": Status.FAIL,
    }, {name: r.verdict() for name, r in got.items()}
    assert got["segfault"].run is not None and got["segfault"].run["signal"] == "SIGSEGV"
    assert got["silent-exit"].record is None and got["silent-exit"].run is not None
    assert "ImportError" in got["silent-exit"].run["stderr_tail"]
    assert got["keyerror"].data["error_type"] == "builtins.KeyError"


def test_a_container_the_engine_refuses_is_recorded_with_the_engines_words(
    docker_engine: DockerEngine, small_run: Results, tmp_path: Path
) -> None:
    missing = Mount(source=str(tmp_path / "does-not-exist"), target="/data")
    got = run_in_container(docker_engine, tmp_path, [selftest("ok")], mounts=(missing,))
    verdict = got["ok"].verdict()
    assert verdict is not None and verdict.status is Status.CRASH
    assert verdict.reason.startswith("the container could not run: ")
    assert "does-not-exist" in verdict.reason  # Docker's own message names the missing bind source


def test_read_only_mounts_and_no_network_are_enforced(docker_engine: DockerEngine, tmp_path: Path) -> None:
    base = ensure_base(docker_engine, "debian:bookworm").ref
    (tmp_path / "ro").mkdir()
    result = docker_engine.run(
        RunSpec(
            image=base,
            command=(
                "sh",
                "-c",
                "touch /ro/x || echo RO-REFUSED; touch /etc/x || echo ROOTFS-REFUSED; "
                "cat /proc/net/dev | grep -c eth0 || echo NO-NET",
            ),
            mounts=(Mount(source=str(tmp_path / "ro"), target="/ro"),),
            timeout=60,
            user="65534:65534",
        )
    )
    assert "RO-REFUSED" in result.logs and "ROOTFS-REFUSED" in result.logs and "NO-NET" in result.logs
    assert not (tmp_path / "ro" / "x").exists()


def test_end_to_end_cli_then_a_warm_rerun_builds_nothing(
    docker_engine: DockerEngine, small_run: Results, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    cmd = [sys.executable, "-m", "runner", str(HERE / "small.yaml"), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ}, timeout=1800)
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["run"]["finished"]
    assert all(e["cached"] for e in data["environments"]), "images built by the first run must be reused"
    assert "building" not in done.stderr
    html = site_html(out)
    assert "int32-random" in html and Z3 in html
    assert (out / "matrix.md").is_file()


def test_cleanup_survives_a_container_another_runner_removes_while_it_lists(
    docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two shards on one engine: one's probe container ends and goes while the other lists its leftovers."""
    base = ensure_base(docker_engine, "debian:bookworm").ref
    client = docker_engine.client
    labels = {LABEL: "probe", OWNER_LABEL: "elsewhere-but-alive:1"}  # another host's: never this cleanup's
    gone = f"{gethostname()}:{2**22 + 1}"  # a pid above pid_max: that runner is gone
    leftover = client.containers.create(base, ["true"], labels={LABEL: "probe", OWNER_LABEL: gone})
    passing = client.containers.create(base, ["true"], labels=labels)
    listing = client.api.containers

    def listed_then_one_goes(*args: object, **kwargs: object) -> object:
        answer = listing(*args, **kwargs)
        passing.remove(force=True)  # the other shard's probe ends now, between the list and any inspection
        return answer

    monkeypatch.setattr(client.api, "containers", listed_then_one_goes)
    assert docker_engine.cleanup() >= 1  # the dead owner's leftover at least, and no error for the one that went
    monkeypatch.undo()
    assert not client.containers.list(all=True, filters={"id": leftover.id})
