"""`export github-workflow`: a GitHub workflow that runs a playbook with the action.

GitHub is the scheduler: playbook and group `schedule:` entries become `on: schedule` triggers,
each selecting what it covers. With shards, a plan job computes the matrix, N shard jobs run
their parts, and a merge job joins their run records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.playbook import loader

if TYPE_CHECKING:
    from ci_orchestrator.options import Selection
    from ci_orchestrator.playbook.model import Playbook

ACTION = "ci-orchestrator/ci-orchestrator@v1"
MAX_SHARDS = 256  # GitHub makes at most 256 jobs of one matrix


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
    playbook = loader.load_playbook(loader.find_playbook(selection.playbook, root=Path.cwd()))
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
    lines += ["permissions:", "  contents: read", "jobs:"]
    select = _select_expression(crons)
    if shards > 1:
        lines += _sharded_jobs(playbook, shards, action, select)
    else:
        lines += [
            "  run:",
            "    runs-on: ubuntu-latest",
            # A job alone: the action comments on a pull request whose run failed.
            "    permissions:",
            "      contents: read",
            "      pull-requests: write",
            "    steps:",
            *_SETUP_STEPS,
            f"      - uses: {action}",
            "        id: ci",
            "        with:",
            f"          playbook: {_q(playbook.path)}",
            *([f"          select: {_q(select)}"] if select else []),
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


def _install_command(action: str) -> str:
    """Install the tool from the same repository and ref as the action the workflow uses."""
    repository, _, ref = action.partition("@")
    return f'pip install "git+https://github.com/{repository}@{ref or "main"}"'


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
    """Plan, shard and merge jobs. The plan job splits the same selection the shard jobs run
    (`run --select S --shard I/N` splits the selected steps), so that a scheduled run is split
    into as many parts as its selection has, and no shard job is left with nothing to run."""
    return [
        "  plan:",
        "    runs-on: ubuntu-latest",
        "    outputs:",
        "      matrix: ${{ steps.plan.outputs.matrix }}",
        "    steps:",
        *_SETUP_STEPS,
        "      - id: plan",
        "        shell: bash",
        "        env:",
        f"          PLAYBOOK: {_q(playbook.path)}",
        *([f"          SELECT: {_q(select)}"] if select else []),
        "        run: |",
        f"          {_install_command(action)}",
        f"          options=(--format github-matrix --shards {shards})",
        *(['          if [[ -n "$SELECT" ]]; then options+=(--select "$SELECT"); fi'] if select else []),
        '          matrix=$(ci-orchestrator plan "$PLAYBOOK" "${options[@]}")',
        '          echo "matrix=$matrix" >> "$GITHUB_OUTPUT"',
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
        f"          playbook: {_q(playbook.path)}",
        "          shard: ${{ matrix.shard }}",
        *([f"          select: {_q(select)}"] if select else []),
        *_upload("run-${{ strategy.job-index }}", ".ci-orchestrator/reports/run.json", REPORTS[1]),
        "  merge:",
        "    needs: shard",
        "    if: always()",
        "    runs-on: ubuntu-latest",
        "    steps:",
        *_SETUP_STEPS,
        "      - uses: actions/download-artifact@v4",
        "        with:",
        "          pattern: run-*",
        "          path: runs",
        "      - shell: bash",
        "        run: |",
        f"          {_install_command(action)}",
        # Under GitHub, `report merge` appends the merged summary to the job summary itself.
        "          ci-orchestrator report merge runs/*/reports/run.json",
        # The logs stay in each shard's artifact; the merged record is where a single job's is.
        *_upload("ci-orchestrator-reports", *REPORTS),
    ]
