"""Archives written by other people's software (``--external DIR``): what each holds, read from its metadata.

Nobody here wrote them, so there is no writer's record: the arrays and their shapes and dtypes come from
the archive's own ``.zarray`` / ``zarr.json`` files, read by the ZIP checks in a container (the host does
not parse these bytes), and the values are judged by agreement between the readers (``classify.consensus``).
Zips with no Zarr inside (the edge and broken-zip corpora) are read for robustness: a clean failure is
the right answer; a crash, a hang or an OOM is the finding.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DESCRIPTIONS = {
    "zarr": "Zarr archives written by other projects' software (netcdf-c, zarr-python, zarrita.js, zarrs, "
    "AnnData, neuroglancer, THREDDS). No writer's record exists: values are judged by agreement between readers.",
    "edge": "Unusual but valid zips with no Zarr inside (ZIP64, data descriptors, bzip2/xz/zstd members, "
    "unicode names). A clean failure is the right answer; a crash, hang or OOM is the finding.",
    "yauzl": "A reader-strictness corpus: broken zips (failure_*) and odd valid ones (success_*), no Zarr inside. "
    "A clean failure is the right answer; a crash, hang or OOM is the finding.",
}


@dataclass(frozen=True, kw_only=True)
class ExternalArchive:
    path: Path  # on the host
    relative: str  # below the external directory
    folder: str
    name: str
    source: str  # owner/repo
    commit: str

    @property
    def fixture(self) -> str:
        return f"external-{self.folder}"


def _manifest(directory: Path) -> dict[str, tuple[str, str]]:
    """file name -> (source repository, commit) from MANIFEST.tsv, when the directory has one."""
    out: dict[str, tuple[str, str]] = {}
    path = directory / "MANIFEST.tsv"
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                out[row.get("file", "")] = (row.get("repo", ""), row.get("commit", ""))
    return out


def discover(directory: Path) -> list[ExternalArchive]:
    """Every ``*.zip`` below ``directory``, grouped by its first folder, in a stable order."""
    known = _manifest(directory)
    found = []
    for path in sorted(directory.rglob("*.zip")):
        relative = path.relative_to(directory).as_posix()
        folder = relative.split("/", 1)[0] if "/" in relative else "other"
        repo, commit = known.get(path.name, ("", ""))
        if not repo and "__" in path.name:
            repo = path.name.split("__", 1)[0].replace("+", "/")
        name = path.stem.split("__", 1)[-1]
        found.append(
            ExternalArchive(path=path, relative=relative, folder=folder, name=name, source=repo, commit=commit)
        )
    return found
