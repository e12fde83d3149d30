"""``python -m runner notify``: one GitHub issue that lists the cells the nightly broke, opened when a night
has regressions, updated each night while any of them still fails, closed when they all pass again (as
xarray's upstream-dev CI keeps its "nightly failed" issue).

Which cells the issue tracks is kept in the issue itself, in a comment line of its body
(``<!-- zipstore-regressions: [...] -->``): a cell that regressed stays listed while it does not pass,
though the night after it is no longer a *regression* (fail before, fail now). Each night:
tracked = (the issue's cells ∪ tonight's regressions) − cells that pass or are gone. The API's answers are
untrusted bytes: read with a cap, parsed as JSON only, and only the fields used are looked at.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import ExitCode, RunnerError, UsageError
from runner.results.model import Results, Status, read_results

log = logging.getLogger("runner")

TITLE = "Nightly: cells that no longer pass"
LABEL = "zipstore-regressions"
MARK = re.compile(r"<!-- zipstore-regressions: (\[.*?\]) -->", re.S)
#: the most of an API answer read (a page of issues is far smaller); more is refused, not parsed
ANSWER_CAP = 4 << 20
LISTED = 100  # cells listed in the issue's body; the rest are counted


class ApiError(RunnerError):
    """GitHub's API refused a request or did not answer: names the request and what came back."""

    exit_code = ExitCode.API


@dataclass(frozen=True, kw_only=True)
class NotifyRequest:
    results: Path
    repo: str  # OWNER/NAME
    token: str
    api: str = "https://api.github.com"
    page: str = ""  # the published page, linked from the issue


@dataclass(frozen=True, kw_only=True)
class Tracked:
    """One cell the issue lists: what it was when it broke, what it is tonight."""

    id: str
    what: str  # "writer → reader (fixture)"
    before: str
    now: str
    reason: str


def tracked_ids(body: str) -> list[str]:
    """The cell ids an earlier night wrote into the issue's body ([] when the mark is missing or garbled)."""
    found = MARK.search(body[:ANSWER_CAP])
    if not found:
        return []
    try:
        ids = json.loads(found.group(1))
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def still_failing(results: Results, earlier: list[str]) -> list[Tracked]:
    """Tonight's regressions and the earlier nights' cells that still do not pass, in that order."""
    cells = {c.id: c for c in results.cells}
    out: dict[str, Tracked] = {}
    regressions = results.changes.regressions if results.changes else []
    for r in regressions:
        out[r.id] = Tracked(
            id=r.id,
            what=f"{r.writer} → {r.reader} ({r.fixture})",
            before=str(r.before),
            now=str(r.after),
            reason=r.reason,
        )
    for cell_id in earlier:
        cell = cells.get(cell_id)
        if cell is None or cell.status is Status.PASS or cell_id in out:
            continue  # fixed, or gone from the matrix
        out[cell_id] = Tracked(
            id=cell_id,
            what=f"{cell.writer.library} {cell.writer.version} ({cell.writer.probe}) → {cell.reader.library} "
            f"{cell.reader.version} ({cell.reader.probe}) ({cell.fixture})",
            before=str(Status.PASS),
            now=str(cell.status),
            reason=cell.reason,
        )
    return list(out.values())


def body(results: Results, tracked: list[Tracked], page: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")[:200]

    lines = [
        f"Night `{results.run.id}` ({results.run.started}): **{len(tracked)}** cell(s) that passed before do not "
        "pass now." + (f" The page: {page}" if page else ""),
        "",
        "This issue is opened, updated and closed by the nightly workflow (`python -m runner notify`): it lists each "
        "cell from the night it stopped passing until it passes again. Reproduce one with "
        "`python -m runner repro CELL_ID` (the site's `results.json` in `site/`).",
        "",
        "| cell | passed before | now | the library's words |",
        "|---|---|---|---|",
    ]
    lines += [f"| {cell(t.what)}<br>`{t.id}` | {t.before} | **{t.now}** | {cell(t.reason)} |" for t in tracked[:LISTED]]
    if len(tracked) > LISTED:
        lines.append(f"\n… and {len(tracked) - LISTED} more: see the page's 'Changed since'.")
    lines += ["", f"<!-- zipstore-regressions: {json.dumps([t.id for t in tracked])} -->", ""]
    return "\n".join(lines)


class Api:
    """The few REST calls the issue needs, with urllib: no client library in the runner for four requests."""

    def __init__(self, base: str, repo: str, token: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise UsageError(f"notify: --repo {repo!r} is not OWNER/NAME")
        self.base, self.repo, self.token = base.rstrip("/"), repo, token

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.base}/repos/{self.repo}{path}"
        request = urllib.request.Request(
            url,
            method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "zipstore-matrix-runner",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                raw = answer.read(ANSWER_CAP + 1)
        except urllib.error.HTTPError as exc:
            words = exc.read(2000).decode("utf-8", "replace")
            raise ApiError(f"notify: {method} {url}: HTTP {exc.code}: {words}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ApiError(f"notify: {method} {url}: no answer ({exc})") from None
        if len(raw) > ANSWER_CAP:
            raise ApiError(f"notify: {method} {url}: the answer is over {ANSWER_CAP} bytes; not parsed")
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise ApiError(f"notify: {method} {url}: the answer is not JSON ({exc})") from None


def open_issue(api: Api) -> dict[str, Any] | None:
    """The open issue this job keeps (by its label and title), or None."""
    found = api.call("GET", f"/issues?state=open&labels={LABEL}&per_page=30")
    for issue in found if isinstance(found, list) else []:
        if isinstance(issue, dict) and issue.get("title") == TITLE and "pull_request" not in issue:
            return issue
    return None


def notify(request: NotifyRequest) -> str:
    """Open, update or close the issue; returns what was done (for the log and the tests)."""
    results = read_results(request.results, "notify")
    api = Api(request.api, request.repo, request.token)
    issue = open_issue(api)
    number = issue.get("number") if issue else None
    earlier = tracked_ids(str(issue.get("body") or "")) if issue else []
    tracked = still_failing(results, earlier)
    if tracked and issue is None:
        made = api.call(
            "POST", "/issues", {"title": TITLE, "body": body(results, tracked, request.page), "labels": [LABEL]}
        )
        return f"opened issue #{made.get('number') if isinstance(made, dict) else '?'}: {len(tracked)} cell(s)"
    if tracked:
        api.call("PATCH", f"/issues/{number}", {"body": body(results, tracked, request.page)})
        return f"updated issue #{number}: {len(tracked)} cell(s)"
    if issue is not None:
        api.call(
            "POST",
            f"/issues/{number}/comments",
            {"body": f"Night `{results.run.id}`: every cell this issue listed passes again (or left the matrix)."},
        )
        api.call("PATCH", f"/issues/{number}", {"state": "closed", "state_reason": "completed"})
        return f"closed issue #{number}"
    return "no regressions, no open issue: nothing to do"
