"""The in-container harness run directly on the host (it is standard library only), with the self-test
probe: each way a probe process can end reaches its run.json, in milliseconds, with no engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.probes import harness
from runner.protocol import RECORD_VERSION, ProbeResult, Task, collect, job_file, load_json
from runner.resources import probes_dir
from runner.results.model import Status


def run_harness(
    tmp_path: Path, *tasks: Task, jobs: int = 2, fork: bool = True, env: dict[str, str] | None = None
) -> dict[str, ProbeResult]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    job = tmp_path / "tasks.json"
    job.write_text(job_file(list(tasks), jobs, fork))
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, str(probes_dir() / "harness.py"), str(job), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return {t.id: collect(out, t) for t in tasks}


def selftest(action: str, timeout: float = 30.0) -> Task:
    return Task(id=action, script="selftest_probe.py", timeout=timeout, args={"action": action})


@pytest.mark.parametrize("watch", ["pidfd", "poll"])
@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh"])
def test_every_way_a_probe_ends_reaches_its_status(tmp_path: Path, fork: bool, watch: str) -> None:
    # the harness wakes as a process ends (its pidfd) or, where it cannot watch one, looks every POLL: the same
    results = run_harness(
        tmp_path,
        selftest("ok"),
        selftest("segfault"),
        selftest("hang", timeout=0.5),
        selftest("unsupported"),
        selftest("silent-exit"),
        selftest("no-such-action"),
        fork=fork,
        env={"ZIPSTORE_NO_PIDFD": "1"} if watch == "poll" else None,
    )
    assert {r.run["process"] for r in results.values() if r.run} == {"forked" if fork else "fresh"}
    assert results["ok"].verdict() is None
    assert results["ok"].data["record_version"] == RECORD_VERSION
    verdicts = {name: r.verdict() for name, r in results.items() if name != "ok"}
    assert {name: v.status for name, v in verdicts.items() if v is not None} == {
        "segfault": Status.CRASH,
        "hang": Status.TIMEOUT,
        "unsupported": Status.UNSUPPORTED,
        "silent-exit": Status.CRASH,
        "no-such-action": Status.FAIL,
    }
    assert results["segfault"].run is not None and results["segfault"].run["signal"] == "SIGSEGV"
    assert results["hang"].run is not None and results["hang"].run["seconds"] < 10
    silent = verdicts["silent-exit"]
    assert silent is not None
    assert silent.reason == "exited 3 without a record: ImportError: something fundamental is missing"
    failed = verdicts["no-such-action"]
    assert failed is not None and failed.reason == "KeyError: 'no-such-action'"


def test_output_is_kept_as_a_bounded_tail(tmp_path: Path) -> None:
    run = run_harness(tmp_path, selftest("spew"))["spew"].run
    assert run is not None
    for stream, last in (("stdout_tail", "last line of stdout"), ("stderr_tail", "last line of stderr")):
        assert run[stream].rstrip().endswith(last)
        assert len(run[stream]) <= harness.TAIL + 1


def test_a_record_in_another_protocol_version_is_refused_plainly() -> None:
    record: dict[str, Any] = {"record_version": RECORD_VERSION + 1, "status": "ok"}
    verdict = ProbeResult(run={"exit_code": 0}, record=record).verdict()
    assert verdict is not None and verdict.status is Status.CRASH
    assert f"record version {RECORD_VERSION + 1}" in verdict.reason and "different releases" in verdict.reason
    unversioned = ProbeResult(run={"exit_code": 0}, record={"status": "ok"}).verdict()
    assert unversioned is not None and "record version None" in unversioned.reason


def test_host_and_probes_speak_the_same_record_version() -> None:
    sys.path.insert(0, str(probes_dir()))
    try:
        import _common  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(probes_dir()))
    assert _common.RECORD_VERSION == RECORD_VERSION


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"[1, 2]", "not an object"), (b"{", "not JSON"), (b"\xff\xfe", "not UTF-8"), (b"[" * 100_000, "too deep")],
)
def test_unreadable_records_are_no_records(tmp_path: Path, content: bytes, why: str) -> None:
    (tmp_path / "t.probe.json").write_bytes(content)
    (tmp_path / "t.run.json").write_text(json.dumps({"exit_code": 0}))
    result = collect(tmp_path, Task(id="t", script="x.py", timeout=1))
    assert result.record is None, why
    verdict = result.verdict()
    assert verdict is not None and verdict.status is Status.CRASH and "without a record" in verdict.reason


def test_a_record_over_the_cap_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"pad": "x" * 100}))
    assert load_json(path, limit=50) is None
    assert load_json(path, limit=500) == {"pad": "x" * 100}


def test_the_canary_the_hostile_corpus_plants_is_the_one_probes_look_for() -> None:
    from runner.phases import hostile

    sys.path.insert(0, str(probes_dir()))
    try:
        import _common
    finally:
        sys.path.remove(str(probes_dir()))
    assert hostile.CANARY == _common.CANARY


def test_a_probe_that_unpickles_the_canary_reports_executed_code(tmp_path: Path) -> None:
    """The pickle of the hostile corpus, unpickled by a probe process under the real harness."""
    import pickle as host_pickle

    from runner.phases import hostile

    payload = tmp_path / "payload.pickle"
    payload.write_bytes(host_pickle.dumps([hostile._Canary()], protocol=2))
    script = tmp_path / "unpickling_probe.py"
    script.write_text(
        "import pickle, sys\n"
        f"sys.path.insert(0, {str(probes_dir())!r})\n"
        "import _common as c\n"
        f"c.main(lambda args: {{'n': len(pickle.loads(open({str(payload)!r}, 'rb').read()))}})\n"
    )
    result = run_harness(tmp_path, Task(id="p", script=str(script), timeout=30))["p"]
    assert result.verdict() is None and result.data["executed_code"] is True
    clean = run_harness(tmp_path / "clean", selftest("ok"))["ok"]
    assert "executed_code" not in clean.data


def _library_probe(tmp_path: Path, library: str, preload: str = "", extra: str = "") -> Path:
    """A probe script whose handler imports ``library`` (a module written beside it)."""
    script = tmp_path / "library_probe.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(probes_dir())!r})\n"
        "import _common as c\n"
        f"PRELOAD = ({preload!r},)\n" * bool(preload) + extra + "\n"
        "def handler(args):\n"
        f"    import {library}\n"
        f"    return {{'library': {library!r}, 'imports': {library}.IMPORTS}}\n"
        "if __name__ == '__main__':\n"
        "    c.main(handler)\n"
    )
    return script


def _tasks(script: Path, n: int) -> list[Task]:
    return [Task(id=f"t{i}", script=str(script), timeout=30) for i in range(n)]


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh"])
def test_a_preloaded_library_is_imported_once_per_container_when_forking(tmp_path: Path, fork: bool) -> None:
    counter = tmp_path / "imports.txt"
    (tmp_path / "counted.py").write_text(
        f"with open({str(counter)!r}, 'a') as fh:\n    fh.write('x')\nIMPORTS = 1\n"
        "import warnings\nwarnings.warn('counted is deprecated', DeprecationWarning)\n"
    )
    script = _library_probe(tmp_path, "counted", preload="counted")
    results = run_harness(tmp_path / "run", *_tasks(script, 5), fork=fork)
    assert all(r.verdict() is None for r in results.values())
    assert counter.read_text() == ("x" if fork else "xxxxx")
    # what the library said as it was imported is in every record, however it was imported
    assert all("DeprecationWarning: counted is deprecated" in r.data["warnings"] for r in results.values())


@pytest.mark.parametrize(
    ("module", "extra", "why"),
    [
        (
            "import threading, time\n"
            "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\nIMPORTS = 1\n",
            "",
            "importing its library started 1 thread(s): not fork-safe",
        ),
        ("IMPORTS = 1\n", "FORK_SAFE = False", "the probe says its library is not fork-safe"),
        ("raise SystemExit('no such library here')\n", "", "preloading failed: SystemExit: no such library here"),
    ],
    ids=["starts-a-thread", "declared", "preload-fails"],
)
def test_a_library_that_cannot_be_forked_gets_a_fresh_process_per_task(
    tmp_path: Path, module: str, extra: str, why: str
) -> None:
    (tmp_path / "lib.py").write_text(module)
    script = _library_probe(tmp_path, "lib", preload="lib", extra=extra)
    job = tmp_path / "tasks.json"
    job.write_text(job_file(_tasks(script, 2), 2, True))
    (tmp_path / "out").mkdir()
    done = subprocess.run(
        [sys.executable, str(probes_dir() / "harness.py"), str(job), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert why in done.stdout
    results = {t.id: collect(tmp_path / "out", t) for t in _tasks(script, 2)}
    assert {r.run["process"] for r in results.values() if r.run} == {"fresh"}
    if "preloading" not in why:
        assert all(r.verdict() is None for r in results.values())
    else:  # the probe itself then meets the failing import, in its own words
        verdict = results["t0"].verdict()
        assert verdict is not None and "no such library here" in verdict.reason


def test_an_oom_kill_is_the_killed_probes_whichever_probe_ends_first() -> None:
    """One memory-limit kill, one oom: a neighbour ending normally just after the kill does not use it up."""
    from runner.probes.harness import OomLedger

    counts = iter([0, 1, 1, 1, 2, 2])
    ledger = OomLedger(read=lambda: next(counts))  # 0 at the start
    assert not ledger.claim(sigkilled=False), "the neighbour ended normally after the kill (count 1)"
    assert ledger.claim(sigkilled=True), "the killed probe, seen next, still gets its kill"
    assert not ledger.claim(sigkilled=True), "a SIGKILL with no kill counted is a crash, not an oom"
    assert ledger.claim(sigkilled=True), "the second kill (count 2)"
    assert not ledger.claim(sigkilled=True), "each kill is claimed once"
    unreadable = OomLedger(read=lambda: None)
    assert not unreadable.claim(sigkilled=True), "without a cgroup count, a SIGKILL is a crash"


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh"])
def test_a_counted_kill_is_oom_although_a_neighbour_ended_after_it(tmp_path: Path, fork: bool) -> None:
    """Through the real harness: the cgroup counts a kill, a neighbour then ends normally, then the killed
    probe is reaped. The old harness gave the count to the neighbour and called the kill a crash."""
    counter = tmp_path / "memory.events"
    counter.write_text("oom_kill 0\n")
    args = {"counter": str(counter)}
    killed = Task(id="killed", script="selftest_probe.py", timeout=30, args={"action": "counted-kill", **args})
    neighbour = Task(id="neighbour", script="selftest_probe.py", timeout=30, args={"action": "after-kill", **args})
    got = run_harness(tmp_path, killed, neighbour, fork=fork, env={"ZIPSTORE_OOM_EVENTS": str(counter)})
    assert got["neighbour"].verdict() is None, got["neighbour"].run
    verdict = got["killed"].verdict()
    assert verdict is not None and verdict.status is Status.OOM, (verdict, got["killed"].run)


def test_an_error_raised_from_a_missing_feature_is_unsupported_in_both_libraries_words(tmp_path: Path) -> None:
    """bioio wraps zipfile's "That compression method is not supported" (a NotImplementedError) in its own
    UnsupportedFileFormatError, ``raise ... from e``: the reader still lacks the feature, so the cell is
    unsupported, and its reason keeps both the wrapper's words and the cause's. An error merely raised while
    another was handled is not caused by it, and stays an error."""
    script = tmp_path / "wrapping_probe.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(probes_dir())!r})\n"
        "import _common as c\n"
        "class UnsupportedFileFormatError(Exception): pass\n"
        "def handler(args):\n"
        "    try:\n"
        "        raise NotImplementedError('That compression method is not supported')\n"
        "    except NotImplementedError as e:\n"
        "        if args.get('explicit', True):\n"
        "            raise UnsupportedFileFormatError('Could not parse a Zarr store') from e\n"
        "        raise UnsupportedFileFormatError('Could not parse a Zarr store')\n"
        "c.main(handler)\n"
    )
    caused = run_harness(tmp_path / "a", Task(id="p", script=str(script), timeout=30))["p"]
    verdict = caused.verdict()
    assert verdict is not None and verdict.status is Status.UNSUPPORTED
    assert verdict.reason.startswith("__main__.UnsupportedFileFormatError: Could not parse a Zarr store (raised from ")
    assert verdict.reason.endswith(": NotImplementedError: That compression method is not supported)")
    handled = run_harness(tmp_path / "b", Task(id="p", script=str(script), timeout=30, args={"explicit": False}))["p"]
    assert handled.verdict() is not None and handled.verdict().status is Status.FAIL  # type: ignore[union-attr]


def _browser_service(tmp_path: Path, ready: bool = True, lives_for: int = 0) -> tuple[dict[str, str], Path]:
    """A stand-in for ``browser_server.mjs``: the same lines in and out, no browser behind it. It notes each
    start and every line the harness sends it in the returned log; with ``lives_for`` it ends itself after
    that many dispose requests (the browser gone mid-run)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "service.log"
    service = tmp_path / "service.py"
    service.write_text(
        "import json, sys\n"
        f"log = open({str(log)!r}, 'a', buffering=1)\n"
        "log.write('start\\n')\n"
        f"print(json.dumps({{'ready': {ready!r}, 'endpoint': 'http://127.0.0.1:9', 'why': 'no Chromium here'}}),"
        " flush=True)\n"
        "seen = 0\n"
        "for line in sys.stdin:\n"
        "    log.write(line)\n"
        "    seen += 1\n"
        f"    if seen == {lives_for}:\n"
        "        sys.exit(1)\n"
    )
    return {"ZIPSTORE_BROWSER_SERVER": json.dumps([sys.executable, str(service)])}, log


