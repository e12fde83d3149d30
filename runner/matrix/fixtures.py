"""The fixture catalog: what writers put in an archive, as plain JSON-able data.

Values come from a deterministic generator inside the probe (``probes/_common.make_values``), so the
host needs no numpy and every writer of a fixture must produce identical values. ``scale`` multiplies
the first dimension so the same fixtures grow for benchmark runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Fixture:
    name: str
    description: str
    spec: Mapping[str, Any]

    @property
    def array_paths(self) -> tuple[str, ...]:
        return tuple(a["path"] for a in self.spec["arrays"])


def _array(path: str, shape: list[int], chunks: list[int], dtype: str, dims: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "dims": dims,
        "fill_value": extra.pop("fill_value", 0),
        "compressor": extra.pop("compressor", "none"),
        **extra,
    }


def catalog(scale: int = 1) -> dict[str, Fixture]:
    """All fixtures at a size multiplier; names are stable (they key results and history)."""
    s = max(1, int(scale))
    fixtures = [
        Fixture(
            name="int32-random",
            description="random int32, 2-D, gzip, evenly chunked (the original benchmark's data, dtype stated)",
            spec={
                "attrs": {"title": "int32 random"},
                "arrays": [
                    _array(
                        "data",
                        [256 * s, 256],
                        [64, 64],
                        "int32",
                        ["y", "x"],
                        compressor="gzip",
                        attrs={"units": "counts"},
                    ),
                ],
            },
        ),
        Fixture(
            name="uint8-images",
            description="uint8 image stack, MNIST-shaped (N×28×28), one image per chunk, no compression",
            spec={
                "attrs": {"source": "synthetic digits-like blobs"},
                "arrays": [
                    _array(
                        "images",
                        [100 * s, 28, 28],
                        [1, 28, 28],
                        "uint8",
                        ["image", "row", "col"],
                        generator="images",
                    ),
                ],
            },
        ),
        Fixture(
            name="float32-nan-fill",
            description="float32 with NaNs and a -9999 fill value, zstd: decoding and masking differ here",
            spec={
                "attrs": {},
                "arrays": [
                    _array(
                        "temperature",
                        [120 * s, 90],
                        [40, 30],
                        "float32",
                        ["lat", "lon"],
                        compressor="zstd",
                        generator="nan-fill",
                        fill_value=-9999.0,
                        attrs={"units": "K"},
                    ),
                ],
            },
        ),
        Fixture(
            name="edge-chunks",
            description="shape not divisible by chunks (partial edge chunks), blosc",
            spec={
                "attrs": {},
                "arrays": [
                    _array(
                        "ragged",
                        [103 * s, 47],
                        [25, 10],
                        "int16",
                        ["y", "x"],
                        compressor="blosc",
                        fill_value=-1,
                    ),
                ],
            },
        ),
        Fixture(
            name="nested-groups",
            description="arrays two groups deep, unicode attributes on groups and arrays",
            spec={
                "attrs": {"title": "Ünïcødé ☃ — 雪", "history": ["made by zipstore-matrix"]},
                "arrays": [
                    _array(
                        "a/b/leaf",
                        [30 * s, 20],
                        [16, 16],
                        "int32",
                        ["y", "x"],
                        compressor="gzip",
                        attrs={"long_name": "température", "emoji": "🧊"},
                    ),
                    _array("a/flat", [50 * s], [16], "float64", ["t"], attrs={"note": "ascii"}),
                ],
            },
        ),
        Fixture(
            name="sharded",
            description="Zarr v3 sharding codec: 4×4 chunks per shard (format 3 writers only)",
            spec={
                "needs": {"zarr_format": 3, "why": "the sharding codec"},
                "attrs": {},
                "arrays": [
                    _array(
                        "sharded",
                        [128 * s, 128],
                        [16, 16],
                        "uint16",
                        ["y", "x"],
                        compressor="zstd",
                        shards=[64, 64],
                    ),
                ],
            },
        ),
        Fixture(
            name="ome-image",
            description="OME-Zarr image: uint16 y×x, a 3-level pyramid, axes with scale and translation "
            "(OME-Zarr writers only; single-file .ozx, RFC-9)",
            spec={
                "needs": {"ome": True, "why": "an OME-Zarr multiscale image"},
                "ome": {
                    "version": "0.5",
                    "scale_factors": [2, 4],
                    "scale": {"y": 0.5, "x": 0.25},
                    "translation": {"y": 1.0, "x": 2.0},
                },
                "attrs": {},
                "arrays": [_array("image", [64 * s, 48], [32, 24], "uint16", ["y", "x"])],
            },
        ),
        Fixture(
            name="many-chunks",
            description="65,536 chunks of 256 bytes (uint8 4096×4096 in 16×16 chunks, no compression): past "
            "65,535 entries, so the archive needs ZIP64 records for its entry count. Over HTTP each reader reads "
            "its first and last chunk, not all 65,536 (written only by the writers the matrix names in writers_of)",
            spec={
                **_LARGE,
                "attrs": {},
                "arrays": [_array("many", [4096 * s, 4096], [16, 16], "uint8", ["y", "x"])],
            },
        ),
        Fixture(
            name="many-chunks-sharded",
            description="the same 65,536 chunks in 256 shards of 16×16 chunks (Zarr v3 sharding, format 3 writers "
            "only): one shard index per shard instead of one zip entry per chunk",
            spec={
                **_LARGE,
                "needs": {"zarr_format": 3, "why": "the sharding codec"},
                "attrs": {},
                "arrays": [_array("many", [4096 * s, 4096], [16, 16], "uint8", ["y", "x"], shards=[256, 256])],
            },
        ),
    ]
    return {f.name: f for f in fixtures}


#: A fixture too large to write in every writer and to read whole over HTTP: written only by the writers a
#: matrix names for it (``writers_of``), read once per cell, and over HTTP read in part (its first and last
#: chunk, against the writer's values for them).
_LARGE: Mapping[str, Any] = {
    "costly": "too large for every writer: the matrix names its writers in writers_of",
    "read_repeats": 1,
    "part_over_http": True,
}


def select(names: tuple[str, ...] | None, scale: int = 1) -> tuple[Fixture, ...]:
    every = catalog(scale)
    return tuple(every.values()) if names is None else tuple(every[n] for n in names)
