"""GitHub's REST API for issue comments, played by a real HTTP server on 127.0.0.1 for tests:
comments kept in memory, pages of `per_page` with GitHub's `Link` header, and every request
recorded (method, path and query, headers, JSON body) for the test to read.

`refuse_writes` answers POST and PATCH with 403 as GitHub does for a fork's read-only token;
`fail_with` answers every request with that status; `next_page_host` puts another host in the
`Link` header.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    """The state the server shares with the test."""

    owner: str = "octo"
    repo: str = "widgets"
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by issue number
    requests: list[Request] = field(default_factory=list)
    refuse_writes: bool = False
    fail_with: int | None = None
    next_page_host: str | None = None
    url: str = ""
    _next_id: int = 1000

    def add_comment(self, number: int, body: str, login: str = "someone") -> int:
        self._next_id += 1
        self.comments.setdefault(number, []).append(
            {"id": self._next_id, "body": body, "user": {"login": login, "type": "User"}}
        )
        return self._next_id

    def calls(self, *methods: str) -> list[Request]:
        return [request for request in self.requests if not methods or request.method in methods]

    def pull_request_environment(self, folder: Path, *, number: int) -> dict[str, str]:
        """GitHub's variables in a job of pull request `number` (its event file written in
        `folder`), pointing at this server; the token is the test's to give."""
        event = folder / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": number}}), encoding="utf-8")
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_REPOSITORY": f"{self.owner}/{self.repo}",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_EVENT_NAME": "pull_request",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self) -> Request:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            state.requests.append(request)
            return request

        def _answer(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> None:
            request = self._record()
            if state.fail_with is not None:
                self._answer(state.fail_with, {"message": "Server Error"})
                return
            base = f"/repos/{state.owner}/{state.repo}/issues"
            if request.method in ("POST", "PATCH") and state.refuse_writes:
                self._answer(403, {"message": "Resource not accessible by integration"})
                return
            parts = request.path.removeprefix(base).strip("/").split("/")
            if not request.path.startswith(base + "/"):
                self._answer(404, {"message": "Not Found"})
            elif request.method == "GET" and len(parts) == 2 and parts[1] == "comments":
                self._list(int(parts[0]), request)
            elif request.method == "POST" and len(parts) == 2 and parts[1] == "comments":
                made = state.add_comment(int(parts[0]), request.body["body"], login="github-actions[bot]")
                self._answer(201, {"id": made, "body": request.body["body"]})
            elif request.method == "PATCH" and len(parts) == 2 and parts[0] == "comments":
                for comments in state.comments.values():
                    for comment in comments:
                        if comment["id"] == int(parts[1]):
                            comment["body"] = request.body["body"]
                            self._answer(200, comment)
                            return
                self._answer(404, {"message": "Not Found"})
            else:
                self._answer(404, {"message": "Not Found"})

        def _list(self, number: int, request: Request) -> None:
            per_page = int(request.query.get("per_page", ["30"])[0])
            page = int(request.query.get("page", ["1"])[0])
            comments = state.comments.get(number, [])
            chunk = comments[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(comments):
                host = state.next_page_host or state.url
                link = f"{host}{request.path}?per_page={per_page}&page={page + 1}"
                headers["Link"] = f'<{link}>; rel="next", <{link}>; rel="last"'
            self._answer(200, chunk, headers)

        do_GET = _route
        do_POST = _route
        do_PATCH = _route

    return Handler


def serve(state: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve `state` on a free port of 127.0.0.1 until the generator is closed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