def _page_probe(tmp_path: Path) -> Path:
    """A browser probe as the harness sees one: it names its page's context where it is told (as the service
    does for a real probe), records what it was given, and with ``hang`` never ends."""
    script = tmp_path / "page_probe.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(probes_dir())!r})\n"
        "import _common as c\n"
        "def handler(args):\n"
        "    given = args.get('browser')\n"
        "    if given:\n"
        "        with open(given['context_file'], 'w') as fh:\n"
        "            fh.write('context-' + args['name'])\n"
        "    time.sleep(60 if args.get('hang') else 0.3)\n"
        "    return {'endpoint': (given or {}).get('endpoint')}\n"
        "if __name__ == '__main__':\n"
        "    c.main(handler)\n"
    )
    return script


def _page_tasks(script: Path, *names: str, hang: str = "") -> list[Task]:
    return [
        Task(
            id=n,
            script=str(script),
            timeout=1.0 if n == hang else 30,
            args={"name": n, "hang": n == hang},
            browser=True,
        )
        for n in names
    ]


def test_browser_tasks_share_one_service_which_closes_each_tasks_context_however_it_ended(tmp_path: Path) -> None:
    env, log = _browser_service(tmp_path)
    tasks = _page_tasks(_page_probe(tmp_path), "a", "b", "c", hang="b")
    results = run_harness(tmp_path / "run", *tasks, env=env)
    assert log.read_text().splitlines()[0] == "start"
    disposed = sorted(json.loads(line)["dispose"] for line in log.read_text().splitlines()[1:])
    assert disposed == ["context-a", "context-b", "context-c"]  # b's too, killed at its timeout
    assert {r.run["browser"] for r in results.values() if r.run} == {"shared"}
    assert results["a"].data["endpoint"] == "http://127.0.0.1:9"
    hung = results["b"].verdict()
    assert hung is not None and hung.status is Status.TIMEOUT


