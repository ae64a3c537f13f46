"""What a run tests: its branch and commit, and under a pull request the branch it would merge
into. GitHub's variables say it when they are set, else git, else nothing (None).

- branch: `GITHUB_HEAD_REF` (a pull request's branch), else the branch of `GITHUB_REF`
  (`refs/heads/NAME`), else git's current branch (none when HEAD is detached);
- commit: `GITHUB_SHA`, else git's HEAD;
- base branch: `GITHUB_BASE_REF` on a `pull_request` or `pull_request_target` event.

Each is text (`ci.text_variable`): a value that is not UTF-8 reaches the reports and the run
history with U+FFFD in place of what cannot be read.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator import ci

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
_GIT_SECONDS = 10.0  # a git that hangs (a lock, a network file system) does not hold the run


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    branch: str | None = None
    commit: str | None = None
    base_branch: str | None = None  # set under a pull request only


def current(root: Path, environ: Mapping[str, str] | None = None) -> Revision:
    """The revision the working copy at `root` holds, as GitHub's variables or git say."""
    env = os.environ if environ is None else environ

    def variable(name: str) -> str:
        return ci.text_variable(name, env)

    ref = variable("GITHUB_REF")
    branch = variable("GITHUB_HEAD_REF") or None
    if branch is None and ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
    commit = variable("GITHUB_SHA") or None
    base = variable("GITHUB_BASE_REF") or None
    if variable("GITHUB_EVENT_NAME") not in PULL_REQUEST_EVENTS:
        base = None
    # A GITHUB_REF that names no branch (a tag) says there is none: git would only tell the
    # detached HEAD of its checkout.
    if commit is None or (branch is None and not ref):
        known_branch, known_commit = _from_git(root)
        if branch is None and not ref:
            branch = known_branch
        commit = commit or known_commit
    return Revision(branch=branch, commit=commit, base_branch=base)


def _from_git(root: Path) -> tuple[str | None, str | None]:
    """The current branch (None when HEAD is detached) and commit, from git; (None, None) where
    `root` is in no git working copy, git is not installed, or it says nothing."""
    if not any((folder / ".git").exists() for folder in (root, *root.parents)):
        return None, None  # no repository: no process started to be told so
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_GIT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None, None
    commit, branch = lines
    return (None if branch == "HEAD" else branch), commit
