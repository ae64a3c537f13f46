"""The composite action, run as GitHub's runner would run it: its `run:` scripts for real.

A small runner stands in for GitHub's: it substitutes `${{ }}` in `if:` and `env:` (never in
scripts, as the runner does), gives each step its own `$GITHUB_OUTPUT` and
`$GITHUB_STEP_SUMMARY` files, runs each script with `bash --noprofile --norc -eo pipefail`, and
passes over `uses:` steps (actions/cache; a test may stand in for the run history's restore by
putting a history file where it would have been restored). The tool is installed once per session
by the action's own install step; later runs find it installed; each run starts with no history
restored, as a fresh job does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_orchestrator.expressions import evaluation
from tests.github_runner import read_outputs
from tests.helpers import REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]
SCRIPT_STEPS = [step for step in STEPS if "run" in step]
# Variables of the machine running the tests that a runner would not give a step.
_LEAKS = ("GITHUB_", "RUNNER_", "CI_ORCHESTRATOR", "PYTHONPATH", "VIRTUAL_ENV", "PYTEST_")

PLAYBOOK = """\
name: small
execution: parallel
vars: {greeting: hello}
steps:
  - id: hello
    run: echo "${{ vars.greeting }} from $CI_ORCHESTRATOR_STEP_ID"
  - id: test
    matrix: {python: ["3.11", "3.12", "3.13"]}
    run: echo "testing on $MATRIX_PYTHON"
"""

FAILING = """\
name: failing
steps:
  - id: good
    run: echo fine
  - id: bad
    run: echo "about to fail" && exit 3
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun:
    id: str
    ran: bool
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRun:
    steps: dict[str, StepRun]
    outputs: dict[str, str]
    summary: str

    @property
    def failed(self) -> bool:
        return any(step.returncode not in (None, 0) for step in self.steps.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Runner:
    """One simulated job on a Linux runner: a workspace, a runner temp folder, a PATH."""

    workspace: Path
    runner_temp: Path
    files: Path
    path: str
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    extra_env: dict[str, str] = field(default_factory=dict)  # the variables of the run in progress

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKS) and k != "CI"}
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_ACTION_PATH=str(REPO),
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_SHA=self.sha,
            RUNNER_OS="Linux",
            RUNNER_TEMP=str(self.runner_temp),
            PATH=self.path,
        )
        env.update(self.extra_env)
        return env

    def run_action(
        self,
        *,
        restored_history: Path | None = None,
        env: dict[str, str] | None = None,
        event: dict[str, Any] | None = None,
        job_matrix: dict[str, Any] | None = None,
        **given: str,
    ) -> ActionRun:
        """Run the action's steps. `restored_history`: the file actions/cache would restore as
        the run history; `env`: more of GitHub's variables; `event`: the `github.event` payload;
        `job_matrix`: the `matrix` context of a job of a matrix."""
        declared = ACTION["inputs"]
        unknown = set(given) - set(declared)
        assert not unknown, f"not inputs of the action: {unknown}"
        # `${{ github.token }}`, the token input's default, is the job's token.
        inputs = {name: given.get(name, spec.get("default", "")) for name, spec in declared.items()}
        inputs["github-token"] = given.get("github-token", "job-token")
        folder = self.runner_temp / "ci-orchestrator" / "history"
        shutil.rmtree(folder, ignore_errors=True)
        if restored_history is not None:
            folder.mkdir(parents=True)
            shutil.copyfile(restored_history, folder / "history.db")
        self.extra_env.clear()
        self.extra_env.update(env or {})
        contexts: dict[str, Any] = {
            "inputs": inputs,
            "steps": {},
            "runner": {"os": "Linux", "temp": str(self.runner_temp)},
            "github": {
                "sha": self.sha,
                "action_path": str(REPO),
                "workspace": str(self.workspace),
                "event": event or {},
            },
            "matrix": job_matrix,
        }
        runs: dict[str, StepRun] = {}
        summaries: list[str] = []
        for step in STEPS:
            status = evaluation.JobStatus(failure=any(r.returncode for r in runs.values()))
            wanted = evaluation.evaluate_condition(str(step.get("if", "success()")), contexts, status)
            if "uses" in step or not wanted:
                runs[step["id"]] = StepRun(id=step["id"], ran=False)
                contexts["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
                continue
            result = self.run_script(step, contexts, summaries)
            runs[step["id"]] = result
            contexts["steps"][step["id"]] = {
                "outputs": result.outputs,
                "outcome": "success" if result.returncode == 0 else "failure",
            }
        outputs = {
            name: evaluation.interpolate(spec["value"], contexts) for name, spec in ACTION["outputs"].items()
        }
        return ActionRun(steps=runs, outputs=outputs, summary="".join(summaries))

    def run_script(self, step: dict[str, Any], contexts: dict[str, Any], summaries: list[str]) -> StepRun:
        assert step["shell"] == "bash"
        # Fresh files per step, as on GitHub.
        self.files.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{step['id']}-", dir=self.files))
        env = self.base_env()
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"):
            (folder / name).touch()
            env[name] = str(folder / name)
        env.update(
            {
                name: evaluation.interpolate(str(value), contexts)
                for name, value in step.get("env", {}).items()
            }
        )
        script = folder / "script.sh"
        script.write_text(step["run"], encoding="utf-8")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        summaries.append((folder / "GITHUB_STEP_SUMMARY").read_text(encoding="utf-8"))
        return StepRun(
            id=step["id"],
            ran=True,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            outputs=read_outputs((folder / "GITHUB_OUTPUT").read_text(encoding="utf-8")),
        )


def _runner_path(tmp: Path) -> str:
    """A PATH whose `python3` is this interpreter: the runner's python3 after setup-python."""
    tools = tmp / "tools"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)
    return f"{tools}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, StepRun]:
    """The runner temp folder of a job in which the action installed the tool once."""
    tmp = tmp_path_factory.mktemp("job")
    temp = tmp / "runner-temp"
    temp.mkdir()
    path = _runner_path(tmp)
    runner = Runner(workspace=tmp, runner_temp=temp, files=tmp / "files", path=path)
    install = next(step for step in STEPS if step["id"] == "install")
    first = runner.run_script(install, {"inputs": {}, "steps": {}}, [])
    if first.returncode and "No matching distribution found" in first.stderr:
        pytest.skip(f"pip cannot reach a package index to install the dependencies:\n{first.stderr}")
    return temp, path, first


