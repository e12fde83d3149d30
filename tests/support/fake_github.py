"""A local stand-in for the few GitHub REST calls ``runner notify`` makes: it keeps issues in memory, answers
as the API does (the fields used), and records every request it got, for the tests to read."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeGitHub:
    repo: str
    token: str
    url: str = ""
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, payload)
    repos: set[str] = field(default_factory=set)  # the repositories requests named

    def answer(self, method: str, target: str, payload: Any, auth: str) -> tuple[int, Any]:
        self.requests.append((method, target, payload))
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}
        parts = urlsplit(target)
        named = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)", parts.path)
        if named is None:
            return 404, {"message": "Not Found"}
        self.repos.add(named.group(1))  # whichever repository the caller named
        path = named.group(2)
        if method == "GET" and path == "/issues":
            query = parse_qs(parts.query)
            label = query.get("labels", [""])[0]
            state = query.get("state", ["open"])[0]
            found = [i for i in self.issues.values() if i["state"] == state and (not label or label in i["labels"])]
            return 200, [{**i, "labels": [{"name": n} for n in i["labels"]]} for i in found]
        if method == "POST" and path == "/issues":
            number = len(self.issues) + 1
            self.issues[number] = {
                "number": number,
                "title": payload["title"],
                "body": payload["body"],
                "labels": payload.get("labels", []),
                "state": "open",
            }
            return 201, self.issues[number]
        if path.startswith("/issues/"):
            rest = path.split("/")[2:]
            number = int(rest[0])
            if number not in self.issues:
                return 404, {"message": "Not Found"}
            if method == "PATCH" and len(rest) == 1:
                self.issues[number].update({k: v for k, v in payload.items() if k in ("title", "body", "state")})
                return 200, self.issues[number]
            if method == "POST" and rest[1:] == ["comments"]:
                self.comments.setdefault(number, []).append(payload["body"])
                return 201, {"id": len(self.comments[number])}
        return 404, {"message": "Not Found"}


@contextmanager
def fake_github(repo: str = "zarr-developers/zipstore-matrix", token: str = "t0ken") -> Iterator[FakeGitHub]:
    fake = FakeGitHub(repo=repo, token=token)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length)) if length else None
            status, body = fake.answer(self.command, self.path, payload, self.headers.get("Authorization", ""))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
