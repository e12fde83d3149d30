"""In-container driver: run each probe task as its own process, with a timeout, and record how it ended.

Standard library only; nothing from ``runner`` (this file is mounted into images that lack it).

    python harness.py TASKS.json OUT_DIR

TASKS.json: {"jobs": N, "fork": bool, "tasks": [{"id", "script", "args", "timeout"}]}. Up to ``jobs``
probes run at once, each in its own process (a crash takes down nothing but itself). Each probe writes its
own record to OUT_DIR/<id>.probe.json; the harness then writes OUT_DIR/<id>.run.json with the process
outcome (exit code, signal, timeout, OOM kill, seconds, output tails). Each file is written as soon as its
task ends, so a container killed half-way loses nothing that already finished.

Imports are paid once per container (asv's ForkServer is the model): for each probe script a fork server
(``harness.py --serve SCRIPT``) imports the modules the script names in ``PRELOAD`` and then forks one
child per task, which runs the script as ``__main__`` in its own session, scratch directory and output
files; the harness times it, kills it on timeout and reads its exit status like any process's. A script
that says ``FORK_SAFE = False``, or whose imports start a thread (a forked child would inherit a copy of
the process with that thread missing), gets a fresh interpreter per task instead, as does every task when
``fork`` is false or a server cannot start.

The same holds for the probes that drive a web page (a task that says ``"browser": true``): Node has no fork
server, but Chromium is started once per container, with a small service of its own (``browser_server.mjs``),
and each task, still a process of its own, asks that service for its page, in a fresh browser context (its own
cache, cookies and storage: an incognito window), instead of starting a browser and its driver. The service
writes the context's id to the task's scratch space before the page exists; when the task ends, however it
ended, the harness has the service dispose of that context, so a task killed at its timeout leaves no page
running. With ``fork`` false, or when the browser cannot start or has ended, each task starts a
browser of its own, as it always could.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

TAIL = 4000
#: the image's own account of itself (the local engine, which has no image, says where it keeps it)
ENV_INFO = os.environ.get("ZIPSTORE_ENV_INFO", "/opt/zipstore/env.json")
#: where a process's end cannot be watched (no pidfd: not Linux 5.3+), how often to look
POLL = 0.01
#: the longest the harness sleeps on its watched descriptors before looking again anyway
WAKE = 1.0


def oom_kills() -> int | None:
    """Kernel OOM kills in this container's memory cgroup so far (v2, then v1), or None if unreadable."""
    if os.environ.get("ZIPSTORE_NO_CGROUP"):  # not in a container of its own: the counts are not ours
        return None
    paths: tuple[str, ...] = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
    if os.environ.get("ZIPSTORE_OOM_EVENTS"):  # the host tests' stand-in for the cgroup's file
        paths = (os.environ["ZIPSTORE_OOM_EVENTS"],)
    for path in paths:
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable once process ``pid`` has ended (Linux 5.3+), or None: then poll."""
    if os.environ.get("ZIPSTORE_NO_PIDFD"):  # the host tests' way to take the polling path
        return None
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def write_json(path: str, data: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def tail(path: str) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - TAIL * 4))
        text = fh.read().decode("utf-8", "replace")
    return text if len(text) <= TAIL else "…" + text[-TAIL:]


class OomLedger:
    """The memory cgroup's OOM kills, each claimed by one probe that died by SIGKILL. A kill is not used up by
    whichever probe happens to end first after it: with two probes at once, one killed at the memory limit
    and the other ending normally a moment earlier, the kill is still the killed one's (one event, one
    status, whichever process the kernel picked and whether it was a forked child)."""

    def __init__(self, read: Callable[[], int | None] = oom_kills) -> None:
        self.read = read
        self.seen = read()
        self.unclaimed = 0

    def claim(self, sigkilled: bool) -> bool:
        now = self.read()
        if self.seen is not None and now is not None:
            self.unclaimed += max(0, now - self.seen)
            self.seen = now
        if sigkilled and self.unclaimed > 0:
            self.unclaimed -= 1
            return True
        return False


#: the shared browser's service, next to this file
SERVICE = "browser_server.mjs"
#: where a browser probe writes the id of the browser context it opened, in its scratch space
CONTEXT_FILE = "browser-context.txt"


class Running:
    """One probe process (a fresh interpreter, or a child of a fork server) and the scratch space it owns."""

    def __init__(
        self,
        task: dict[str, Any],
        out_dir: str,
        server: ForkServer | None = None,
        browser: BrowserServer | None = None,
    ) -> None:
        self.task = task
        self.scratch = tempfile.mkdtemp(prefix="probe-")
        self.browser = browser
        args = dict(task["args"], record=os.path.join(out_dir, task["id"] + ".probe.json"), scratch=self.scratch)
        if browser is not None:
            args["browser"] = {"endpoint": browser.endpoint, "context_file": os.path.join(self.scratch, CONTEXT_FILE)}
        args_path = os.path.join(self.scratch, "args.json")
        write_json(args_path, args)
        self.stdout = os.path.join(self.scratch, "stdout.txt")
        self.stderr = os.path.join(self.scratch, "stderr.txt")
        self.started = time.perf_counter()
        self.deadline = self.started + float(task["timeout"])
        self.timed_out = False
        self.server = server
        self.returncode: int | None = None
        self.ends: int | None = None
        if server is not None:
            self.pid = server.fork(task["id"], args_path, self.scratch, self.stdout, self.stderr)
            self.proc = None
            return
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [*interpreter(task["script"]), script_path(task["script"]), args_path],
                stdout=out,
                stderr=err,
                start_new_session=True,  # so a timeout can kill the probe's children too
                cwd=self.scratch,
            )
        self.pid = self.proc.pid
        self.ends = pidfd(self.pid)  # readable once it has ended: the harness wakes then, not a poll later

    def ended(self) -> bool:
        if self.proc is not None:
            self.returncode = self.proc.poll()
        elif self.server is not None:
            self.returncode = self.server.returncode(self.task["id"])
        return self.returncode is not None

    def watched(self) -> int | None:
        """What becomes readable when this task may have ended: its fork server's reports, or its process's
        pidfd; None when neither can be watched."""
        if self.server is not None:
            return self.server.reports()
        return self.ends

    def poll(self) -> bool:
        """True once the process has ended (killing it first if it overran its timeout)."""
        if self.ended():
            return True
        if time.perf_counter() > self.deadline:
            self.timed_out = True
            with contextlib.suppress(ProcessLookupError):  # it may have just ended by itself
                os.killpg(self.pid, signal.SIGKILL)
            if self.proc is not None:
                self.proc.wait()
            while not self.ended():  # the server reaps its child and reports
                time.sleep(POLL)
            return True
        return False

    def outcome(self, ledger: OomLedger) -> dict[str, Any]:
        code = self.returncode
        died_by = signal.Signals(-code).name if code is not None and code < 0 and not self.timed_out else None
        oom = ledger.claim(died_by == "SIGKILL")
        result = {
            "id": self.task["id"],
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": died_by,
            "timed_out": self.timed_out,
            "oom_killed": oom,
            "seconds": round(time.perf_counter() - self.started, 6),
            "stdout_tail": tail(self.stdout),
            "stderr_tail": tail(self.stderr),
            "process": "forked" if self.server is not None else "fresh",
        }
        if self.browser is not None:
            result["browser"] = "shared"
            self.browser.dispose(os.path.join(self.scratch, CONTEXT_FILE))
        if self.ends is not None:
            os.close(self.ends)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return result


#: numpy's OpenBLAS starts a worker thread per CPU as it is imported, and a process with threads is not
#: forked (see ``serve``). No probe does linear algebra, so a fork server asks for one BLAS thread (unless
#: the image says otherwise): with that, none of the libraries measured here starts a thread on import.
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def interpreter(script: str) -> list[str]:
    """What runs a probe script: Python, or Node for the JavaScript probes (``.mjs``) of npm images."""
    return ["node"] if script.endswith((".mjs", ".js")) else [sys.executable]


def script_path(script: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), script)


#: An exit status the fork server reports for a child it lost (it died itself): the task crashed.
LOST = -int(signal.SIGKILL)


class LineServer:
    """A helper process the harness keeps for the container's tasks, spoken to in JSON lines on its stdin and
    stdout (its stderr goes to a log, for the words when it fails). Its first line says whether it is ready."""

    def __init__(self, command: list[str], name: str, env: dict[str, str] | None = None) -> None:
        fd, self.log = tempfile.mkstemp(prefix=f"{name}-", suffix=".txt")
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True, env=env
            )
        self.buffer = b""
        hello = self._message(timeout=600.0)  # imports can be slow on a loaded machine
        self.hello = hello or {}
        self.usable = bool(hello and hello.get("ready"))
        self.why_not = "" if self.usable else self.hello.get("why") or f"no answer: {self._log_tail()}"

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def _log_tail(self) -> str:
        return tail(self.log).strip()[-300:] or "(nothing on stderr)"

    def _message(self, timeout: float) -> dict[str, Any] | None:
        """The next line the server writes, parsed; None when it ends (or says nothing before ``timeout``)."""
        assert self.proc.stdout is not None
        deadline = time.perf_counter() + timeout
        while b"\n" not in self.buffer:
            left = max(0.0, deadline - time.perf_counter())
            if not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.log)


class ForkServer(LineServer):
    """The harness's side of one ``--serve SCRIPT`` process: ask it to fork, read what became of each child."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.codes: dict[str, int] = {}
        self.pids: dict[str, int] = {}
        command = [sys.executable, os.path.abspath(__file__), "--serve", script_path(script)]
        super().__init__(command, "fork-server", env={**SINGLE_THREADED_BLAS, **os.environ})

    def _drain(self) -> None:
        """Take every report the server has written so far; when it has died, its children are lost."""
        while True:
            message = self._message(timeout=0.0)
            if message is None:
                break
            if "exited" in message:
                self.codes[message["exited"]] = int(message["code"])
        if self.proc.poll() is not None and b"\n" not in self.buffer:
            for task_id, pid in self.pids.items():
                if task_id not in self.codes:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    self.codes[task_id] = LOST
            self.usable = False
            self.why_not = f"the fork server ended: {self._log_tail()}"

    def fork(self, task_id: str, args_path: str, scratch: str, stdout: str, stderr: str) -> int:
        self._send({"id": task_id, "args": args_path, "scratch": scratch, "stdout": stdout, "stderr": stderr})
        while True:
            message = self._message(timeout=60.0)
            if message is None:
                raise OSError(f"the fork server for {self.script} did not fork: {self._log_tail()}")
            if "exited" in message:
                self.codes[message["exited"]] = int(message["code"])
            elif message.get("forked") == task_id:
                self.pids[task_id] = int(message["pid"])
                return self.pids[task_id]

    def returncode(self, task_id: str) -> int | None:
        self._drain()
        return self.codes.get(task_id)

    def reports(self) -> int | None:
        """The descriptor its reports arrive on (None once it has ended: nothing more will come)."""
        return None if self.proc.stdout is None or self.proc.poll() is not None else self.proc.stdout.fileno()


