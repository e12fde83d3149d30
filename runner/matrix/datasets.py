"""The benchmark's datasets: what each is, where it comes from, how it is chunked.

Three kinds. *synthetic* arrays are generated inside the benchmark probe (deterministic values, named
for what they are, never for a real dataset). *package* datasets ship inside a PyPI package and are
loaded by that package's own loader in the loader image (offline). *file* datasets (MNIST) come from a
local copy: a path in the matrix, the Keras cache, or a download into the runner's cache; when none can
be had the benchmark says ``skipped: dataset unavailable`` and why.

Finding and fetching source files (:func:`locate_mnist`) is the one side effect here.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.resources import sha256_file

#: Where Keras keeps ``mnist.npz`` after ``keras.datasets.mnist.load_data()`` and where it fetches it from.
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # keras/datasets/mnist.py
DOWNLOAD_TIMEOUT = 20.0
ITEMSIZE = {"uint8": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "float32": 4, "float64": 8}


@dataclass(frozen=True, kw_only=True)
class Dataset:
    name: str
    kind: Literal["synthetic", "package", "file"]
    description: str
    source: str  # where the values come from, in words, for the page
    #: chunk shape, or for arrays whose shape is known only once loaded, the chunk length of the first
    #: dimension (the remaining dimensions whole)
    chunks: tuple[int, ...]
    spec: Mapping[str, Any] = field(default_factory=dict)  # synthetic: the generator's array spec

    @property
    def nbytes(self) -> int | None:
        """Size of a synthetic array, known before it exists (None for loaded datasets)."""
        if not self.spec:
            return None
        count = 1
        for n in self.spec["shape"]:
            count *= int(n)
        return count * ITEMSIZE[self.spec["dtype"]]


def catalog(size: int = 2000) -> dict[str, Dataset]:
    """Every dataset, with the synthetic square array at ``size`` × ``size`` (the original: 10 000)."""
    side = max(1, int(size))
    square_chunk = min(side, 500)
    items = [
        Dataset(
            name="int32-random",
            kind="synthetic",
            description=f"random int32, {side:,} × {side:,} (the original benchmark's array at size 10 000)",
            source="generated in the probe (splitmix64 of the index)",
            chunks=(square_chunk, square_chunk),
            spec={"shape": [side, side], "dtype": "int32", "seed": 4, "generator": "random"},
        ),
        Dataset(
            name="mnist-shaped",
            kind="synthetic",
            description="synthetic uint8 images in MNIST's training-set shape, 60 000 × 28 × 28 (not MNIST)",
            source="generated in the probe (sparse blobs on a dark background)",
            chunks=(1000, 28, 28),
            spec={"shape": [60000, 28, 28], "dtype": "uint8", "seed": 5, "generator": "images"},
        ),
        Dataset(
            name="mnist",
            kind="file",
            description="MNIST training images, 60 000 × 28 × 28 uint8 (LeCun, Cortes, Burges)",
            source="IDX file or Keras mnist.npz: benchmark.mnist in the matrix, ~/.keras/datasets, or a download",
            chunks=(1000,),
        ),
        Dataset(
            name="fashion-mnist",
            kind="package",
            description="Fashion-MNIST training images (Zalando), 60 000 × 28 × 28 uint8: MNIST's format and shape",
            source="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz from Debian's dataset-fashion-mnist",
            chunks=(1000,),
        ),
        Dataset(
            name="sklearn-digits",
            kind="package",
            description="scikit-learn's handwritten digits (UCI optdigits), 1 797 × 8 × 8, float64",
            source="sklearn.datasets.load_digits().images, shipped inside the scikit-learn wheel",
            chunks=(500,),
        ),
        Dataset(
            name="matplotlib-dem",
            kind="package",
            description="a real digital elevation model (Jacksboro fault), float, shipped with matplotlib",
            source="matplotlib.cbook.get_sample_data('jacksboro_fault_dem.npz')['elevation']",
            chunks=(100,),
        ),
    ]
    return {d.name: d for d in items}


DEFAULT_DATASETS = tuple(catalog())


def chunks_for(dataset: Dataset, shape: list[int]) -> list[int]:
    """The chunk shape for an array of ``shape``: declared chunks padded with whole trailing dimensions."""
    chunks = list(dataset.chunks) + list(shape[len(dataset.chunks) :])
    return [max(1, min(c, s)) for c, s in zip(chunks, shape, strict=False)] if shape else []


# ------------------------------------------------------------------------------------ MNIST's source


def locate_mnist(configured: Path | None, cache: Path, *, download: bool = True) -> tuple[Path | None, str]:
    """(path, how it was found) or (None, why not): the configured path, the Keras cache, then a download.

    A configured path that does not exist is reported, not silently replaced by another copy.
    """
    if configured is not None:
        path = configured.expanduser()
        if path.is_file():
            return path, f"from the matrix: {path}"
        return None, f"benchmark.mnist names {path}, which is not a file"
    keras = KERAS_CACHE.expanduser()
    if keras.is_file():
        return keras, f"from the Keras cache: {keras}"
    cached = cache / "mnist.npz"
    if cached.is_file():
        return cached, f"from the runner's cache: {cached}"
    if not download:
        return None, f"no local copy ({keras} and {cached} are missing) and downloads are off"
    tmp = cached.with_suffix(".part")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(MNIST_URL, timeout=DOWNLOAD_TIMEOUT) as response, tmp.open("wb") as fh:
            shutil.copyfileobj(response, fh)
        got = sha256_file(tmp)
        if got != MNIST_SHA256:
            tmp.unlink()
            return None, f"{MNIST_URL} sent a file with SHA-256 {got}, not Keras's {MNIST_SHA256}"
        os.replace(tmp, cached)
    except OSError as exc:  # URLError, timeouts and refused connections are all OSErrors
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        return None, f"no local copy ({keras} is missing) and the download from {MNIST_URL} failed: {reason}"
    return cached, f"downloaded from {MNIST_URL} to {cached}"