def test_without_fork_servers_or_a_ready_service_each_browser_task_starts_its_own(tmp_path: Path) -> None:
    env, log = _browser_service(tmp_path)
    fresh = run_harness(tmp_path / "fresh", *_page_tasks(_page_probe(tmp_path), "a", "b"), fork=False, env=env)
    assert not log.exists()
    assert all(r.data["endpoint"] is None and "browser" not in (r.run or {}) for r in fresh.values())

    env, log = _browser_service(tmp_path / "down", ready=False)
    refused = run_harness(tmp_path / "refused", *_page_tasks(_page_probe(tmp_path), "a", "b"), env=env)
    assert log.read_text() == "start\n"  # asked once, never again, and nothing to dispose
    assert all(r.verdict() is None and r.data["endpoint"] is None for r in refused.values())


def test_tasks_after_the_shared_browser_ended_start_their_own(tmp_path: Path) -> None:
    env, log = _browser_service(tmp_path, lives_for=1)
    tasks = _page_tasks(_page_probe(tmp_path), "a", "b", "c")
    results = run_harness(tmp_path / "run", *tasks, jobs=1, env=env)
    # it ends as it reads a's dispose: b may start before that is seen, c (b takes 0.3 s) starts after
    assert log.read_text().splitlines()[:2] == ["start", json.dumps({"dispose": "context-a"})]
    assert results["a"].data["endpoint"] == "http://127.0.0.1:9"
    assert results["c"].data["endpoint"] is None
    assert all(r.verdict() is None for r in results.values())
