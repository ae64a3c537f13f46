"""A run compared with its baseline, end to end: two runs in a folder, a pull request's runs
against its base branch, `--baseline`, the branch and commit each run records, and `report
compare` of untrusted records."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from tests.github_runner import parse
from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    from pathlib import Path

BEFORE = """\
name: demo
steps:
  - id: lint
    run: "true"
  - id: breaks
    run: "true"
  - id: heals
    run: exit 2
  - id: gone
    run: "true"
  - id: slow
    run: "true"
"""

AFTER = """\
name: demo
steps:
  - id: lint
    run: "true"
  - id: breaks
    run: exit 3
  - id: heals
    run: "true"
  - id: slow
    run: sleep 2.5
  - id: new
    run: "true"
  - id: wobbly
    retry: 1
    run: if [ -f tried ]; then exit 0; fi; touch tried; exit 1
"""


def write(work: Path, playbook: str) -> None:
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / "ci.yml").write_text(playbook, encoding="utf-8")


def record(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (work / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8")
    )
    return data


def run(work: Path, *args: str, **env: str) -> dict[str, Any]:
    done = run_cli(work, "run", "--no-fail-fast", *args, env=cli_environment(work, **env))
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return record(work)


def test_a_changed_playbook_is_compared_with_the_run_before(tmp_path: Path) -> None:
    write(tmp_path, BEFORE)
    first = run(tmp_path)
    assert first["comparison"] is None  # nothing before it
    shutil.copy(tmp_path / ".ci-orchestrator/reports/run.json", tmp_path / "base.json")
    write(tmp_path, AFTER)
    second = run(tmp_path)
    comparison = second["comparison"]
    assert comparison["baseline"] == {"run_id": first["run_id"], "branch": None, "commit": None}
    assert comparison["new_failures"] == ["breaks"]
    assert comparison["fixed"] == ["heals"]
    assert comparison["still_failing"] == []
    assert comparison["added"] == ["new", "wobbly"]
    assert comparison["removed"] == ["gone"]
    assert comparison["flaky"] == ["wobbly"]
    assert [change["id"] for change in comparison["slower"]] == ["slow"]
    assert comparison["faster"] == []

    summary = (tmp_path / ".ci-orchestrator/reports/summary.md").read_text(encoding="utf-8")
    assert summary.splitlines()[2] == f"### Changes since run `{first['run_id']}`"
    assert "- ❌ **1 new failure**: `breaks`" in summary
    assert "- ✅ **1 fixed**: `heals`" in summary
    assert "- ➖ **1 removed**: `gone`" in summary

    printed = run_cli(tmp_path, "report", "compare", "base.json", "--format", "json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == comparison
    text = run_cli(tmp_path, "report", "compare", "base.json")
    assert "🐢 **1 slower**: `slow`" in text.stdout


def test_under_a_pull_request_auto_compares_with_the_base_branchs_newest_run(tmp_path: Path) -> None:
    write(tmp_path, BEFORE)

    def push(branch: str, sha: str) -> dict[str, Any]:
        return run(tmp_path, GITHUB_REF=f"refs/heads/{branch}", GITHUB_REF_NAME=branch, GITHUB_SHA=sha)

    push("main", "1" * 40)
    push("feature", "2" * 40)
    newest_main = push("main", "3" * 40)
    newest_feature = push("feature", "4" * 40)
    assert newest_feature["comparison"]["baseline"]["branch"] == "feature"  # a push: its own branch
    assert (newest_main["branch"], newest_main["commit"]) == ("main", "3" * 40)

    pull = run(
        tmp_path,
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_BASE_REF="main",
        GITHUB_HEAD_REF="feature",
        GITHUB_REF="refs/pull/5/merge",
        GITHUB_SHA="5" * 40,
    )
    assert (pull["branch"], pull["commit"]) == ("feature", "5" * 40)
    assert pull["comparison"]["baseline"] == {
        "run_id": newest_main["run_id"],
        "branch": "main",
        "commit": "3" * 40,
    }


def test_baseline_none_a_record_and_a_wrong_one(tmp_path: Path) -> None:
    write(tmp_path, BEFORE)
    first = run(tmp_path)
    shutil.copy(tmp_path / ".ci-orchestrator/reports/run.json", tmp_path / "base.json")
    assert run(tmp_path, "--baseline", "none")["comparison"] is None
    summary = (tmp_path / ".ci-orchestrator/reports/summary.md").read_text(encoding="utf-8")
    assert "Changes since" not in summary
    third = run(tmp_path, "--baseline", "base.json")
    assert third["comparison"]["baseline"]["run_id"] == first["run_id"]

    runs_before = run_cli(tmp_path, "history").stdout
    missing = run_cli(tmp_path, "run", "--baseline", "nope.json")
    assert missing.returncode == 2
    assert "nope.json: run record not found" in missing.stderr
    other = json.loads((tmp_path / "base.json").read_text(encoding="utf-8"))
    other["playbook"] = "another"
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    wrong = run_cli(tmp_path, "run", "--baseline", "other.json")
    assert wrong.returncode == 2
    assert "is of playbook 'another', not 'demo'" in wrong.stderr
    assert run_cli(tmp_path, "history").stdout == runs_before  # nothing ran


def test_what_a_selection_leaves_out_is_not_removed(tmp_path: Path) -> None:
    write(tmp_path, BEFORE)
    run(tmp_path)
    selected = run(tmp_path, "--select", "lint")
    assert selected["select"] == "lint"
    assert selected["comparison"]["removed"] == []
    assert selected["comparison"]["added"] == []
    # The whole playbook after a selective run: what that run did not run is not "added".
    assert run(tmp_path)["comparison"]["added"] == []


def test_branch_and_commit_come_from_git_outside_github(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    work = tmp_path / "repo"
    work.mkdir()
    write(work, BEFORE)

    def call(*args: str) -> str:
        done = subprocess.run(
            [git, "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    call("init", "-q", "-b", "topic")
    call("add", "playbooks")
    call("commit", "-q", "-m", "start")
    first = run(work)
    assert (first["branch"], first["commit"]) == ("topic", call("rev-parse", "HEAD"))
    second = run(work)
    assert second["comparison"]["baseline"]["branch"] == "topic"
    # A detached HEAD has a commit and no branch; GitHub's variables win over git.
    call("checkout", "-q", "--detach")
    assert run(work)["branch"] is None
    tagged = run(work, GITHUB_REF="refs/tags/v1", GITHUB_SHA="9" * 40)
    assert (tagged["branch"], tagged["commit"]) == (None, "9" * 40)


def test_a_baselines_text_reaches_no_runner_as_a_command(tmp_path: Path) -> None:
    write(tmp_path, BEFORE)
    run(tmp_path)
    base = record(tmp_path)
    hostile = ["##[error]planted", "::warning::planted", "x\n::error::planted"]
    base["steps"] += [dict(base["steps"][0], id=text) for text in hostile]
    (tmp_path / "base.json").write_text(json.dumps(base), encoding="utf-8")
    env = cli_environment(tmp_path, GITHUB_ACTIONS="true")
    for fmt in ("markdown", "json"):
        printed = run_cli(tmp_path, "report", "compare", "base.json", "--format", fmt, env=env)
        assert printed.returncode == 0, printed.stderr
        assert [parse(line) for line in printed.stdout.splitlines() if parse(line)] == []
        if fmt == "json":
            assert json.loads(printed.stdout)["removed"] == hostile