@pytest.fixture
def runner(job: tuple[Path, str, StepRun], tmp_path: Path) -> Runner:
    temp, path, _ = job
    workspace = tmp_path / "workspace"
    (workspace / "playbooks").mkdir(parents=True)
    (workspace / "playbooks" / "ci.yml").write_text(PLAYBOOK, encoding="utf-8")
    (workspace / "playbooks" / "failing.yml").write_text(FAILING, encoding="utf-8")
    return Runner(workspace=workspace, runner_temp=temp, files=tmp_path / "files", path=path)


# ------------------------------------------------------------------ the file itself


def _expressions_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [found for item in value.values() for found in _expressions_in(item)]
    if isinstance(value, list):
        return [found for item in value for found in _expressions_in(item)]
    return re.findall(r"\$\{\{(.*?)\}\}", str(value))


@pytest.mark.parametrize("step", SCRIPT_STEPS, ids=lambda step: step["id"])
def test_no_script_has_an_expression_pasted_in(step: dict[str, Any]) -> None:
    assert "${{" not in step["run"]
    assert step["shell"] == "bash"


def test_every_input_reaches_scripts_only_through_env() -> None:
    for step in SCRIPT_STEPS:
        for name, value in step.get("env", {}).items():
            # The whole value is one expression: nothing is built around it.
            assert re.fullmatch(r"\$\{\{ ([\w.-]+|toJSON\(matrix\)) \}\}", str(value)), (
                step["id"],
                name,
                value,
            )
    used = {ref.strip() for step in STEPS for ref in _expressions_in(step)}
    for name in ACTION["inputs"]:
        assert f"inputs.{name}" in " ".join(used), f"input {name} is never used"
    for ref in used:
        for name in re.findall(r"inputs\.([\w-]+)", ref):
            assert name in ACTION["inputs"], f"unknown input {name}"


def test_scripts_use_the_command_line_not_the_package() -> None:
    """The command line is the tool's interface: its internals may change under the action."""
    for step in SCRIPT_STEPS:
        assert not re.search(r"(import|from)\s+ci_orchestrator", step["run"]), step["id"]


