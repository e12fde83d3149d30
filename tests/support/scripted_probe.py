"""A probe for unit tests that acts out what the test asked: write this record, then end this way.

The real harness (``runner/probes/harness.py``) runs it on the host as it runs every probe, so the
protocol the pipeline tests exercise is the real one, not a copy. Arguments (``args["act"]``):
``record`` (or null), ``stderr`` text, then ``signal`` (a name), ``hang`` (sleep past the timeout)
or ``exit_code``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

with open(sys.argv[1], encoding="utf-8") as fh:
    args = json.load(fh)
act = args["act"]
sys.path.insert(0, args["probes"])
import _common  # type: ignore[import-not-found]  # noqa: E402  (the probes' own module, from the run's snapshot)

if act.get("record") is not None:
    with open(args["record"], "w", encoding="utf-8") as out:
        json.dump({"record_version": _common.RECORD_VERSION, **act["record"]}, out)
sys.stderr.write(act.get("stderr", ""))
sys.stderr.flush()
if act.get("signal"):
    os.kill(os.getpid(), getattr(signal, act["signal"]))
if act.get("hang"):
    time.sleep(600)
sys.exit(int(act.get("exit_code") or 0))
