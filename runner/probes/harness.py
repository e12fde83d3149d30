"""In-container driver: run each probe task as its own process, with a timeout, and record how it ended.

Standard library only; nothing from ``runner`` (this file is mounted into images that lack it).

    python harness.py TASKS.json OUT_DIR

TASKS.json: {"jobs": N, "tasks": [{"id", "script", "args", "timeout"}]}. Up to ``jobs`` probes run at once,
each in its own process (a crash takes down nothing but itself). Each probe writes its own record to
OUT_DIR/<id>.probe.json; the harness then writes OUT_DIR/<id>.run.json with the process outcome (exit
code, signal, timeout, OOM kill, seconds, output tails). Each file is written as soon as its task ends,
so a container killed half-way loses nothing that already finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TAIL = 4000
ENV_INFO = "/opt/zipstore/env.json"
POLL = 0.01


def oom_kills() -> int | None:
    """Kernel OOM kills in this container's memory cgroup so far (v2, then v1), or None if unreadable."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
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


class Running:
    """One probe process and the scratch space it owns."""

    def __init__(self, task: dict, out_dir: str) -> None:
        self.task = task
        self.scratch = tempfile.mkdtemp(prefix="probe-")
        probes = os.path.dirname(os.path.abspath(__file__))
        args = dict(task["args"], record=os.path.join(out_dir, task["id"] + ".probe.json"), scratch=self.scratch)
        args_path = os.path.join(self.scratch, "args.json")
        write_json(args_path, args)
        self.stdout = os.path.join(self.scratch, "stdout.txt")
        self.stderr = os.path.join(self.scratch, "stderr.txt")
        self.started = time.perf_counter()
        self.deadline = self.started + float(task["timeout"])
        self.timed_out = False
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(probes, task["script"]), args_path],
                stdout=out,
                stderr=err,
                start_new_session=True,  # so a timeout can kill the probe's children too
                cwd=self.scratch,
            )

    def poll(self) -> bool:
        """True once the process has ended (killing it first if it overran its timeout)."""
        if self.proc.poll() is not None:
            return True
        if time.perf_counter() > self.deadline:
            self.timed_out = True
            with contextlib.suppress(ProcessLookupError):  # it may have just ended by itself
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return True
        return False

    def outcome(self, oom: bool) -> dict:
        code = self.proc.returncode
        died_by = signal.Signals(-code).name if code is not None and code < 0 and not self.timed_out else None
        result = {
            "id": self.task["id"],
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": died_by,
            "timed_out": self.timed_out,
            "oom_killed": oom and died_by == "SIGKILL",
            "seconds": round(time.perf_counter() - self.started, 6),
            "stdout_tail": tail(self.stdout),
            "stderr_tail": tail(self.stderr),
        }
        shutil.rmtree(self.scratch, ignore_errors=True)
        return result


def main(argv: list[str]) -> int:
    tasks_path, out_dir = argv[1], argv[2]
    with open(tasks_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    tasks, jobs = spec["tasks"], max(1, int(spec.get("jobs", 1)))
    if os.path.exists(ENV_INFO):
        shutil.copyfile(ENV_INFO, os.path.join(out_dir, "env.json"))
    pending, running, done = list(tasks), [], 0
    kills = oom_kills()
    while pending or running:
        while pending and len(running) < jobs:
            running.append(Running(pending.pop(0), out_dir))
        time.sleep(POLL)
        for probe in [p for p in running if p.poll()]:
            running.remove(probe)
            now_kills = oom_kills()
            oom = kills is not None and now_kills is not None and now_kills > kills
            kills = now_kills
            outcome = probe.outcome(oom)
            write_json(os.path.join(out_dir, probe.task["id"] + ".run.json"), outcome)
            done += 1
            state = "timeout" if outcome["timed_out"] else outcome["signal"] or f"exit {outcome['exit_code']}"
            print(f"[{done}/{len(tasks)}] {probe.task['id']}: {state} in {outcome['seconds']:.2f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
