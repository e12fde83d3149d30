"""Load a real dataset with the code that ships it and save it as one ``.npy`` for the benchmark.

Runs in the loader image (numpy, scikit-learn, matplotlib). Package datasets come from the package's
own loader, offline; MNIST from a local IDX file (``train-images-idx3-ubyte``, optionally gzipped) or
the ``mnist.npz`` Keras's ``mnist.load_data()`` reads. Nothing here invents values.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import _common as c

#: IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): big-endian data
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


FASHION_MNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def debian_version(package: str) -> str:
    """The installed version of a Debian package, from dpkg's status file."""
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8") as fh:
            stanzas = fh.read().split("\n\n")
    except OSError:
        return "unknown"
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Package") == package:
            return f"{package} {fields.get('Version', '?')}"
    return f"{package} not installed"


def read_idx(path: str) -> Any:
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(f"{os.path.basename(path)} is not an IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(IDX_TYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset != expected:
        have = len(data) - offset
        raise ValueError(f"{os.path.basename(path)}: header says {dims} ({expected} bytes), file has {have}")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(source: str) -> Any:
    """Keras's ``mnist.npz`` (``x_train``) or an IDX file of training images."""
    import numpy as np

    if source.endswith(".npz"):
        with np.load(source, allow_pickle=False) as f:  # what keras.datasets.mnist.load_data() does
            return f["x_train"], f"keras mnist.npz x_train ({os.path.basename(source)})"
    return read_idx(source), f"IDX file {os.path.basename(source)}"


def load(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    name = args["dataset"]
    if name == "sklearn-digits":
        import sklearn
        from sklearn.datasets import load_digits

        values, how, version = load_digits().images, "sklearn.datasets.load_digits().images", sklearn.__version__
    elif name == "matplotlib-dem":
        import matplotlib
        from matplotlib import cbook

        dem = cbook.get_sample_data("jacksboro_fault_dem.npz")  # matplotlib >= 3.8 returns it loaded
        with dem if hasattr(dem, "files") else np.load(dem) as npz:
            values = npz["elevation"]
        how = "matplotlib.cbook.get_sample_data('jacksboro_fault_dem.npz')['elevation']"
        version = matplotlib.__version__
    elif name == "fashion-mnist":  # Debian's dataset-fashion-mnist: the IDX files as published
        values = read_idx(FASHION_MNIST)
        how, version = f"IDX file {FASHION_MNIST}", debian_version("dataset-fashion-mnist")
    elif name == "mnist":
        values, how = load_mnist(args["source"])
        version = f"numpy {np.__version__}"
    else:
        raise ValueError(f"no loader for dataset {name!r}")
    values = np.ascontiguousarray(values)
    tmp = args["output"] + ".tmp.npy"
    np.save(tmp, values, allow_pickle=False)
    os.replace(tmp, args["output"])
    return {
        "dataset": name,
        "loader": how,
        "version": version,
        "array": c.describe_array(values),
        "nbytes": int(values.nbytes),
    }


if __name__ == "__main__":
    c.main(load)
