"""A small client of GitHub's REST API, over the standard library: the issue-comment calls the
pull-request comment makes, with GitHub's headers, a timeout, pages followed through the `Link`
header, and the token sent to the API's own host only (a redirect or a next page elsewhere is
refused). `GITHUB_API_URL` gives GitHub Enterprise's API.

Which account the token acts as comes from GraphQL's `viewer` (`GITHUB_GRAPHQL_URL`): REST's
`GET /user` refuses the job's token and every GitHub App's (an installation token), while
`viewer` answers for those (`github-actions[bot]`, `APP[bot]`) and for a person's token alike.

`within` bounds a whole exchange in time: a request's timeout bounds each wait for bytes only,
and a server that sends one byte a second would hold it for a day.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ci_orchestrator import __version__
from ci_orchestrator.output.untrusted import MAX_FILE_BYTES, parse_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT = 20.0  # seconds for one request
PER_PAGE = 100  # GitHub's most
MAX_PAGES = 100  # 10,000 comments: past that the comment is not looked for
_RETRY_PAUSE = 1.0  # before the one retry of a request the server could not answer
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


class ApiError(Exception):
    """A call GitHub refused or could not answer; `status` is the HTTP status, 0 without one."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A GitHub account: a person's or a bot's (an app's, `NAME[bot]`)."""

    login: str
    id: int | None  # GitHub's number for it; None when not told

    def same_as(self, other: Account) -> bool:
        if self.id is not None and other.id is not None:
            return self.id == other.id
        return self.login.casefold() == other.login.casefold()


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueComment:
    id: int
    body: str
    author: Account | None  # None when GitHub names none (a deleted account)


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect on the API's own scheme and host only: the token goes nowhere else."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if _origin(newurl) != _origin(req.full_url):
            return None  # urllib then raises the redirect as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class GitHub:
    """Calls to one repository's API with one token."""

    def __init__(
        self, *, token: str, repository: str, api_url: str = DEFAULT_API_URL, graphql_url: str | None = None
    ) -> None:
        self.token = token
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self.graphql_url = graphql_url or _graphql_url(self.api_url)
        self._opener = urllib.request.build_opener(_SameHostRedirects())

    def viewer(self) -> Account:
        """The account the token acts as."""
        data, _ = self._call("POST", self.graphql_url, {"query": "query { viewer { login databaseId } }"})
        found = data.get("data") if isinstance(data, dict) else None
        viewer = found.get("viewer") if isinstance(found, dict) else None
        account = _account(viewer, number="databaseId")
        if account is None:
            raise ApiError(f"POST {_path(self.graphql_url)}: no viewer in the answer{_graphql_errors(data)}")
        return account

    def issue_comments(self, number: int) -> Iterator[IssueComment]:
        """The comments of issue (or pull request) `number`, oldest first, page after page."""
        url: str | None = f"{self._repo_url()}/issues/{number}/comments?per_page={PER_PAGE}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            data, headers = self._call("GET", url)
            if not isinstance(data, list):
                raise ApiError("listing the comments gave no list")
            for item in data:
                if isinstance(item, dict) and _whole(item.get("id")) and isinstance(item.get("body"), str):
                    yield IssueComment(id=item["id"], body=item["body"], author=_account(item.get("user")))
            url = _next_page(headers.get("Link", ""))
            if url is not None and _origin(url) != _origin(self.api_url):
                raise ApiError(f"the next page is on another host ({_origin(url)}): not followed")

    def create_comment(self, number: int, body: str) -> int:
        data, _ = self._call("POST", f"{self._repo_url()}/issues/{number}/comments", {"body": body})
        return _comment_id(data)

    def edit_comment(self, comment_id: int, body: str) -> int:
        data, _ = self._call("PATCH", f"{self._repo_url()}/issues/comments/{comment_id}", {"body": body})
        return _comment_id(data)

    def _repo_url(self) -> str:
        owner, _, name = self.repository.partition("/")
        return (
            f"{self.api_url}/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"
        )

    def _call(self, method: str, url: str, payload: object = None) -> tuple[Any, Any]:
        """One request, its JSON and headers. A GET or PATCH the server could not answer is made
        once more (the same again); a POST is not, which could make a second comment."""
        try:
            return self._request(method, url, payload)
        except ApiError as error:
            if method == "POST" or not (error.status == 0 or error.status >= 500):
                raise
        time.sleep(_RETRY_PAUSE)
        return self._request(method, url, payload)

    def _request(self, method: str, url: str, payload: object) -> tuple[Any, Any]:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - an https API URL
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        request.add_header("User-Agent", f"ci-orchestrator/{__version__}")
        if data is not None:
            request.add_header("Content-Type", "application/json; charset=utf-8")
        try:
            with self._opener.open(request, timeout=TIMEOUT) as response:
                body = response.read(MAX_FILE_BYTES + 1)
                headers = response.headers
        except urllib.error.HTTPError as error:
            raise ApiError(
                f"{method} {_path(url)}: {error.code} {_message(error)}", status=error.code
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(f"{method} {_path(url)}: {reason}") from None
        except (UnicodeError, ValueError) as error:  # a host name IDNA refuses, a URL http.client does
            raise ApiError(f"{method} {_path(url)}: cannot be sent ({error})") from None
        if len(body) > MAX_FILE_BYTES:
            raise ApiError(f"{method} {_path(url)}: an answer of more than {MAX_FILE_BYTES >> 20} MiB")
        try:
            return (parse_json(body.decode("utf-8")) if body else None), headers
        except ValueError as error:  # NotJson, UnicodeDecodeError
            raise ApiError(f"{method} {_path(url)}: the answer is not JSON ({error})") from None


def within(seconds: float, exchange: Callable[[], T]) -> T:
    """What `exchange()` gives, if it ends within `seconds`; else `ApiError`. It runs on a thread
    of its own, left behind when time is up (the command ends soon after, and it with it): a
    read or a name lookup cannot be cut short from outside."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(exchange())
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run, name="github-exchange", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ApiError(f"too slowly (no whole answer within {seconds:g} s)")
    if failure:
        raise failure[0]
    return outcome[0]


def _account(data: Any, *, number: str = "id") -> Account | None:
    """The account a REST `user` (or GraphQL's `viewer`, its number as `databaseId`) names."""
    if not isinstance(data, dict) or not isinstance(data.get("login"), str) or not data["login"]:
        return None
    return Account(login=data["login"], id=data[number] if _whole(data.get(number)) else None)


def _graphql_errors(data: Any) -> str:
    """` (GitHub's words)` for the first error of a GraphQL answer, or nothing."""
    errors = data.get("errors") if isinstance(data, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    said = first.get("message") if isinstance(first, dict) else None
    return f" ({' '.join(str(said).split())[:200]})" if said else ""


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _graphql_url(api_url: str) -> str:
    """GraphQL's endpoint beside a REST API: `https://api.github.com/graphql`; GitHub
    Enterprise's `https://HOST/api/v3` has it at `https://HOST/api/graphql`."""
    if api_url.endswith("/api/v3"):
        return api_url.removesuffix("/v3") + "/graphql"
    return api_url + "/graphql"


def _message(error: urllib.error.HTTPError) -> str:
    """GitHub's own words for a refusal (`message` of its JSON), else the HTTP reason."""
    try:
        data = parse_json(error.read(64 * 1024).decode("utf-8") or "null")
    except (ValueError, OSError):
        data = None
    message = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(message).split())[:300] if message else str(error.reason)


def _comment_id(data: Any) -> int:
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        raise ApiError("the answer names no comment id")
    return int(data["id"])


def _next_page(link: str) -> str | None:
    """The `rel="next"` URL of a `Link` header, if any."""
    for part in link.split(","):
        match = _NEXT.search(part)
        if match:
            return match.group(1)
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _path(url: str) -> str:
    """A URL as an error names it: its path, without the host or the query."""
    return urllib.parse.urlsplit(url).path