def test_the_outputs_are_the_tools_own() -> None:
    assert set(ACTION["outputs"]) == {"result", "failed-steps", "junit-path", "summary-path", "json-path"}
    for name, spec in ACTION["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_cache_keys_go_from_the_most_to_the_least_specific() -> None:
    restore = next(step for step in STEPS if step["id"] == "restore")
    save = next(step for step in STEPS if step["id"] == "save")
    key = restore["with"]["key"]
    assert key == save["with"]["key"]
    assert key.startswith("ci-orchestrator-${{ runner.os }}-")
    assert key.endswith("-${{ github.sha }}")
    assert restore["with"]["path"] == save["with"]["path"]
    prefixes = restore["with"]["restore-keys"].splitlines()
    assert prefixes == sorted(prefixes, key=len, reverse=True)
    assert prefixes[-1] == "ci-orchestrator-${{ runner.os }}-"
    assert all(key.startswith(prefix) for prefix in prefixes)


@pytest.mark.parametrize(
    ("cache", "failure", "cancelled", "saved"),
    [
        ("true", False, False, True),
        ("true", True, False, True),  # failed steps are never stored: what passed is kept
        ("true", False, True, False),
        ("false", False, False, False),
    ],
)
def test_when_the_cache_is_saved(cache: str, failure: bool, cancelled: bool, saved: bool) -> None:
    save = next(step for step in STEPS if step["id"] == "save")
    contexts = {"inputs": {"cache": cache}, "steps": {"restore": {"outputs": {"cache-hit": ""}}}}
    status = evaluation.JobStatus(failure=failure, cancelled=cancelled)
    assert evaluation.evaluate_condition(save["if"], contexts, status) is saved


def test_an_exact_cache_hit_is_not_saved_again() -> None:
    save = next(step for step in STEPS if step["id"] == "save")
    contexts = {"inputs": {"cache": "true"}, "steps": {"restore": {"outputs": {"cache-hit": "true"}}}}
    assert not evaluation.evaluate_condition(save["if"], contexts, evaluation.JobStatus())


# ------------------------------------------------------------------ running it


@pytest.mark.slow
def test_install_makes_a_venv_once_per_job(job: tuple[Path, str, StepRun], runner: Runner) -> None:
    temp, _, first = job
    assert first.returncode == 0, first.stderr
    assert "ci-orchestrator 0." in first.stdout
    assert (temp / "ci-orchestrator" / "venv" / "bin" / "ci-orchestrator").is_file()
    assert first.outputs["bin"] == str(temp / "ci-orchestrator" / "venv" / "bin")
    # Built from a copy, so that no build/ or *.egg-info is left in the action's folder.
    assert (temp / "ci-orchestrator" / "source" / "pyproject.toml").is_file()

    again = runner.run_action()
    assert "already installed" in again.steps["install"].stdout
    assert again.steps["install"].outputs == first.outputs


@pytest.mark.slow
def test_a_passing_run_sets_outputs_and_the_job_summary(runner: Runner) -> None:
    run = runner.run_action(matrix="python=3.11,3.13\n")
    assert not run.failed, run.steps["run"].stderr
    assert run.outputs["result"] == "passed"
    assert json.loads(run.outputs["failed-steps"]) == []
    record = json.loads(Path(run.outputs["json-path"]).read_text(encoding="utf-8"))
    assert [step["id"] for step in record["steps"]] == ["hello", "test (3.11)", "test (3.13)"]
    assert Path(run.outputs["junit-path"]).is_file()
    assert Path(run.outputs["summary-path"]).is_file()
    assert "test (3.13)" in run.summary
    assert "passed" in run.summary
    # Each step's log folded in a group, under GitHub.
    assert "::group::" in run.steps["run"].stdout


@pytest.mark.slow
def test_a_failed_run_fails_the_step_and_keeps_the_reports(runner: Runner) -> None:
    run = runner.run_action(playbook="failing")
    assert run.steps["run"].returncode == 1
    assert run.outputs["result"] == "failed"
    assert json.loads(run.outputs["failed-steps"]) == ["bad"]
    record = json.loads(Path(run.outputs["json-path"]).read_text(encoding="utf-8"))
    assert {step["id"]: step["exit_code"] for step in record["steps"]} == {"good": 0, "bad": 3}
    assert "::error" in run.steps["run"].stdout
    assert "bad" in run.summary


@pytest.mark.slow
def test_inputs_become_options(runner: Runner) -> None:
    run = runner.run_action(
        select="test*,hello",
        concurrency="1",
        matrix="  python=3.12  \n\n",
        args="--only --var 'greeting=good day' --json 'reports/my run.json'",
        cache="false",
    )
    assert not run.failed, run.steps["run"].stderr
    assert not run.steps["paths"].ran
    assert Path(run.outputs["json-path"]) == runner.workspace / "reports" / "my run.json"
    record = json.loads(Path(run.outputs["json-path"]).read_text(encoding="utf-8"))
    assert [step["id"] for step in record["steps"]] == ["hello", "test (3.12)"]
    assert record["stats"]["max_concurrency_seen"] == 1
    hello = record["steps"][0]
    assert "good day from hello" in (runner.workspace / hello["log"]).read_text(encoding="utf-8")


@pytest.mark.slow
def test_shards_split_the_playbook(runner: Runner) -> None:
    ran: list[str] = []
    for index in (1, 2):
        # Each shard on its own runner, as in a job matrix: the split depends on the run history.
        workspace = runner.workspace.with_name(f"shard-{index}")
        shutil.copytree(runner.workspace, workspace)
        shard_runner = dataclasses.replace(runner, workspace=workspace)
        run = shard_runner.run_action(shard=f"{index}/2")
        assert not run.failed, run.steps["run"].stderr
        record = json.loads(Path(run.outputs["json-path"]).read_text(encoding="utf-8"))
        ran += [step["id"] for step in record["steps"] if step["status"] == "passed"]
    assert sorted(ran) == ["hello", "test (3.11)", "test (3.12)", "test (3.13)"]


@pytest.mark.slow
def test_working_directory_and_cache_paths(runner: Runner) -> None:
    project = runner.workspace / "sub project"
    (project / "playbooks").mkdir(parents=True)
    (project / "playbooks" / "ci.yml").write_text(PLAYBOOK, encoding="utf-8")
    run = runner.run_action(**{"working-directory": "sub project", "cache-dir": "my-cache"})
    assert not run.failed, run.steps["run"].stderr
    paths = run.steps["paths"].outputs
    # Absolute, because actions/cache would read a relative path from the workspace.
    assert paths["cache-dir"] == str(project / "my-cache")
    assert (project / "my-cache").is_dir()
    assert Path(run.outputs["json-path"]).is_file()
    assert re.fullmatch(r"[0-9a-f]{64}", paths["playbook-hash"])

    other = runner.run_action(**{"working-directory": "sub project"})
    assert other.steps["paths"].outputs["cache-dir"] == str(project / ".ci-orchestrator" / "cache")
    assert other.steps["paths"].outputs["playbook-hash"] == paths["playbook-hash"]

    # The folder the run really uses when `args` names one, or a settings file and profile do.
    given = runner.run_action(**{"working-directory": "sub project", "args": "--cache-dir 'args cache'"})
    assert given.steps["paths"].outputs["cache-dir"] == str(project / "args cache")
    assert (project / "args cache").is_dir()
    (project / "team.toml").write_text('[profile.night]\ncache-dir = "night-cache"\n', encoding="utf-8")
    profiled = runner.run_action(
        **{"working-directory": "sub project", "args": "--config team.toml --profile=night"}
    )
    assert profiled.steps["paths"].outputs["cache-dir"] == str(project / "night-cache")
    assert (project / "night-cache").is_dir()


@pytest.mark.slow
def test_what_the_run_step_will_report_leaves_the_cache_paths_usable(runner: Runner) -> None:
    """An unknown playbook or a broken settings file fails the run step, with its message, not
    the step that locates the cache."""
    unknown = runner.run_action(playbook="nope")
    assert unknown.steps["paths"].returncode == 0, unknown.steps["paths"].stderr
    assert unknown.steps["paths"].outputs["playbook-hash"] == "none"
    assert "unknown playbook 'nope'" in unknown.steps["run"].stderr
    (runner.workspace / "ci-orchestrator.toml").write_text("timout = 3\n", encoding="utf-8")
    broken = runner.run_action()
    paths = broken.steps["paths"]
    assert paths.returncode == 0, paths.stderr
    assert paths.stderr == ""
    assert paths.outputs["cache-dir"] == str(runner.workspace / ".ci-orchestrator" / "cache")
    assert re.fullmatch(r"[0-9a-f]{64}", paths.outputs["playbook-hash"])
    assert broken.steps["run"].returncode == 2
    assert "ci-orchestrator.toml:1:1: timout: unknown key" in broken.steps["run"].stderr


@pytest.mark.slow
def test_the_playbook_hash_changes_with_the_playbook(runner: Runner) -> None:
    first = runner.run_action(args="--dry-run").steps["paths"].outputs["playbook-hash"]
    named = runner.run_action(playbook="playbooks/ci.yml", args="--dry-run")
    assert named.steps["paths"].outputs["playbook-hash"] == first
    other = runner.run_action(playbook="failing", args="--dry-run").steps["paths"].outputs["playbook-hash"]
    assert other != first


@pytest.mark.slow
def test_jobs_that_run_different_parts_keep_caches_of_their_own(runner: Runner) -> None:
    def job_hash(**given: str) -> str:
        return runner.run_action(cache="true", args="--dry-run", **given).steps["paths"].outputs["job-hash"]

    whole = job_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", whole)
    assert job_hash() == whole  # the same job on the next commit finds its own cache
    parts = [
        job_hash(shard="1/2"),
        job_hash(shard="2/2"),
        job_hash(matrix="python=3.12"),
        job_hash(select="hello"),
    ]
    assert len({whole, *parts}) == 5


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "template", "message"),
    [
        ("select", '"; touch {target}; echo "', "matches no step"),
        ("select", "$(touch {target})", "matches no step"),
        ("playbook", "x; touch {target}", "no such file"),
        ("playbook", "`touch {target}`", "no such file"),
        ("matrix", "$(touch {target})", "expected KEY=VALUE"),
        ("concurrency", "1; touch {target}", "concurrency"),
        ("shard", "$(touch {target})", "shard"),
        ("args", "$(touch {target})", "unexpected extra argument"),
        ("args", "--select `touch {target}`", "no such file"),
        ("args", "'unbalanced; touch {target}", "No closing quotation"),
        ("cache-dir", '"; touch {target}; #', ""),
    ],
)
def test_hostile_inputs_are_taken_literally(
    runner: Runner, tmp_path: Path, name: str, template: str, message: str
) -> None:
    target = tmp_path / "pwned"
    value = template.format(target=target)
    run = runner.run_action(**{name: value})
    assert not target.exists()
    if name == "cache-dir":
        # A strange folder name is still just a folder name.
        assert not run.failed, run.steps["run"].stderr
        assert (runner.workspace / value).is_dir()
        return
    step = run.steps["run"]
    assert step.returncode == 2, step.stderr
    assert message in step.stderr
    if name in ("select", "playbook", "matrix"):
        assert value in step.stderr


