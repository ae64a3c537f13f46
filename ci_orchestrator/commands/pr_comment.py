"""`report comment [RUN.json] [--mode M] [--pr N]`: the playbook's one comment on the pull request,
posted by the first run and edited in place by the next ones (found again by its hidden marker).

Modes: `always`; `failures`, only when something failed (a step, or a test of a step's JUnit
files); `changes`, only when the comparison
lists something; `off`. A comment that exists already is always brought up to date, so that it
never shows an old failure as current. The comment is an aid, never the job's result: no token,
no pull request, or a refusal from GitHub (a fork's read-only token answers 403) is a warning,
and the command still succeeds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import UsageError
from ci_orchestrator.options import REPORTS_DIR
from ci_orchestrator.output.workflow_commands import printable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.results import RunResult

MODES = ("always", "failures", "changes", "off")


def comment(record: Path | None, *, mode: str = "always", number: int | None = None) -> str:
    """Post or update the comment of the run recorded in `record` (default: the last run's);
    returns what was done, in a line."""
    from ci_orchestrator.reporters.run_record import read_run_record

    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if number is not None and number < 1:
        raise UsageError(f"--pr {number}: expected a pull request number")
    result = read_run_record(Path.cwd() / REPORTS_DIR / "run.json" if record is None else record)
    if mode == "off":
        return "comment mode off: no comment posted"
    return printable(_post(result, mode, number, os.environ))


def _post(result: RunResult, mode: str, number: int | None, env: Mapping[str, str]) -> str:
    from ci_orchestrator.commands.github_api import DEFAULT_API_URL, ApiError, GitHub
    from ci_orchestrator.reporters.comment_body import comment_body, marker

    token = env.get("GITHUB_TOKEN", "").strip()
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    number = number or _event_number(env)
    missing = (
        "no pull request (give --pr, or run on a pull_request event)" if number is None
        else "no GITHUB_TOKEN" if not token
        else "no GITHUB_REPOSITORY (owner/name)" if "/" not in repository
        else None
    )  # fmt: skip
    if missing or number is None:
        notices.warn(f"no pull-request comment: {missing}")
        return "no comment posted"
    github = GitHub(token=token, repository=repository, api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL)
    wanted = _wanted(result, mode)
    hidden = marker(result.playbook)
    try:
        existing = next(
            (item for item in github.issue_comments(number) if item.body.lstrip().startswith(hidden)), None
        )
        if existing is None and not wanted:
            return f"nothing for a comment in mode {mode}: none posted on pull request #{number}"
        body = comment_body(result, run_url=_run_url(env))
        if existing is None:
            made = github.create_comment(number, body)
            return f"commented on pull request #{number} (comment {made})"
        github.edit_comment(existing.id, body)
        return f"updated the comment on pull request #{number} (comment {existing.id})"
    except ApiError as error:
        hint = ""
        if error.status == 403:
            hint = (
                " (the token may not write: give the job `permissions: pull-requests: write`;"
                " a pull request from a fork gets a read-only token)"
            )
        notices.warn(f"no pull-request comment: GitHub answered {error}{hint}")
        return "no comment posted"


def _wanted(result: RunResult, mode: str) -> bool:
    """Whether the mode has something to say about this run (a comment that exists already is
    edited whatever it says)."""
    if mode == "failures":
        from ci_orchestrator.reporters.test_summary import has_failing_tests

        failed = any(step.status.is_failure or has_failing_tests(step) for step in result.steps)
        return failed or not result
    if mode == "changes":
        return result.comparison is not None and result.comparison.lists_something()
    return True


def _event_number(env: Mapping[str, str]) -> int | None:
    """The number of the pull request of the event that started the workflow run, if any."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    number = pull.get("number") if isinstance(pull, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else None


def _run_url(env: Mapping[str, str]) -> str | None:
    """The page of the workflow run, where the job summary and the logs are."""
    server, repository, run = (
        env.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if not (server.startswith("https://") and repository and run.isdigit()):
        return None
    return f"{server.rstrip('/')}/{repository}/actions/runs/{run}"
