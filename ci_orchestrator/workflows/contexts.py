"""The `github`, `inputs` and `secrets` contexts of a run here, as a GitHub runner would fill them.

`github` comes from the local repository (commit, branch, the `origin` remote's owner/name) and
the working directory; playbook variables named `github.NAME` set or override its fields (the
event: `github.event_name`, `push` unless given), and variables named `inputs.NAME` make the
`inputs` context. So the values a run used are its variables, recorded in run.json, and `repro`
runs with the same ones. `secrets` holds the values of the playbook's `secrets:` environment
variables (masked wherever they appear).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

GITHUB_PREFIX = "github."
INPUTS_PREFIX = "inputs."
DEFAULT_EVENT = "push"
_REMOTE = re.compile(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$")


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@functools.cache
def _repository(workspace: str) -> tuple[tuple[str, str], ...]:
    """What git says of the working copy at `workspace` (asked once per process)."""
    del workspace  # the cache key: git reads the working directory
    sha = _git("rev-parse", "HEAD")
    branch = _git("symbolic-ref", "--quiet", "--short", "HEAD")
    remote = _git("remote", "get-url", "origin")
    match = _REMOTE.search(remote)
    owner, name = (match.group(1), match.group(2)) if match else ("", "")
    return (("sha", sha), ("branch", branch), ("owner", owner), ("name", name))


def github_context(variables: Mapping[str, str], *, workspace: str | None = None) -> dict[str, Any]:
    """The `github` context: the local repository's values, overlaid with `github.*` variables."""
    where = workspace or str(Path.cwd())
    found = dict(_repository(where))
    branch = found["branch"]
    repository = f"{found['owner']}/{found['name']}" if found["owner"] else Path(where).name
    context: dict[str, Any] = {
        "sha": found["sha"],
        "ref": f"refs/heads/{branch}" if branch else "",
        "ref_name": branch,
        "ref_type": "branch" if branch else "",
        "head_ref": "",
        "base_ref": "",
        "repository": repository,
        "repository_owner": found["owner"],
        "workspace": where,
        "event_name": DEFAULT_EVENT,
        "event": {},
        "actor": os.environ.get("USER", ""),
        "triggering_actor": os.environ.get("USER", ""),
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "run_id": "0",
        "run_number": "1",
        "run_attempt": "1",
        "retention_days": "90",
        "action": "",
        "job": "",
        "workflow": "",
        "token": "",
    }
    for name, value in variables.items():
        if name.startswith(GITHUB_PREFIX):
            context[name[len(GITHUB_PREFIX) :]] = value
    return context


def inputs_context(variables: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(INPUTS_PREFIX) :]: value
        for name, value in variables.items()
        if name.startswith(INPUTS_PREFIX)
    }


def secrets_context(names: Collection[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The declared secrets' values from the environment (an unset one is empty, as on GitHub)."""
    source = os.environ if environ is None else environ
    return {name: source.get(name, "") for name in names}


class LazyContexts(dict[str, Any]):
    """Contexts whose `github` is asked of git only when an expression reads it."""

    def __init__(self, values: Mapping[str, Any], variables: Mapping[str, str]) -> None:
        super().__init__(values)
        self._variables = variables

    def __missing__(self, key: str) -> Any:
        if key == "github":
            self[key] = github_context(self._variables)
            return self[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key == "github" or super().__contains__(key)