@pytest.mark.slow
def test_an_old_python_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    tools = tmp_path / "old"
    tools.mkdir()
    (tools / "python3").write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    (tools / "python3").chmod(0o755)
    temp = tmp_path / "temp"
    temp.mkdir()
    runner = Runner(
        workspace=tmp_path,
        runner_temp=temp,
        files=tmp_path / "files",
        path=f"{tools}{os.pathsep}{os.environ['PATH']}",
    )
    run = runner.run_action()
    assert run.steps["install"].returncode == 1
    assert "::error" in run.steps["install"].stdout
    assert "Python 3.11" in run.steps["install"].stdout
    assert not run.steps["run"].ran


# ------------------------------------------------------------------ the run history and the comment


def _step(step_id: str) -> dict[str, Any]:
    return next(step for step in STEPS if step["id"] == step_id)


def test_history_keys_go_from_the_branch_to_the_base_to_any() -> None:
    restore, save, base = _step("history-restore"), _step("history-save"), _step("history-restore-base")
    assert restore["with"]["key"] == save["with"]["key"] == "${{ steps.history-paths.outputs.key }}"
    assert restore["with"]["path"] == save["with"]["path"] == base["with"]["path"]
    assert restore["with"]["restore-keys"].splitlines() == [
        "${{ steps.history-paths.outputs.branch-key }}",
        "${{ steps.history-paths.outputs.base-key }}",
        "${{ steps.history-paths.outputs.prefix }}",
    ]


