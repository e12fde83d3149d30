"""Pure: the run's HTTP servers as values. Which server an access mode reads from, its nginx configuration,
the URL a reader task is given, and what each cell cost, read back from the server's own access log.

A reader task's URL is ``http://ALIAS:PORT/c/TOKEN/{phase}/PATH``: TOKEN (12 hex digits of the task id's
hash) names the cell, the probe puts ``r0``, ``r1``, … (one per timed read) or ``one`` (one chunk) in
place of ``{phase}``, and PATH is the archive under the server's ``/srv``. Every read gets its own URL,
so no reader's cache carries one read over to the next, and every request in the log is attributed to
exactly one read of one cell. nginx decodes the URI before it logs ``$uri``; the token and phase are
ASCII, so the attribution does not depend on how an archive's name is spelled.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

import jinja2

from runner.probes import Access
from runner.resources import data_dir

Mode = Literal["range", "norange", "fault", "truncate", "nocors"]
#: which server each HTTP access mode reads from
SERVER_OF: Mapping[Access, Mode] = {
    "http": "range",
    "http-norange": "norange",
    "http-fault": "fault",
    "http-truncated": "truncate",
    "http-nocors": "nocors",
}
#: the fault server answers a read's first requests (this many after the first), then 503 (nginx limit_req)
FAULT_AFTER = 3
#: the truncating server sends this much of each response body, then its upstream stalls and the proxy gives up
TRUNCATE_AFTER = "8k"
#: how long nginx's proxy waits for its stalled upstream before it closes the client's connection mid-body
STALL_TIMEOUT = "300ms"
PORT = 8080
#: as the servers run: Debian's nobody, never root (the port is above 1024)
USER = "65534:65534"
#: the largest access-log line read (a real one is ~200 bytes); longer lines are not the server's format
MAX_LINE = 4096
_LOCATION = re.compile(r"^/c/([0-9a-f]{12})/([a-z0-9]{1,8})/")
PHASE = "{phase}"  # the probe's placeholder in a task's URL
FIRST_READ = "r0"  # the first timed read: the one whose cost a cell reports
ONE_CHUNK = "one"


@dataclass(frozen=True, kw_only=True)
class Server:
    mode: Mode

    @property
    def alias(self) -> str:
        """Its name on the run's network."""
        return f"{self.mode}.zipstore"

    @property
    def ranges(self) -> bool:
        return self.mode != "norange"

    def config(self) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(data_dir("docker")),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        return env.get_template("nginx.conf.j2").render(
            mode=self.mode,
            port=PORT,
            ranges=self.ranges,
            cors=self.mode != "nocors",
            fault_after=FAULT_AFTER if self.mode == "fault" else None,
            truncate_after=TRUNCATE_AFTER if self.mode == "truncate" else None,
            stall_timeout=STALL_TIMEOUT,
        )


def servers_for(access: tuple[Access, ...]) -> tuple[Server, ...]:
    return tuple(Server(mode=SERVER_OF[a]) for a in access if a in SERVER_OF)


def token(task_id: str) -> str:
    return hashlib.sha256(task_id.encode()).hexdigest()[:12]


def served_path(container_path: str) -> str:
    """Where a server finds an archive a reader container sees at ``container_path`` (/artifacts/…,
    /external/k/…): the same tree under /srv."""
    return container_path.lstrip("/")


def url(access: Access, task_id: str, container_path: str) -> str:
    """The URL a reader task is given, with ``{phase}`` for the probe to fill in."""
    server = Server(mode=SERVER_OF[access])
    return f"http://{server.alias}:{PORT}/c/{token(task_id)}/{PHASE}/{quote(served_path(container_path))}"


@dataclass(kw_only=True)
class ReadCost:
    """What one read cost on the wire, from the server's log: requests, and body bytes sent."""

    requests: int = 0
    bytes: int = 0
    #: HTTP status -> how many requests got it
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, status: int, body: int) -> None:
        self.requests += 1
        self.bytes += body
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1

    def merge(self, other: ReadCost) -> None:
        self.requests += other.requests
        self.bytes += other.bytes
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n


_SOFTWARE = re.compile(r'"server":\s?"(nginx/[0-9.]{1,20})"')


def software(text: str) -> str:
    """The server's name and version as its log gives them (``nginx/1.22.1``), or ""."""
    match = _SOFTWARE.search(text[: MAX_LINE * 4])
    return match[1] if match else ""


def parse_log(text: str) -> dict[tuple[str, str], ReadCost]:
    """(token, phase) -> its cost, from an access log in the ``cells`` format. Lines that are not that
    format (nginx's own notices, a truncated last line) are skipped: the log is untrusted text."""
    costs: dict[tuple[str, str], ReadCost] = {}
    for line in text.splitlines():
        if len(line) > MAX_LINE or not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        uri, status, body = entry.get("uri"), entry.get("status"), entry.get("body")
        if not isinstance(uri, str) or not isinstance(status, int) or not isinstance(body, int):
            continue
        match = _LOCATION.match(uri)
        if match is None:
            continue
        costs.setdefault((match[1], match[2]), ReadCost()).add(status, max(0, body))
    return costs
