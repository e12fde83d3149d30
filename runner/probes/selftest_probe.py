"""Harness self-test: misbehaves on request (crash, hang, eat memory, fail, exit silently).

Used by the integration tests to prove that each failure mode reaches its status through a real engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

import _common as c


def handler(args: dict[str, Any]) -> dict[str, Any]:
    action = args["action"]
    if action == "ok":
        return {"library": "selftest", "version": "1"}
    if action == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if action == "hang":
        time.sleep(3600)
    if action == "oom":
        hog = []
        while True:
            hog.append(bytearray(64 << 20))
            for i in range(0, len(hog[-1]), 4096):
                hog[-1][i] = 1
    if action == "counted-kill":  # as the kernel does at a memory limit: count the kill, then SIGKILL
        with open(args["counter"], "w", encoding="ascii") as fh:
            fh.write("oom_kill 1\n")
        time.sleep(float(args.get("linger", 0.5)))  # the neighbour ends first, after the kill was counted
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "after-kill":  # a neighbour that ends normally once the kill has been counted
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), open(args["counter"], encoding="ascii") as fh:
                if fh.read().strip() == "oom_kill 1":
                    return {"library": "selftest", "version": "1"}
            time.sleep(0.01)
        raise TimeoutError("the kill was never counted")
    if action == "unsupported":
        raise c.Unsupported("selftest lacks this feature")
    if action == "spew":  # far more output than the harness keeps
        sys.stdout.write("x" * (1 << 20) + "\nlast line of stdout\n")
        sys.stderr.write("y" * (1 << 20) + "\nlast line of stderr\n")
        return {"library": "selftest", "version": "1"}
    if action == "network":  # must fail: containers have no network
        import socket

        reached = []
        for host, port in (("1.1.1.1", 53), ("pypi.org", 443)):
            try:
                socket.create_connection((host, port), timeout=3).close()
                reached.append(f"{host}:{port}")
            except OSError as exc:
                c.OBSERVATIONS.append(f"{host}:{port}: {exc}")
        if reached:
            return {"library": "selftest", "version": "1", "reached": reached}
        raise OSError("no network: " + "; ".join(c.OBSERVATIONS))
    if action == "write-outside":  # must fail everywhere but the probe's own scratch and /tmp
        written = []
        for path in ("/probes/x", "/job/x", "/artifacts/x", "/etc/x", "/opt/venv/x", "/x"):
            try:
                with open(path, "w") as fh:
                    fh.write("x")
                written.append(path)
            except OSError as exc:
                c.OBSERVATIONS.append(f"{path}: {exc.strerror}")
        if written:
            return {"library": "selftest", "version": "1", "written": written}
        raise PermissionError("nothing outside the scratch space is writable: " + "; ".join(c.OBSERVATIONS))
    if action == "fork-bomb":  # must be stopped by the container's PID limit
        children: list[Any] = []
        try:
            while len(children) < 100_000:
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
        except OSError as exc:
            raise OSError(f"fork refused after {len(children)} children: {exc}") from exc
        finally:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        return {"library": "selftest", "version": "1", "forked": len(children)}
    if action == "read-host":  # host paths named by the test must not exist in here
        seen = [p for p in args.get("paths", []) if os.path.exists(p)]
        return {"library": "selftest", "version": "1", "seen": seen}
    if action == "environment":  # which variables the probe process sees, and its privileges
        with open("/proc/self/status", encoding="ascii") as fh:
            status = dict(line.split(":\t", 1) for line in fh if ":\t" in line)
        return {
            "library": "selftest",
            "version": "1",
            "variables": sorted(os.environ),
            "no_new_privs": status.get("NoNewPrivs", "").strip(),
            "cap_eff": status.get("CapEff", "").strip(),
            "uid": os.getuid(),
        }
    if action == "silent-exit":
        sys.stderr.write("ImportError: something fundamental is missing\n")
        os._exit(3)
    raise KeyError(action)


if __name__ == "__main__":
    c.main(handler)