@pytest.mark.parametrize(
    ("history", "result", "failure", "cancelled", "saved"),
    [
        ("true", "passed", False, False, True),
        ("true", "failed", True, False, True),  # the next run's "fixed" is measured against it
        ("true", "cancelled", False, True, False),
        ("true", "", True, False, False),  # nothing ran: an invalid playbook
        ("false", "passed", False, False, False),
    ],
)
def test_when_the_history_is_kept(
    history: str, result: str, failure: bool, cancelled: bool, saved: bool
) -> None:
    contexts = {"inputs": {"history": history}, "steps": {"run": {"outputs": {"result": result}}}}
    status = evaluation.JobStatus(failure=failure, cancelled=cancelled)
    assert evaluation.evaluate_condition(_step("history-export")["if"], contexts, status) is saved


@pytest.mark.parametrize(
    ("comment", "pull_request", "json_path", "failure", "cancelled", "posted"),
    [
        ("", True, "/w/run.json", False, False, True),  # the default: the script decides
        ("changes", True, "/w/run.json", False, False, True),
        ("always", True, "/w/run.json", True, False, True),  # a failed run most of all
        ("off", True, "/w/run.json", False, False, False),
        ("always", False, "/w/run.json", False, False, False),  # a push: no pull request
        ("always", True, "", True, False, False),  # nothing ran
        ("always", True, "/w/run.json", False, True, False),
    ],
)
def test_when_the_comment_is_posted(
    comment: str, pull_request: bool, json_path: str, failure: bool, cancelled: bool, posted: bool
) -> None:
    contexts = {
        "inputs": {"comment": comment},
        "github": {"event": {"pull_request": {"number": 3}} if pull_request else {}},
        "steps": {"run": {"outputs": {"json-path": json_path}}},
    }
    status = evaluation.JobStatus(failure=failure, cancelled=cancelled)
    assert evaluation.evaluate_condition(_step("comment")["if"], contexts, status) is posted


