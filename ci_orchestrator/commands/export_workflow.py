"""`export github-workflow`: a GitHub workflow that runs a playbook with the action.

GitHub is the scheduler: playbook and group `schedule:` entries become `on: schedule` triggers,
each selecting what it covers. With shards, a plan job computes the matrix, N shard jobs run
their parts, and a merge job joins their run records. Every job uses the action, which carries
the run history between workflow runs and comments on the pull request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ci_orchestrator.commands import sharding
from ci_orchestrator.errors import UsageError
from ci_orchestrator.pipeline import prepare
from ci_orchestrator.units import MAX_SHARDS

if TYPE_CHECKING:
    from ci_orchestrator.options import Selection
    from ci_orchestrator.playbook.model import Playbook

ACTION = "ci-orchestrator/ci-orchestrator@v1"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _literal(text: str) -> str:
    """A string literal of GitHub's expression language: in single quotes, each one doubled."""
    return "'" + text.replace("'", "''") + "'"


def _inert(text: str) -> str:
    """Text for a field where GitHub allows no expression (the workflow's `name:`): a `${{`
    written in the playbook's name is shown, not read as the start of one."""
    return text.replace("${{", "$ {{")


def schedules(playbook: Playbook) -> dict[str, str]:
    """cron -> the `--select` expression of the runs it starts, crons in the order written.

    A cron selects every group that has it (`group:A,group:B`: `--select` reads the name of a
    group of the playbook whole, commas and all), and everything (an empty selection) when the
    playbook's own `schedule:` has it too.
    """
    chosen: dict[str, list[str] | None] = dict.fromkeys(playbook.schedule)  # None: everything
    for group in playbook.groups:
        for cron in group.schedule:
            names = chosen.setdefault(cron, [])
            if names is not None and group.name not in names:
                names.append(group.name)
    return {
        cron: "" if names is None else ",".join(f"group:{name}" for name in names)
        for cron, names in chosen.items()
    }


def export_workflow(selection: Selection, *, shards: int = 1, action: str = ACTION) -> str:
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"--shards must be from 1 to {MAX_SHARDS} (GitHub's most jobs of one matrix)")
    prepared = prepare(selection)
    playbook = prepared.playbook
    if shards > 1:
        sharding.warn_fewer_parts(prepared.plan, shards)
    crons = schedules(playbook)
    lines = [
        f"name: {_q(_inert(playbook.name))}",
        "on:",
        "  push:",
        "    branches: [main]",
        "  pull_request:",
        "  workflow_dispatch:",
    ]
    if crons:
        lines.append("  schedule:")
        lines.extend(f"    - cron: {_q(cron)}" for cron in crons)
    select = _select_expression(crons)
    if shards > 1:
        lines += [
            "permissions:",
            "  contents: read",
            "jobs:",
            *_sharded_jobs(playbook, shards, action, select),
        ]
    else:
        lines += [
            "permissions:",
            "  contents: read",
            "jobs:",
            "  run:",
            "    runs-on: ubuntu-latest",
            # A job alone: the action comments on a pull request whose run failed.
            *(f"    {line}" for line in _COMMENTING),
            "    steps:",
            *_SETUP_STEPS,
            f"      - uses: {action}",
            "        id: ci",
            "        with:",
            *_playbook_inputs(playbook, select),
            *_upload("ci-orchestrator-reports", *REPORTS),
        ]
    return "\n".join(lines) + "\n"


# Every job starts from the repository and a Python to install ci-orchestrator with.
_SETUP_STEPS = (
    "      - uses: actions/checkout@v4",
    "      - uses: actions/setup-python@v5",
    "        with:",
    '          python-version: "3.11"',
)

# The job that comments on the pull request may write its comments; nothing else is written.
_COMMENTING = ("permissions:", "  contents: read", "  pull-requests: write")


# What the documented workflow uploads: the reports and the steps' logs, an artifact holding
# `reports/` and `logs/` (upload-artifact roots it at the folder its paths share), as the job
# summary's reproduce commands expect (`reporters/reproduce`).
REPORTS = (".ci-orchestrator/reports/", ".ci-orchestrator/logs/")


def _upload(name: str, *paths: str) -> list[str]:
    """An artifact upload that runs whatever the earlier steps did: failed runs need reports most."""
    return [
        "      - uses: actions/upload-artifact@v4",
        "        if: always()",
        "        with:",
        f"          name: {name}",
        "          path: |",
        *(f"            {path}" for path in paths),
    ]


def _playbook_inputs(playbook: Playbook, select: str) -> list[str]:
    """The action's inputs that say what to run: the same in every job of a workflow (the jobs of
    a split share the history of that playbook and selection)."""
    return [
        f"          playbook: {_q(playbook.path)}",
        *([f"          select: {_q(select)}"] if select else []),
    ]


def _select_expression(crons: dict[str, str]) -> str:
    """A `${{ }}` choosing the selection by the schedule that fired (`github.event.schedule` is
    its cron, as written); empty when every trigger runs everything."""
    chosen = [(cron, select) for cron, select in crons.items() if select]
    if not chosen:
        return ""
    parts = " || ".join(
        f"github.event.schedule == {_literal(cron)} && {_literal(select)}" for cron, select in chosen
    )
    return "${{ " + parts + " || '' }}"


def _sharded_jobs(playbook: Playbook, shards: int, action: str, select: str) -> list[str]:
    """Plan, shard and merge jobs, each with the action. The plan job splits the selection the
    shard jobs run, once: each shard job runs its matrix entry's instances, whatever history it
    holds, so a rerun job runs its part again. The merge job merges their records, comments on
    the pull request and keeps the history of the merged runs, which the next plan job splits
    by."""
    return [
        "  plan:",
        "    runs-on: ubuntu-latest",
        "    outputs:",
        "      matrix: ${{ steps.plan.outputs.matrix }}",
        "    steps:",
        *_SETUP_STEPS,
        f"      - uses: {action}",
        "        id: plan",
        "        with:",
        *_playbook_inputs(playbook, select),
        f"          shards: {shards}",
        "  shard:",
        "    needs: plan",
        "    runs-on: ubuntu-latest",
        "    strategy:",
        "      fail-fast: false",
        "      matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}",
        "    name: ${{ matrix.name }}",
        "    steps:",
        *_SETUP_STEPS,
        f"      - uses: {action}",
        "        with:",
        *_playbook_inputs(playbook, select),
        "          shard: ${{ matrix.shard }}",
        "          shard-instances: ${{ toJSON(matrix.instances) }}",
        *_upload("run-${{ strategy.job-index }}", ".ci-orchestrator/reports/run.json", REPORTS[1]),
        "  merge:",
        "    needs: [plan, shard]",
        # After failed shards too (their failures are what the reports are for), not without a plan.
        "    if: ${{ !cancelled() && needs.plan.result == 'success' }}",
        "    runs-on: ubuntu-latest",
        *(f"    {line}" for line in _COMMENTING),
        "    steps:",
        *_SETUP_STEPS,
        "      - uses: actions/download-artifact@v4",
        "        with:",
        "          pattern: run-*",
        "          path: runs",
        f"      - uses: {action}",
        "        with:",
        *_playbook_inputs(playbook, select),
        # A job alone: the action comments on the pull request when the merged run failed.
        "          merge: runs",
        # The logs stay in each shard's artifact; the merged record is where a single job's is.
        *_upload("ci-orchestrator-reports", *REPORTS),
    ]
