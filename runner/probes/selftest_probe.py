"""Harness self-test: misbehaves on request (crash, hang, eat memory, fail, exit silently).

Used by the integration tests to prove that each failure mode reaches its status through a real engine.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import _common as c


def handler(args: dict) -> dict:
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
    if action == "unsupported":
        raise c.Unsupported("selftest lacks this feature")
    if action == "spew":  # far more output than the harness keeps
        sys.stdout.write("x" * (1 << 20) + "\nlast line of stdout\n")
        sys.stderr.write("y" * (1 << 20) + "\nlast line of stderr\n")
        return {"library": "selftest", "version": "1"}
    if action == "silent-exit":
        sys.stderr.write("ImportError: something fundamental is missing\n")
        os._exit(3)
    raise KeyError(action)


if __name__ == "__main__":
    c.main(handler)
