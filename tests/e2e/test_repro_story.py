"""Reproducing a CI failure as the docs and the job summary tell it: the documented workflow's
artifact upload (as upload-artifact lays an artifact out), downloaded on a laptop, the
summary's commands run there. The README, docs/github-actions.md and `export github-workflow`
upload the same files, and those are the files the summary's commands and log paths name."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO, cli_environment, repro_record, run_cli

PLAYBOOK = """\
name: ci
vars: {flavour: sour}
steps:
  - id: build
    run: echo built > built.txt
  - id: test
    needs: [build]
    matrix: {py: ["3.11", "3.12"]}
    run: |
      echo "testing ${{ vars.flavour }} on $MATRIX_PY"
      test "$MATRIX_PY" != 3.12 || { echo "boom on $MATRIX_PY"; exit 3; }
"""
ARTIFACT = "ci-orchestrator-reports"


def checkout(where: Path) -> Path:
    (where / "playbooks").mkdir(parents=True)
    (where / "playbooks" / "ci.yml").write_text(PLAYBOOK)
    return where


def uploads(workflow: dict[str, Any]) -> dict[str, list[str]]:
    """artifact name -> the paths its upload-artifact step gives, over every job."""
    found: dict[str, list[str]] = {}
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/upload-artifact@"):
                found[step["with"]["name"]] = str(step["with"]["path"]).split()
    return found


def documented(path: Path) -> list[dict[str, Any]]:
    """The workflows in a markdown file's yaml blocks that upload something."""
    blocks = re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    loaded = []
    for block in blocks:
        try:
            loaded.append(yaml.safe_load(block))
        except yaml.YAMLError:
            continue  # a fragment of a step, not a workflow
    return [doc for doc in loaded if isinstance(doc, dict) and "jobs" in doc and uploads(doc)]


def exported(work: Path, *args: str) -> dict[str, Any]:
    done = run_cli(work, "export", "github-workflow", "ci", *args)
    assert done.returncode == 0, done.stderr
    workflow: dict[str, Any] = yaml.safe_load(done.stdout)
    return workflow


def upload(workspace: Path, paths: list[str], artifact: Path) -> None:
    """What actions/upload-artifact puts in an artifact: the files under each path (hidden ones
    left out), relative to the folder the paths share (one path: that folder, or a file's own)."""
    searches = [Path(os.path.normpath(workspace / path)) for path in paths]
    root = Path(os.path.commonpath(searches)) if len(searches) > 1 else searches[0]
    if len(searches) == 1 and root.is_file():
        root = root.parent
    for search in searches:
        files = [search] if search.is_file() else sorted(search.rglob("*")) if search.exists() else []
        for file in files:
            if file.is_file() and not file.name.startswith("."):
                target = artifact / file.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)


def test_the_docs_and_the_exported_workflow_upload_the_same_reports(tmp_path: Path) -> None:
    work = checkout(tmp_path)
    workflows = [*documented(REPO / "README.md"), *documented(REPO / "docs" / "github-actions.md")]
    workflows.append(exported(work))
    assert len(workflows) >= 3
    paths = {tuple(uploads(workflow)[ARTIFACT]) for workflow in workflows}
    assert paths == {(".ci-orchestrator/reports/", ".ci-orchestrator/logs/")}


def test_a_failure_reproduces_on_a_laptop_from_the_documented_artifact(tmp_path: Path) -> None:
    ci = checkout(tmp_path / "ci")
    failed = run_cli(ci, "run", "--var", "flavour=bitter", "--output", "quiet")
    assert failed.returncode == 1, failed.stderr
    [workflow] = documented(REPO / "docs" / "github-actions.md")[:1]
    upload(ci, uploads(workflow)[ARTIFACT], tmp_path / "artifact")

    laptop = checkout(tmp_path / "laptop")
    shutil.copytree(tmp_path / "artifact", laptop / "ci-reports")  # gh run download ... -D ci-reports
    summary = (ci / ".ci-orchestrator" / "reports" / "summary.md").read_text(encoding="utf-8")

    # The whole log the summary names is in the artifact, where it was in .ci-orchestrator/.
    [named] = re.findall(r"Log tail of <code>(.*?)</code>", summary)
    log = laptop / "ci-reports" / Path(html.unescape(named)).relative_to(".ci-orchestrator")
    assert "boom on 3.12" in log.read_text()

    # The run's commands: every failure, then the one the failure's section names.
    [block] = re.findall(r"```sh\n((?:git checkout \S+\n)?ci-orchestrator repro [^\n]*)\n```", summary)
    commands = [line for line in block.splitlines() if not line.startswith("git checkout")]
    commands += re.findall(r"Reproduce locally: `(ci-orchestrator repro [^`]+)`", summary)
    assert len(commands) == 2
    for command in commands:
        rerun = run_cli(laptop, *shlex.split(command)[1:])
        assert rerun.returncode == 1, (command, rerun.stderr)
        record = repro_record(laptop, rerun)
        statuses = {step["id"]: step["status"] for step in record["steps"]}
        assert statuses == {"build": "passed", "test (3.12)": "failed"}, command
        rerun_log = laptop / record["steps"][1]["log"]
        assert "testing bitter on 3.12" in rerun_log.read_text()  # the run's own --var


def test_the_exported_sharded_workflow_merges_what_its_shards_upload(tmp_path: Path) -> None:
    work = checkout(tmp_path / "repo")
    (work / "playbooks" / "ci.yml").write_text(
        "name: ci\nexecution: parallel\nsteps:\n"
        + textwrap.dedent(
            """\
              - {id: a, run: "echo a"}
              - {id: b, run: "echo b; exit 1"}
            """
        )
    )
    workflow = exported(work, "--shards", "2")
    shard_paths = uploads(workflow)["run-${{ strategy.job-index }}"]
    runs = tmp_path / "merge" / "runs"
    for index, shard in enumerate(["1/2", "2/2"]):
        runner = tmp_path / f"shard-{index}"
        shutil.copytree(work, runner)
        run_cli(runner, "run", "--shard", shard, "--output", "quiet")
        upload(runner, shard_paths, runs / f"run-{index}")  # download-artifact: runs/<name>/
    assert list(runs.glob("run-*/logs/*/*.log")), "the shards' logs are uploaded"

    [merge] = [step["run"] for step in workflow["jobs"]["merge"]["steps"] if "run" in step]
    script = "\n".join(line for line in merge.splitlines() if not line.startswith("pip install"))
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ci-orchestrator").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ci_orchestrator "$@"\n')
    (tools / "ci-orchestrator").chmod(0o755)
    env = cli_environment(tmp_path / "merge")
    env["PATH"] = f"{tools}:{env['PATH']}"
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path / "merge",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # shard 2's step failed: the merge says so
    merged = json.loads((tmp_path / "merge" / ".ci-orchestrator" / "reports" / "run.json").read_text())
    assert sorted(step["id"] for step in merged["steps"]) == ["a", "b"]

    # Its upload is laid out as a single job's: the record where the summary's commands look.
    upload(tmp_path / "merge", uploads(workflow)[ARTIFACT], tmp_path / "artifact")
    assert (tmp_path / "artifact" / "reports" / "run.json").is_file()