class BrowserServer(LineServer):
    """The container's one Chromium (``browser_server.mjs``): where browser probes open their contexts."""

    def __init__(self) -> None:
        # the host tests' stand-in for the service (it speaks the same protocol, with no browser behind it)
        command = json.loads(os.environ.get("ZIPSTORE_BROWSER_SERVER", "null")) or ["node", script_path(SERVICE)]
        super().__init__(command, "browser-server")
        self.endpoint = str(self.hello.get("endpoint", ""))
        self.usable = self.usable and self.endpoint.startswith("http://127.0.0.1:")

    def alive(self) -> bool:
        """Still there to be given to a task; once the browser has ended, tasks start their own."""
        if self.usable and self.proc.poll() is not None:
            self.usable = False
            self.why_not = f"the shared browser ended: {self._log_tail()}"
        return self.usable

    def dispose(self, context_file: str) -> None:
        """Close the browser context a task opened (named in ``context_file``), if it is still open."""
        try:
            with open(context_file, encoding="ascii") as fh:
                context = fh.read(200).strip()
        except (OSError, UnicodeDecodeError):
            return  # the task never opened one
        if context and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self._send({"dispose": context})


def threads() -> int:
    """Threads of this process, native ones included (Linux); 1 when it cannot tell."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def serve(script: str) -> int:
    """The fork server: import what ``script`` preloads, then fork a child per request on stdin.

    Protocol, one JSON object per line. Out: {"ready": true} or {"ready": false, "why"}; {"forked": id,
    "pid"}; {"exited": id, "code"} (negative: the signal). In: {"id", "args", "scratch", "stdout",
    "stderr"}. Stdin closing ends the server once its children have ended.
    """
    requests, replies = sys.stdin.buffer, sys.stdout.buffer

    def say(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    sys.path.insert(0, os.path.dirname(script))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = runpy.run_path(script, run_name="__zipstore_preload__")
            fork_safe = names.get("FORK_SAFE", True)
            for module in names.get("PRELOAD", ()):
                with contextlib.suppress(Exception):  # the probe itself reports a library that fails to import
                    __import__(module)
        common = sys.modules.get("_common")
        if common is not None:  # what importing said belongs in every record, as in a fresh process
            common.PRELOAD_WARNINGS[:] = [f"{w.category.__name__}: {w.message}" for w in caught]
    except BaseException as exc:  # whatever the import did, the harness falls back
        say({"ready": False, "why": f"preloading failed: {type(exc).__name__}: {exc}"})
        return 0
    if not fork_safe:
        say({"ready": False, "why": "the probe says its library is not fork-safe (FORK_SAFE = False)"})
        return 0
    if threads() > 1:
        say({"ready": False, "why": f"importing its library started {threads() - 1} thread(s): not fork-safe"})
        return 0
    say({"ready": True})
    children: dict[int, str] = {}
    ends: dict[int, int] = {}  # child pid -> its pidfd: the loop wakes as a child ends, not a poll later
    pending = b""
    open_input = True
    while open_input or children:
        watched = [requests.fileno()] if open_input else []
        watched += ends.values()
        # every child watched: wait for whichever comes first; a child without a pidfd: look every POLL
        wait = WAKE if len(ends) == len(children) else POLL
        if not watched:
            time.sleep(POLL)
        ready = select.select(watched, [], [], wait)[0] if watched else []
        if open_input and requests.fileno() in ready:
            chunk = os.read(requests.fileno(), 65536)  # unbuffered: select must see every byte not yet read
            open_input = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(script, request)  # never returns
                children[pid] = request["id"]
                fd = pidfd(pid)
                if fd is not None:
                    ends[pid] = fd
                say({"forked": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in ends:
                os.close(ends.pop(pid))
            if pid in children:
                say({"exited": children.pop(pid), "code": os.waitstatus_to_exitcode(status)})
    return 0


def _child(script: str, request: dict[str, Any]) -> None:
    """In the forked child: become the probe process a fresh interpreter would have been, then run."""
    code = 0
    try:
        os.setsid()  # its own process group, so a timeout kills whatever it starts
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        os.chdir(request["scratch"])
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        sys.argv = [script, request["args"]]
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # as an uncaught exception ends an interpreter
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--serve":
        return serve(argv[2])
    tasks_path, out_dir = argv[1], argv[2]
    with open(tasks_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    tasks, jobs = spec["tasks"], max(1, int(spec.get("jobs", 1)))
    use_fork = bool(spec.get("fork", False))
    if os.path.exists(ENV_INFO):
        shutil.copyfile(ENV_INFO, os.path.join(out_dir, "env.json"))
    pending, done = list(tasks), 0
    running: list[Running] = []
    servers: dict[str, ForkServer] = {}
    browsers: list[BrowserServer] = []  # at most one, started by the first task that needs it
    ledger = OomLedger()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                task = pending.pop(0)
                server = _server(servers, task["script"]) if use_fork else None
                browser = _browser(browsers) if use_fork and task.get("browser") else None
                running.append(Running(task, out_dir, server, browser))
            wait_for_any(running)
            for probe in [p for p in running if p.poll()]:
                running.remove(probe)
                outcome = probe.outcome(ledger)
                write_json(os.path.join(out_dir, probe.task["id"] + ".run.json"), outcome)
                done += 1
                state = "timeout" if outcome["timed_out"] else outcome["signal"] or f"exit {outcome['exit_code']}"
                print(f"[{done}/{len(tasks)}] {probe.task['id']}: {state} in {outcome['seconds']:.2f}s", flush=True)
    finally:
        for each in [*servers.values(), *browsers]:
            each.close()
    return 0


def wait_for_any(running: list[Running]) -> None:
    """Sleep until one of the running tasks may have ended or reached its timeout: woken at once by a fork
    server's report or a process's end (so a task's record is not a poll interval late, nor is the next task);
    where one of them cannot be watched, POLL."""
    if not running or any(p.ended() for p in running):  # ended() reads what the servers have reported so far
        return
    watched = [p.watched() for p in running]
    fds = {fd for fd in watched if fd is not None}
    left = min(p.deadline for p in running) - time.perf_counter()
    if None in watched:  # a task that cannot be watched: look again soon
        time.sleep(POLL)
    elif left > 0:
        select.select(sorted(fds), [], [], min(left, WAKE))


def _browser(browsers: list[BrowserServer]) -> BrowserServer | None:
    """The container's shared browser (started on first use), or None when each task must start its own."""
    if not browsers:
        browsers.append(BrowserServer())
        if not browsers[0].usable:
            print(f"a browser per task ({browsers[0].why_not})", flush=True)
    browser = browsers[0]
    if browser.usable and not browser.alive():
        print(f"a browser per task from now on ({browser.why_not})", flush=True)
    return browser if browser.alive() else None


def _server(servers: dict[str, ForkServer], script: str) -> ForkServer | None:
    """The script's fork server (started on first use), or None when its tasks need fresh processes."""
    if not script.endswith(".py"):
        return None  # a Node probe: its runtime has no fork server here; a fresh process each
    if script not in servers:
        servers[script] = ForkServer(script)
        if not servers[script].usable:
            print(f"{script}: a fresh process per task ({servers[script].why_not})", flush=True)
    server = servers[script]
    if not server.usable:
        return None
    server._drain()  # a server that died since is noticed before it is asked again
    return server if server.usable else None


if __name__ == "__main__":
    sys.exit(main(sys.argv))
