"""The small matrix most unit tests run on the fake engine, its base image, and a probe that does well."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.fake_engine import OK_RUN

MATRIX = """\
version: 1
fixtures: [int32-random]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}"]
    probes: ["zarr-v?", "zarr-zipstore", "zarr-fsspec"]
    matrix: {zarr: ["2.18.7", "3.1.6"]}
"""
BASE = "zipstore-matrix/debian:bookworm"
#: what a probe does with a task: (run.json, probe.json), either None for "not written"
Behaviour = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, dict[str, Any] | None]]


def expected_for(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "arrays": {
            "data": {
                "shape": [2],
                "dtype": "<i4",
                "sha256": "f" * 64,
                "chunks": [2],
                "fill_value": 0,
                "attrs": {},
            }
        },
        "attrs": {},
    }


def good(task: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    args = task["args"]
    if args["role"] == "writer":
        return OK_RUN, {
            "status": "ok",
            "version": "9",
            "expected": expected_for(task),
            "timings": {"write_s": 0.01},
            "warnings": [],
        }
    observed = expected_for(task)
    return OK_RUN, {"status": "ok", "version": "9", **observed, "timings": {"read_s": 0.002}, "warnings": []}
