"""The ZIP-level checks of one archive, in a locked-down container like every probe (``zipinspect.py``).

The host never parses an archive's bytes: what it learns of an archive (its checks, its entries'
hashes, the Zarr arrays its metadata declares) comes from this probe's record.
"""

from __future__ import annotations

import platform
from typing import Any

import _common as c
import zipinspect


def handler(args: dict[str, Any]) -> dict[str, Any]:
    return {"library": "zipfile", "version": platform.python_version(), **zipinspect.inspect(args["archive"])}


if __name__ == "__main__":
    c.main(handler)