CHANGED = PLAYBOOK.replace('echo "testing on $MATRIX_PYTHON"', 'echo "testing on $MATRIX_PYTHON"; exit 4')


def _fresh(runner: Runner, name: str, playbook: str = PLAYBOOK) -> Runner:
    """A new job on a new machine: a workspace with no state of earlier runs."""
    workspace = runner.workspace.with_name(name)
    (workspace / "playbooks").mkdir(parents=True)
    (workspace / "playbooks" / "ci.yml").write_text(playbook, encoding="utf-8")
    return dataclasses.replace(runner, workspace=workspace, extra_env={})


@pytest.mark.slow
def test_the_run_history_travels_between_workflow_runs(runner: Runner, tmp_path: Path) -> None:
    push = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_JOB": "ci"}
    first = runner.run_action(env={**push, "GITHUB_RUN_ID": "101", "GITHUB_RUN_ATTEMPT": "1"})
    assert not first.failed, first.steps["run"].stderr
    keys = first.steps["history-paths"].outputs
    assert keys["key"] == f"{keys['branch-key']}101-1"
    assert keys["key"].startswith(keys["prefix"])
    assert keys["base-key"] == ""
    assert first.steps["history-export"].outputs == {"saved": "true"}
    saved = runner.runner_temp / "ci-orchestrator" / "history" / "history.db"
    shutil.copyfile(saved, tmp_path / "main-1.db")  # what actions/cache keeps
    first_run = json.loads(Path(first.outputs["json-path"]).read_text(encoding="utf-8"))

    # The next push, on another machine: the history restored, the changed playbook compared.
    second_runner = _fresh(runner, "second", CHANGED)
    second = second_runner.run_action(
        restored_history=tmp_path / "main-1.db",
        env={**push, "GITHUB_RUN_ID": "102", "GITHUB_RUN_ATTEMPT": "1"},
        args="--no-fail-fast",
    )
    assert "imported 1 run" in second.steps["history-import"].stdout
    record = json.loads(Path(second.outputs["json-path"]).read_text(encoding="utf-8"))
    assert record["branch"] == "main"
    assert record["comparison"]["baseline"]["run_id"] == first_run["run_id"]
    assert record["comparison"]["new_failures"] == ["test (3.11)", "test (3.12)", "test (3.13)"]
    assert "Changes since run" in second.summary
    assert second.steps["history-export"].outputs == {"saved": "true"}  # kept after a failed run too
    shutil.copyfile(saved, tmp_path / "main-2.db")

    # A pull request into main: compared with main's newest run, its key on its own branch.
    pull = {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_HEAD_REF": "feature",
        "GITHUB_BASE_REF": "main",
        "GITHUB_REF": "refs/pull/3/merge",
        "GITHUB_JOB": "ci",
        "GITHUB_RUN_ID": "103",
        "GITHUB_RUN_ATTEMPT": "1",
    }
    third = _fresh(runner, "third").run_action(restored_history=tmp_path / "main-2.db", env=pull)
    pull_keys = third.steps["history-paths"].outputs
    assert pull_keys["base-key"] == keys["branch-key"]
    assert pull_keys["branch-key"] != keys["branch-key"]
    assert pull_keys["prefix"] == keys["prefix"]
    assert third.steps["history-import-base"].ran
    record = json.loads(Path(third.outputs["json-path"]).read_text(encoding="utf-8"))
    assert (record["branch"], record["comparison"]["baseline"]["branch"]) == ("feature", "main")
    assert record["comparison"]["fixed"] == ["test (3.11)", "test (3.12)", "test (3.13)"]


