"""What GitHub's workflow parser accepts: the keys of each level, the events, the forms of ids,
and which expression contexts each key may read (as the workflow schema of GitHub's own parser
says: a context used where it is not available makes GitHub refuse the whole workflow)."""

from __future__ import annotations

import re

ROOT_KEYS = ("name", "run-name", "description", "on", "permissions", "env", "defaults", "concurrency", "jobs")
# A job that runs steps, and a job that calls a reusable workflow.
JOB_KEYS = (
    "name", "needs", "if", "runs-on", "strategy", "timeout-minutes", "cancel-timeout-minutes",
    "continue-on-error", "container", "services", "env", "environment", "permissions", "concurrency",
    "outputs", "defaults", "steps", "snapshot",
)  # fmt: skip
CALLER_KEYS = ("name", "uses", "with", "secrets", "needs", "if", "permissions", "concurrency", "strategy")
RUN_STEP_KEYS = (
    "id", "name", "if", "run", "shell", "working-directory", "env", "continue-on-error", "timeout-minutes",
)  # fmt: skip
USES_STEP_KEYS = ("id", "name", "if", "uses", "with", "env", "continue-on-error", "timeout-minutes")
STRATEGY_KEYS = ("matrix", "fail-fast", "max-parallel")
DEFAULTS_KEYS = ("run",)
DEFAULTS_RUN_KEYS = ("shell", "working-directory")
EVENTS = (
    "branch_protection_rule", "check_run", "check_suite", "create", "delete", "deployment",
    "deployment_status", "discussion", "discussion_comment", "fork", "gollum", "image_version",
    "issue_comment", "issues", "label", "merge_group", "milestone", "page_build", "project",
    "project_card", "project_column", "public", "pull_request", "pull_request_comment",
    "pull_request_review", "pull_request_review_comment", "pull_request_target", "push",
    "registry_package", "release", "repository_dispatch", "schedule", "status", "watch",
    "workflow_call", "workflow_dispatch", "workflow_run",
)  # fmt: skip
INPUT_TYPES = ("string", "boolean", "number", "choice", "environment")

# Job and step ids: a letter or `_` first, then letters, digits, `-` and `_`.
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# Which contexts each key may read (status functions only in `if:`).
_WORKFLOW = ("github", "inputs", "vars")
_JOB = (*_WORKFLOW, "needs", "strategy", "matrix")
_STEP = (*_JOB, "secrets", "steps", "job", "runner", "env")
CONTEXTS: dict[str, tuple[str, ...]] = {
    "run-name": _WORKFLOW,
    "workflow-env": (*_WORKFLOW, "secrets"),
    "job-if": (*_WORKFLOW, "needs"),
    "strategy": (*_WORKFLOW, "needs"),
    "job": _JOB,  # name, runs-on, timeout-minutes, continue-on-error, concurrency, environment
    "environment-url": (*_JOB, "steps", "job", "runner", "env"),
    "job-env": (*_JOB, "secrets"),
    "job-defaults": (*_JOB, "env"),
    "job-outputs": (*_JOB, "secrets", "steps", "job", "runner", "env"),
    "caller-with": (*_JOB, "secrets"),
    "step-if": (*_JOB, "steps", "job", "runner", "env"),
    "step": _STEP,  # env, with, run, working-directory, timeout-minutes, continue-on-error, name
}

# The shells GitHub names; any other value is a command template (with or without `{0}`).
SHELLS = ("bash", "sh", "python", "pwsh", "powershell", "cmd")
