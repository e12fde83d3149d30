"""How long, and how much memory, the runner takes to refuse each malformed matrix of the test corpus.

Each file is refused by a fresh ``python -m runner FILE --list`` (start-up included), three times; the
figures are medians and the worst case, one ``name=value`` line each. The target: every refusal under a
second and under 100 MB, exit code 2.

    python bench/malformed.py
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.malformed import CORPUS  # noqa: E402

ROUNDS = 3


def refuse(path: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB of the child, exit code) of one refusal."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--list"], capture_output=True, cwd=ROOT, check=False
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, done.returncode


def main() -> int:
    worst_s, worst_mb, codes = 0.0, 0.0, set()
    medians = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "good.yaml"
        baseline.write_text("version: 1\nenvironments: []\n")
        start_up = statistics.median(refuse(baseline)[0] for _ in range(ROUNDS))
        for name, content, _, _ in CORPUS:
            path = Path(tmp) / "m.yaml"
            path.write_bytes(content)
            runs = [refuse(path) for _ in range(ROUNDS)]
            seconds = statistics.median(r[0] for r in runs)
            medians.append(seconds)
            worst_s, worst_mb = max(worst_s, max(r[0] for r in runs)), max(worst_mb, max(r[1] for r in runs))
            codes |= {r[2] for r in runs}
            print(f"  {name:28s} median {seconds * 1000:6.0f} ms  exit {runs[0][2]}")
    print(f"malformed_files={len(CORPUS)}")
    print(f"exit_codes={','.join(map(str, sorted(codes)))}")
    print(f"startup_median_s={start_up:.3f}")
    print(f"refusal_median_s={statistics.median(medians):.3f}")
    print(f"refusal_worst_s={worst_s:.3f}")
    print(f"refusal_peak_rss_mb={worst_mb:.0f}")
    return 0 if codes == {2} and worst_s < 1.0 and worst_mb < 100 else 1


if __name__ == "__main__":
    sys.exit(main())
