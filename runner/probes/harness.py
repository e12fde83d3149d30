"""In-container driver: run each probe task as its own process, with a timeout, and record how it ended.

Standard library only; nothing from ``runner`` (this file is mounted into images that lack it).

    python harness.py TASKS.json OUT_DIR

TASKS.json: {"tasks": [{"id", "script", "args", "timeout"}]}. For each task the probe writes its own
record to OUT_DIR/<id>.probe.json; the harness then writes OUT_DIR/<id>.run.json with the process
outcome (exit code, signal, timeout, OOM kill, seconds, stderr tail). Each file is written as soon as the
task ends, so a container killed half-way loses nothing that already finished.
"""

from __future__ import annotations

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


def oom_kills() -> int | None:
    """Kernel OOM kills in this container's memory cgroup so far (v2, then v1), or None if unreadable."""
    for path, key in (
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ):
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def write_json(path: str, data: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def tail(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return text if len(text) <= TAIL else "…" + text[-TAIL:]


def run_task(task: dict, out_dir: str, scratch: str) -> dict:
    probes = os.path.dirname(os.path.abspath(__file__))
    args = dict(task["args"], record=os.path.join(out_dir, task["id"] + ".probe.json"), scratch=scratch)
    args_path = os.path.join(scratch, task["id"] + ".args.json")
    write_json(args_path, args)
    before = oom_kills()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(probes, task["script"]), args_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so a timeout can kill the probe's children too
        cwd=scratch,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=task["timeout"])
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    seconds = time.perf_counter() - started
    after = oom_kills()
    code = proc.returncode
    return {
        "id": task["id"],
        "exit_code": code if code is not None and code >= 0 else None,
        "signal": signal.Signals(-code).name if code is not None and code < 0 and not timed_out else None,
        "timed_out": timed_out,
        "oom_killed": before is not None and after is not None and after > before,
        "seconds": round(seconds, 6),
        "stdout_tail": tail(out),
        "stderr_tail": tail(err),
    }


def main(argv: list[str]) -> int:
    tasks_path, out_dir = argv[1], argv[2]
    with open(tasks_path, encoding="utf-8") as fh:
        tasks = json.load(fh)["tasks"]
    if os.path.exists(ENV_INFO):
        shutil.copyfile(ENV_INFO, os.path.join(out_dir, "env.json"))
    for n, task in enumerate(tasks, 1):
        with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
            outcome = run_task(task, out_dir, scratch)
        write_json(os.path.join(out_dir, task["id"] + ".run.json"), outcome)
        state = "timeout" if outcome["timed_out"] else outcome["signal"] or f"exit {outcome['exit_code']}"
        print(f"[{n}/{len(tasks)}] {task['id']}: {state} in {outcome['seconds']:.2f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
