"""Run once at image build: record what the environment really contains, as JSON on stdout.

Standard library only. Imports each known library to read the versions it reports of itself and of the
C libraries under it; an import that fails is recorded with its message, not raised.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

# module -> attributes naming versions (of the module and of the C libraries it wraps)
MODULES = {
    "zarr": ["__version__"],
    "numcodecs": ["__version__"],
    "numpy": ["__version__"],
    "xarray": ["__version__"],
    "fsspec": ["__version__"],
    "h5py": ["__version__", "version.hdf5_version"],
    "netCDF4": ["__version__", "__netcdf4libversion__", "__hdf5libversion__"],
    "osgeo.gdal": ["__version__"],
    "tensorstore": ["__version__"],
    "zarrista": ["__version__"],
}
DEBIAN_PREFIXES = ("python3", "libgdal", "libnetcdf", "libhdf5", "libzip", "libblosc", "gdal", "netcdf", "nodejs")
NPM_MODULES = "/opt/npm/node_modules"


def attribute(module: object, dotted: str) -> object:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def modules() -> dict:
    out = {}
    for name, attrs in MODULES.items():
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            if "No module named" not in str(exc) or name.split(".")[0] not in str(exc):
                out[name] = {"import_error": str(exc)}
            continue
        except Exception as exc:
            out[name] = {"import_error": f"{type(exc).__name__}: {exc}"}
            continue
        info = {}
        for attr in attrs:
            with contextlib.suppress(AttributeError):
                info[attr] = str(attribute(mod, attr))
        out[name] = info
    return out


def debian_packages() -> dict:
    try:
        listing = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Status}\n"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    out = {}
    for line in listing.splitlines():
        name, version, status = [*line.split("\t"), "", ""][:3]
        if status.endswith("installed") and name.startswith(DEBIAN_PREFIXES):
            out[name] = version
    return out


def npm_packages() -> dict:
    """Installed npm packages (name -> version) of an npm image, from their package.json files."""
    out = {}
    if not os.path.isdir(NPM_MODULES):
        return out
    for name in sorted(os.listdir(NPM_MODULES)):
        folders = (
            [os.path.join(name, sub) for sub in sorted(os.listdir(os.path.join(NPM_MODULES, name)))]
            if name.startswith("@")
            else [name]
        )
        for folder in folders:
            try:
                with open(os.path.join(NPM_MODULES, folder, "package.json"), encoding="utf-8") as fh:
                    out[folder] = json.load(fh).get("version", "?")
            except (OSError, ValueError):
                continue
    return out


def main() -> None:
    dists = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            dists[name.lower()] = dist.version
    info = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "distributions": dict(sorted(dists.items())),
        "modules": modules(),
        "debian": debian_packages(),
    }
    npm = npm_packages()
    if npm:
        info["npm"] = npm
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            release = dict(line.rstrip().split("=", 1) for line in fh if "=" in line)
        info["os"] = release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    json.dump(info, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
