"""The JavaScript writers make a fixture's values as the Python probes do (``_common.make_values``:
splitmix64 over the element index): checked here against that rule written out in plain Python, run with the
host's Node on ``zarrita_common.mjs`` itself. A JavaScript writer whose values drifted would write an archive
whose level 0 is not the fixture's, and its readers would be judged against the wrong values."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.npm import need

COMMON = Path(__file__).parents[2] / "runner" / "probes" / "zarrita_common.mjs"
M64 = (1 << 64) - 1


def splitmix(spec: dict[str, object]) -> list[int]:
    """``_common._values_block`` for integers, without numpy."""
    dtype = str(spec["dtype"])
    bits = int(dtype.removeprefix("u").removeprefix("int"))
    n = 1
    for d in spec["shape"]:  # type: ignore[attr-defined]
        n *= int(d)
    seed = int(spec.get("seed", 1))  # type: ignore[call-overload]
    out = []
    for i in range(n):
        z = (i + seed * 0x9E3779B97F4A7C15) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z ^= z >> 31
        if spec.get("generator") == "images":
            out.append(z % 256 if z % 5 == 0 else 0)
        elif dtype.startswith("u"):
            out.append(z % (1 << bits))
        else:
            out.append(z % (1 << bits) - (1 << (bits - 1)))
    return out


def run_node(script: str) -> str:
    node = need("node", "apt-get install nodejs")
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


SPECS = [
    {"dtype": "uint16", "shape": [64, 48]},
    {"dtype": "int16", "shape": [7, 5], "seed": 7},
    {"dtype": "uint8", "shape": [40], "generator": "images"},
    {"dtype": "int32", "shape": [3, 3, 3], "seed": 3},
    {"dtype": "uint32", "shape": [50]},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['dtype']}-{s.get('generator', 'random')}")
def test_javascript_values_are_the_fixtures(spec: dict[str, object]) -> None:
    out = run_node(
        f"import {{ makeValues }} from {json.dumps(COMMON.as_uri())};"
        f"console.log(JSON.stringify(Array.from(makeValues({json.dumps(spec)}))));"
    )
    assert json.loads(out) == splitmix(spec)


def test_a_fixture_javascript_cannot_make_is_unsupported_in_words() -> None:
    out = run_node(
        f"import {{ makeValues, Unsupported }} from {json.dumps(COMMON.as_uri())};"
        "try { makeValues({dtype: 'float32', shape: [2]}); } catch (e) {"
        " console.log(JSON.stringify([e instanceof Unsupported, e.message])); }"
    )
    unsupported, message = json.loads(out)
    assert unsupported
    assert message == "the JavaScript probes make integer fixtures up to 32 bits only, not float32 (random)"
