"""Pure: the known upstream issues (``known_issues.yaml``, reviewed by hand) and the cells they explain.

A cell that is not a pass links the first entry whose reader library and version, reason pattern and (when
given) writer probe match it. Against the run before: a cell that an entry explained then and does not now
(it passes, or says something else, at another version) is reported, because the issue may be fixed upstream.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from runner.errors import ConfigError
from runner.results.history import PastCell
from runner.results.model import CellResult, KnownIssue, Status

PATH = Path(__file__).with_name("known_issues.yaml")
#: caps on a file that is read before every run
MAX_BYTES = 256 * 1024
MAX_ENTRIES = 500
MAX_PATTERN = 500
State = Literal["open", "closed", "merged"]
_STATES: tuple[State, ...] = ("open", "closed", "merged")
_URL = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$")


@dataclass(frozen=True, kw_only=True)
class Entry:
    libraries: tuple[str, ...]
    versions: SpecifierSet
    reason: re.Pattern[str]
    writer: str
    issue: KnownIssue

    def explains(self, cell: CellResult) -> bool:
        return (
            cell.status is not Status.PASS
            and cell.reader.library in self.libraries
            and _in(cell.reader.version, self.versions)
            and (not self.writer or fnmatch.fnmatchcase(cell.writer.probe, self.writer))
            and self.reason.search(cell.reason) is not None
        )


def _in(version: str, spec: SpecifierSet) -> bool:
    if not str(spec):
        return True
    try:
        return Version(version.split()[0]) in spec
    except (InvalidVersion, IndexError):
        return False


def load(path: Path = PATH) -> tuple[Entry, ...]:
    """The entries, checked: every problem names the file and the entry."""
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, list) or len(data) > MAX_ENTRIES:
        raise ConfigError(f"{path}: a list of at most {MAX_ENTRIES} entries is expected")
    return tuple(_entry(item, f"{path}: entry {i + 1}") for i, item in enumerate(data))


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a mapping is expected")
    unknown = set(item) - {"library", "versions", "reason", "writer", "url", "title", "state", "note", "checked"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    libraries = item.get("library")
    if not isinstance(libraries, list) or not libraries or not all(isinstance(x, str) for x in libraries):
        raise ConfigError(f"{where}: library must be a list of library names")
    try:
        versions = SpecifierSet(str(item.get("versions") or ""))
    except InvalidSpecifier as exc:
        raise ConfigError(f"{where}: versions {item.get('versions')!r} is not a PEP 440 specifier") from exc
    pattern = item.get("reason")
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
        raise ConfigError(f"{where}: reason must be a regular expression of 1 to {MAX_PATTERN} characters")
    try:
        reason = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: reason {pattern!r} is not a regular expression: {exc}") from exc
    url, title, state = item.get("url"), item.get("title"), item.get("state")
    if not isinstance(url, str) or not _URL.match(url):
        raise ConfigError(f"{where}: url must be a GitHub issue or pull request, not {url!r}")
    if not isinstance(title, str) or not title:
        raise ConfigError(f"{where}: title is missing")
    if state not in _STATES:
        raise ConfigError(f"{where}: state must be one of {', '.join(_STATES)}, not {state!r}")
    return Entry(
        libraries=tuple(libraries),
        versions=versions,
        reason=reason,
        writer=str(item.get("writer") or ""),
        issue=KnownIssue(url=url, title=title, state=state, note=str(item.get("note") or "")),
    )


def explain(entries: Iterable[Entry], cells: Iterable[CellResult]) -> int:
    """Link each cell to the first entry that explains it (and unlink the rest); the number linked."""
    entries = tuple(entries)
    linked = 0
    for cell in cells:
        cell.known = next((e.issue for e in entries if e.explains(cell)), None)
        linked += cell.known is not None
    return linked


def no_longer(entries: Iterable[Entry], cells: Iterable[CellResult], before: Mapping[str, PastCell]) -> list[str]:
    """Cells an entry explained in the run before and does not explain now: the issue may be fixed upstream."""
    entries = tuple(entries)
    out = []
    for cell in cells:
        old = before.get(cell.id)
        if old is None or cell.known is not None:
            continue
        then = replace(
            cell, reader=replace(cell.reader, version=old.reader_version), status=old.status, reason=old.reason
        )
        entry = next((e for e in entries if e.explains(then)), None)
        if entry is not None:
            now = "passes" if cell.status is Status.PASS else f"is {cell.status}: {cell.reason[:120]}"
            out.append(
                f"{entry.issue.url} ({entry.issue.title}) explained {cell.id} at {cell.reader.library} "
                f"{old.reader_version}; at {cell.reader.version} the cell {now} (fixed upstream?)"
            )
    return out