@pytest.mark.slow
def test_jobs_of_a_matrix_keep_histories_of_their_own(runner: Runner) -> None:
    def prefix(**given: Any) -> str:
        run = runner.run_action(args="--dry-run", **given)
        return run.steps["history-paths"].outputs["prefix"]

    plain = prefix()
    assert prefix() == plain
    others = [
        prefix(job_matrix={"python": "3.12"}),
        prefix(job_matrix={"python": "3.13"}),
        prefix(shard="1/2"),
    ]
    assert len({plain, *others}) == 4
    assert not runner.run_action(history="false", args="--dry-run").steps["history-paths"].ran


@pytest.mark.slow
def test_the_action_comments_on_the_pull_request(runner: Runner, tmp_path: Path) -> None:
    from tests.commands.fake_github import FakeGitHub, serve

    event = {"pull_request": {"number": 3}}
    for github in serve(FakeGitHub()):
        env = github.pull_request_environment(tmp_path, number=3)
        failed = runner.run_action(playbook="failing", comment="always", env=env, event=event)
        assert failed.steps["comment"].returncode == 0, failed.steps["comment"].stderr
        (posted,) = github.calls("POST")
        assert posted.headers["authorization"] == "Bearer job-token"
        assert "<!-- ci-orchestrator: failing -->" in posted.body["body"]
        again = runner.run_action(playbook="failing", comment="always", env=env, event=event)
        assert "updated the comment" in again.steps["comment"].stdout
        assert len(github.calls("PATCH")) == 1
        assert len(github.calls("POST")) == 1


@pytest.mark.slow
def test_by_default_a_job_alone_comments_on_failures_and_a_matrix_job_does_not(
    runner: Runner, tmp_path: Path
) -> None:
    from tests.commands.fake_github import FakeGitHub, serve

    event = {"pull_request": {"number": 3}}
    for github in serve(FakeGitHub()):
        env = github.pull_request_environment(tmp_path, number=3)
        # A job alone, its run passing: nothing failed, so nothing to say.
        passing = runner.run_action(env=env, event=event)
        assert passing.steps["comment"].returncode == 0, passing.steps["comment"].stderr
        assert "nothing for a comment in mode failures" in passing.steps["comment"].stdout
        asked_github = len(github.requests)  # it looked for a comment to bring up to date
        # Jobs of a matrix and shards would share the one comment: none unless asked.
        for given in ({"job_matrix": {"python": "3.12"}}, {"shard": "1/2"}):
            quiet = runner.run_action(playbook="failing", env=env, event=event, **given)
            assert quiet.steps["comment"].returncode == 0, quiet.steps["comment"].stderr
            assert (
                "no pull-request comment from a job of a matrix or a shard" in quiet.steps["comment"].stdout
            )
        assert len(github.requests) == asked_github
        # A job alone whose run failed comments.
        failed = runner.run_action(playbook="failing", env=env, event=event)
        assert "commented on pull request #3" in failed.steps["comment"].stdout
        # One job of a matrix told to comment does.
        asked = runner.run_action(
            playbook="failing", comment="failures", env=env, event=event, job_matrix={"python": "3.12"}
        )
        assert "updated the comment" in asked.steps["comment"].stdout
        assert len(github.calls("POST")) == 1
